package reliability

import (
	"maps"
	"strings"
	"testing"

	injected "boxswap/internal/fault"
	"boxswap/state"
	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

type killPoint struct{ step, point string }

// killPoints are the points of a transition's steps to crash at: in the
// full run every step before it is recorded running and after its effect
// is in place; in CI one point per step, alternating, the alternation
// shifted per transition so both points of each kind of step get tried.
func killPoints(steps []labtest.PlannedStep, shift int) []killPoint {
	var kp []killPoint
	for i, s := range steps {
		switch {
		case full():
			kp = append(kp, killPoint{s.ID, "before"}, killPoint{s.ID, "applied"})
		case (i+shift)%2 == 0:
			kp = append(kp, killPoint{s.ID, "before"})
		default:
			kp = append(kp, killPoint{s.ID, "applied"})
		}
	}
	return kp
}

// TestCrashAnywhere crashes boxswap (a real SIGKILL, from BOXSWAP_FAULT) at
// every kill point of every transition of a whole cycle, in order: each
// run after a crash is killed at the next point, so every crash is
// recovered from by a resume (or next) that itself started from a
// crashed state. After each transition the boxes must match the table,
// the user data must be bit-identical, no box rebooted twice and every
// crash's lock was reclaimed.
func TestCrashAnywhere(t *testing.T) {
	h := labtest.New(t, lab.Options{})
	const root = "/nbhosting"
	folders := []string{"students", "raw"}
	prodData := h.Sums(lab.Thurst, root, folders...)
	tried, failed, reclaimed := 0, 0, 0
	installKills := 0
	for ti, c := range cycle {
		event, planned := h.Plan()
		if event != c.event {
			t.Fatalf("plan: next is %s, want %s", event, c.event)
		}
		boots := map[string]int{lab.Thurst: h.Boots(lab.Thurst), lab.Thermals: h.Boots(lab.Thermals)}
		installs := h.InstallRuns(lab.Thurst) + h.InstallRuns(lab.Thermals)
		kills := killPoints(planned, ti)
		for _, kp := range kills {
			tried++
			r := h.Continue(fault(kp.step, kp.point, "kill"))
			if strings.Contains(r.Stderr, "reclaimed a stale lock") {
				reclaimed++
			}
			if !r.Killed() {
				failed++
				t.Errorf("%s@%s: not killed: %s", kp.step, kp.point, r)
				continue
			}
			if strings.HasSuffix(kp.step, "/install") || strings.Contains(kp.step, "/install/") {
				if kp.point == "applied" {
					installKills++
				}
			}
			v := h.Where()
			if !v.Pending() || v.Transition.Event != c.event {
				failed++
				t.Errorf("%s@%s: after the kill where shows %+v", kp.step, kp.point, v.Transition)
				continue
			}
			// Killed after the step: running when its Apply ran, pending when
			// its Check found it done (running is recorded just before
			// Apply); never done, since done was not recorded yet.
			want := map[string]state.StepStatus{"before": state.Pending, "applied": state.StepRunning}[kp.point]
			if kp.point == "applied" && checkedDone(r.Stderr) {
				want = state.Pending
			}
			for _, s := range v.Transition.Steps {
				if s.ID == kp.step && s.Status != want {
					failed++
					t.Errorf("%s@%s: step recorded %s, want %s", kp.step, kp.point, s.Status, want)
				}
			}
		}
		r := h.Continue(nil)
		if strings.Contains(r.Stderr, "reclaimed a stale lock") {
			reclaimed++
		}
		if r.Code != 0 {
			t.Fatalf("%s: the run after the last kill: %s", c.event, r)
		}
		if got := h.Where().Phase; got != c.phase {
			t.Fatalf("%s: phase %s, want %s", c.event, got, c.phase)
		}
		checkTable(t, h, c.phase)
		att := h.LastAttempt()
		for _, s := range att.Steps {
			if s.Status != state.StepDone {
				t.Errorf("%s: step %s is %s in a done transition", c.event, s.ID, s.Status)
			}
		}
		// Data: thurst's never changes; a moved copy equals it bit for bit.
		if got := h.Sums(lab.Thurst, root, folders...); !maps.Equal(got, prodData) {
			t.Errorf("%s: thurst's data changed: %v, was %v", c.event, got, prodData)
		}
		switch c.event {
		case "redirect", "upgrade-prod", "switch-back":
			if got := h.Sums(lab.Thermals, root, folders...); !maps.Equal(got, prodData) {
				t.Errorf("%s: thermals' data %v, want thurst's %v", c.event, got, prodData)
			}
		case "epilogue":
			if got := h.Sums(lab.Thermals, root, "students.prod", "raw.prod"); got["students.prod"] != prodData["students"] || got["raw.prod"] != prodData["raw"] {
				t.Errorf("epilogue: thermals' backups %v, want thurst's %v", got, prodData)
			}
		}
		// Reboots: exactly one, of the upgraded box, however many crashes.
		wantBoots := map[string]int{lab.Thurst: boots[lab.Thurst], lab.Thermals: boots[lab.Thermals]}
		switch c.event {
		case "upgrade-dev":
			wantBoots[lab.Thermals]++
		case "upgrade-prod":
			wantBoots[lab.Thurst]++
		}
		for b, n := range wantBoots {
			if got := h.Boots(b); got != n {
				t.Errorf("%s: %s booted %d times, want %d (a reboot applied twice?)", c.event, b, got-boots[b], n-boots[b])
			}
		}
		ran := h.InstallRuns(lab.Thurst) + h.InstallRuns(lab.Thermals) - installs
		t.Logf("%s: %d kill points, install.sh ran %d times", c.event, len(kills), ran)
	}
	if reclaimed != tried {
		t.Errorf("%d stale locks reclaimed after %d crashes", reclaimed, tried)
	}
	figure(t, "crash: kill points tried %d, failed %d (full=%v); stale locks reclaimed %d; install.sh re-run after %d kills at install@applied",
		tried, failed, full(), reclaimed, installKills)
}

// checkedDone reports whether the killed run says its kill fired in the
// Check of the step it was killed after, which found it done (so it was
// not applied, and is not recorded running).
func checkedDone(stderr string) bool {
	return strings.Contains(stderr, injected.FoundDone)
}
