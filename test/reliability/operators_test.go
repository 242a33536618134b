package reliability

import (
	"encoding/json"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"boxswap/state"
	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// TestOperators: a second next while one runs is refused naming the
// holder; where and log answer during a run; a first SIGINT (or SIGTERM)
// stops at the next safe point (at once in the reboot wait) and records it
// interrupted (exit 130, 143 for SIGTERM), a second one
// interrupts the step itself, recorded interrupted and left for resume to
// check again. Each signal lands at a gate (the reboot held before the box
// goes down, install.sh held before it starts), so it lands in its step.
func TestOperators(t *testing.T) {
	h := labtest.New(t, lab.Options{RebootDelay: 2 * time.Second})

	// A second operator, while the first waits for thermals' reboot (held
	// up at its gate, the reboot asked, until released).
	p, reboot, _ := holdIn(t, h, lab.Thermals, "reboot", "upgrade-dev/reboot", "--yes", "next")
	h.WaitOutput(p, waitingFor(lab.Thermals), time.Minute)
	second := h.Run("--yes", "next")
	if second.Code != 3 {
		t.Errorf("a second next during a run: want exit 3 (locked): %s", second)
	}
	pid := strconv.Itoa(p.Cmd.Process.Pid)
	for _, w := range []string{pid, "boxswap next"} {
		if !strings.Contains(second.Stderr, w) {
			t.Errorf("the refusal does not name the holder (%s): %s", w, second)
		}
	}
	for _, verb := range []string{"resume", "rollback"} {
		if r := h.Run("--yes", verb); r.Code != 3 {
			t.Errorf("%s during a run: want exit 3: %s", verb, r)
		}
	}
	v := h.Where()
	if v.Transition == nil || v.Transition.Status != state.Running || v.Lock == nil || strconv.Itoa(v.Lock.PID) != pid {
		t.Errorf("where during a run: transition %+v, lock %+v", v.Transition, v.Lock)
	}
	if l := h.Log(); len(l.Attempts) != 1 {
		t.Errorf("log during a run: %d attempts", len(l.Attempts))
	}
	figure(t, "operators: a second next refused (exit 3, naming pid and command) in %s", second.Took.Round(time.Millisecond))

	// One SIGINT during the reboot wait ends the wait (issue 10): the
	// reboot step is left running, for resume to check and wait again.
	boot := bootID(t, h, lab.Thermals)
	sent := time.Now()
	if err := p.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	r := p.Wait()
	stopped := time.Since(sent)
	releaseReboot(t, h, reboot, boot)
	if r.Code != 130 {
		t.Errorf("one SIGINT: want exit 130: %s", r)
	}
	figure(t, "operators: one SIGINT during the reboot wait stopped boxswap in %s", stopped.Round(time.Millisecond))
	v = h.Where()
	if v.Transition == nil || v.Transition.Status != state.Interrupted || v.Transition.FailedStep != "upgrade-dev/reboot" {
		t.Errorf("after one SIGINT: %+v (want interrupted in the reboot wait)", v.Transition)
	}
	if !stepIs(v, "upgrade-dev/reboot", state.StepRunning) {
		t.Errorf("one SIGINT during the reboot wait: %+v (want the reboot left running)", v.Transition)
	}

	// Two signals during install.sh: the step itself is interrupted and
	// left running; install.sh runs detached on the box (issue 12), so it
	// goes on, and the next run finds it done: it ran once. SIGINT on
	// upgrade-dev's install, SIGTERM on redirect's.
	for _, c := range []struct {
		sig        syscall.Signal
		verb, step string
		box        string
	}{
		{syscall.SIGINT, "resume", "upgrade-dev/install", lab.Thermals},
		{syscall.SIGTERM, "next", "redirect/install/thermals", lab.Thermals},
	} {
		installs := h.InstallRuns(c.box)
		var g *labtest.Gate
		p, g, _ = holdIn(t, h, c.box, "install", c.step, "--yes", c.verb)
		waitAttached(t, h, p, c.box)
		// The second signal once the first is seen: two sent at once
		// may reach boxswap as one.
		_ = p.Signal(c.sig)
		h.WaitOutput(p, "stopping at the next safe point", time.Minute)
		_ = p.Signal(c.sig)
		r = p.Wait()
		g.Release()
		if want := 128 + int(c.sig); r.Code != want {
			t.Errorf("two %v: want exit %d: %s", c.sig, want, r)
		}
		v = h.Where()
		if v.Transition == nil || v.Transition.Status != state.Interrupted || !stepIs(v, c.step, state.StepRunning) {
			t.Errorf("after two %v: %+v (want interrupted, install left running for resume to check)", c.sig, v.Transition)
		}
		if r := h.Run("--yes", "resume"); r.Code != 0 {
			t.Fatalf("resume: %s", r)
		}
		if got := h.InstallRuns(c.box) - installs; got != 1 {
			t.Errorf("two %v during %s: install.sh ran %d times, want once (detached, found done by resume)", c.sig, c.step, got)
		}
	}
	hist := h.Log().History
	n := 0
	for _, e := range hist {
		if e.Kind == "interrupted" {
			n++
		}
	}
	if n < 3 {
		b, _ := json.Marshal(hist)
		t.Errorf("%d interruptions in the history, want 3: %s", n, b)
	}
	checkTable(t, h, "redirected")

	// SIGTERM once, between steps, in a later move.
	if r := h.Run("--yes", "next"); r.Code != 0 {
		t.Fatalf("upgrade-prod: %s", r)
	}
	p, g, _ := holdIn(t, h, lab.Thurst, "install", "switch-back/install/thurst", "--yes", "next")
	_ = p.Signal(syscall.SIGTERM)
	h.WaitOutput(p, "stopping at the next safe point", time.Minute)
	g.Release()
	r = p.Wait()
	v = h.Where()
	if r.Code != 143 || v.Transition == nil || v.Transition.Status != state.Interrupted || !stepIs(v, "switch-back/install/thurst", state.StepDone) {
		t.Errorf("one SIGTERM: %s; where %+v", r, v.Transition)
	}
	if r := h.Run("--yes", "resume"); r.Code != 0 {
		t.Fatalf("resume: %s", r)
	}
	checkTable(t, h, "switched-back")
}

func stepIs(v labtest.View, id string, status state.StepStatus) bool {
	if v.Transition == nil {
		return false
	}
	for _, s := range v.Transition.Steps {
		if s.ID == id {
			return s.Status == status
		}
	}
	return false
}
