package reliability

import (
	"strings"
	"testing"
	"time"

	"boxswap/state"
	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// TestProductionInvariant runs a whole cycle with a prober on the
// production address (20 Hz) and a watcher asking both boxes whether they
// hold the production address unit: never both, production never moving
// back and forth within a transition, and unanswered only inside the
// cut-over window (from the first stop-writers to take-address) of the
// two moves.
func TestProductionInvariant(t *testing.T) {
	h := labtest.New(t, lab.Options{})
	var longest time.Duration
	var longestIn string
	total := 0
	for _, c := range cycle {
		prober := labtest.StartProber(h.Lab, h.Lab.Info.ProductionURL, 50*time.Millisecond)
		watcher := labtest.WatchUnit(h.Lab, "nbhosting-addr")
		r := h.Run("--yes", "next")
		probe, units := prober.Stop(), watcher.Stop()
		if r.Code != 0 {
			t.Fatalf("%s: %s", c.event, r)
		}
		total += len(probe.Answers)
		if bad := labtest.BothHeld(units); len(bad) > 0 {
			t.Errorf("%s: both boxes held production: %v", c.event, bad)
		}
		if probe.Alternates() {
			t.Errorf("%s: production went back and forth: %v", c.event, probe.Sequence())
		}
		att := h.LastAttempt()
		var from, until time.Time
		for _, s := range att.Steps {
			if strings.Contains(s.ID, "/stop-writers/") && from.IsZero() {
				from = s.Started
			}
			if strings.Contains(s.ID, "/take-address/") && c.event != "epilogue" {
				until = s.Ended
			}
		}
		for _, g := range probe.Gaps() {
			// A gap is bounded by probes: its ends may be one probe period
			// (plus the probe itself) outside the window.
			slack := 250 * time.Millisecond
			if from.IsZero() || until.IsZero() || g.From.Before(from.Add(-slack)) || g.To.After(until.Add(slack)) {
				t.Errorf("%s: production unanswered from %s to %s, outside the cut-over (%s to %s)", c.event,
					g.From.Format("15:04:05.000"), g.To.Format("15:04:05.000"), from.Format("15:04:05.000"), until.Format("15:04:05.000"))
			}
			if g.Len() > longest {
				longest, longestIn = g.Len(), c.event
			}
		}
		if att.Status != state.Done {
			t.Errorf("%s: %s", c.event, att.Status)
		}
		t.Logf("%s: %s; unit samples %d", c.event, probe, len(units))
		checkTable(t, h, c.phase)
	}
	figure(t, "production invariant: %d probes at 20 Hz over a whole cycle; longest unanswered stretch %s (in %s); never two holders, never back and forth",
		total, longest.Round(time.Millisecond), longestIn)
}
