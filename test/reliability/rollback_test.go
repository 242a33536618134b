package reliability

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// rollbackPoints picks the steps of a transition to fail at: every step in
// the full run; in CI the first, the last, two in between and the cut-over
// steps (release-address, take-address).
func rollbackPoints(steps []labtest.PlannedStep) []int {
	n := len(steps)
	if full() {
		return slices.Collect(func(yield func(int) bool) {
			for i := range n {
				if !yield(i) {
					return
				}
			}
		})
	}
	pick := map[int]bool{0: true, n / 3: true, 2 * n / 3: true, n - 1: true}
	for i, s := range steps {
		if strings.Contains(s.ID, "/release-address/") || strings.Contains(s.ID, "/take-address/") {
			pick[i] = true
		}
	}
	out := slices.Sorted(maps.Keys(pick))
	return out
}

// TestRollback fails each sampled step of each transition (after its
// effect is in place: the step is recorded failed) and rolls back: the
// pair must be back at the previous phase's table with thurst's data
// untouched, production answered except inside the cut-over. Past the
// irreversible reboot, rollback refuses, explains, and resume goes on. One
// rollback per move transition is itself crashed midway and finished by a
// second rollback.
func TestRollback(t *testing.T) {
	h := labtest.New(t, lab.Options{})
	const root = "/nbhosting"
	prodData := h.Sums(lab.Thurst, root, "students", "raw")
	prev := "start"
	tried, rolledBack, refused, crashed := 0, 0, 0, 0
	var longest time.Duration
	for _, c := range cycle {
		_, planned := h.Plan()
		reboot, cutFrom := len(planned), len(planned)
		for i, s := range planned {
			if s.Irreversible && i < reboot {
				reboot = i
			}
			if strings.Contains(s.ID, "/release-address/") {
				cutFrom = i
			}
		}
		var after []int // points past the reboot: rollback must refuse
		crashedHere := false
		for _, k := range rollbackPoints(planned) {
			if k >= reboot {
				after = append(after, k)
				continue
			}
			tried++
			step := planned[k].ID
			prober := labtest.StartProber(h.Lab, h.Lab.Info.ProductionURL, 50*time.Millisecond)
			r := h.RunEnv(fault(step, "applied", "fail"), "--yes", "next")
			if r.Code == 0 || !strings.Contains(r.Stderr, "injected failure") {
				prober.Stop()
				t.Fatalf("%s: next with a failure injected: %s", step, r)
			}
			// Crash the rollback once per move transition, midway: at the
			// undo of the step before the failed one.
			if k > 0 && !crashedHere && (c.event == "redirect" || c.event == "switch-back") && k >= cutFrom {
				crashedHere = true
				rk := h.RunEnv(fault(planned[k-1].ID, "undo", "kill"), "rollback")
				if !rk.Killed() {
					t.Errorf("%s: rollback with a kill at undo: %s", planned[k-1].ID, rk)
				}
				if rr := h.Run("--yes", "resume"); rr.Code != 7 || !strings.Contains(rr.Stderr, "rollback") {
					t.Errorf("resume during an interrupted rollback: %s", rr)
				}
				crashed++
			}
			rb := h.Run("rollback")
			probe := prober.Stop()
			if rb.Code != 0 {
				t.Fatalf("%s: rollback: %s", step, rb)
			}
			rolledBack++
			if got := h.Where().Phase; got != prev {
				t.Fatalf("%s: phase %s after rollback, want %s", step, got, prev)
			}
			att := h.LastAttempt()
			var undone []string
			for _, s := range att.Steps {
				if s.Status == "undone" {
					undone = append(undone, s.ID)
				}
			}
			if len(undone) != k+1 {
				t.Errorf("%s: %d steps undone, want %d: %v", step, len(undone), k+1, undone)
			}
			checkTable(t, h, prev)
			if got := h.Sums(lab.Thurst, root, "students", "raw"); !maps.Equal(got, prodData) {
				t.Errorf("%s: thurst's data changed: %v", step, got)
			}
			// Production is unanswered only when the failure came inside
			// the cut-over (the address had moved, the rollback moves it back).
			if g := probe.Longest(); g.Len() > 0 {
				if k < cutFrom {
					t.Errorf("%s: production unanswered for %s outside the cut-over: %s", step, g.Len(), probe)
				} else if g.Len() > longest {
					longest = g.Len()
				}
			}
		}
		// Past the reboot: each failure is refused by rollback, then resumed.
		for j, k := range after {
			tried++
			step := planned[k].ID
			verb := "resume"
			if j == 0 {
				verb = "next"
			}
			r := h.RunEnv(fault(step, "applied", "fail"), "--yes", verb)
			if r.Code == 0 {
				t.Fatalf("%s: %s with a failure injected succeeded", step, verb)
			}
			rb := h.Run("rollback")
			if rb.Code != 7 || !strings.Contains(rb.Stderr, "cannot be undone") || !strings.Contains(rb.Stderr, "boxswap resume") {
				t.Errorf("%s: rollback past the reboot: %s", step, rb)
			} else {
				refused++
			}
		}
		r := h.Run("--yes", map[bool]string{true: "resume", false: "next"}[h.Where().Pending()])
		if r.Code != 0 {
			t.Fatalf("%s: after the rollbacks: %s", c.event, r)
		}
		if got := h.Where().Phase; got != c.phase {
			t.Fatalf("phase %s, want %s", got, c.phase)
		}
		checkTable(t, h, c.phase)
		prev = c.phase
	}
	figure(t, "rollback: failures injected %d (full=%v), rolled back %d, refused past the reboot %d, rollbacks crashed midway and finished %d, longest production gap in a cut-over rollback %s",
		tried, full(), rolledBack, refused, crashed, longest.Round(time.Millisecond))
}
