package reliability

import (
	"strconv"
	"syscall"
	"testing"
	"time"

	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// Where the fault tests put their faults: at a gate (lab.GateShell) a
// program boxswap started is held, so the fault lands while boxswap is in
// the step, with the program running; no sleep decides it.

// gateRsync puts an rsync wrapper first in PATH on box (its own disk):
// each transfer (not a dry run, not the receiving --server end) stops at
// the gate "rsync" while it is armed, then execs /usr/bin/rsync.
func gateRsync(t *testing.T, h *labtest.Harness, box string) {
	t.Helper()
	script := "#!/bin/sh\ncase \" $* \" in\n*\" --server \"*|*\" --dry-run \"*) ;;\n*) " + lab.GateShell("rsync") + " ;;\nesac\nexec /usr/bin/rsync \"$@\"\n"
	h.Sh(box, "cat > /usr/local/bin/rsync <<'EOF'\n"+script+"EOF\nchmod 755 /usr/local/bin/rsync")
}

// maxPasses bounds the arrivals at a gate let go in steps before the one
// a test means (a sync gate sees every sync of a transition).
const maxPasses = 20

// holdIn arms gate on box and starts boxswap with args; it returns once a
// program held at the gate was started by step, boxswap still running in
// it (the state records step running while the program is held). Arrivals
// in other steps are let go, each logged. The gate stays armed, its
// program held: the caller injects its fault, then releases the gate.
func holdIn(t *testing.T, h *labtest.Harness, box, gate, step string, args ...string) (*labtest.Proc, *labtest.Gate, int) {
	t.Helper()
	g := h.Arm(box, gate)
	p := h.Start(nil, args...)
	for passes := 0; ; passes++ {
		pid := g.Wait(p, 3*time.Minute)
		v, r, err := h.TryWhere()
		if err != nil {
			_ = p.Signal(syscall.SIGKILL)
			t.Fatalf("%s: gate %s reached (pid %d): %v: %s\nthe run: %s", box, gate, pid, err, r, p.Wait())
		}
		running := v.Running()
		if running == step {
			if !g.Alive(pid) {
				_ = p.Signal(syscall.SIGKILL)
				t.Fatalf("%s: pid %d held at gate %s in %s is gone: %s", box, pid, gate, step, p.Wait())
			}
			return p, g, pid
		}
		if passes == maxPasses {
			_ = p.Signal(syscall.SIGKILL)
			t.Fatalf("%s: gate %s reached %d times, never in %s (last in %q): %s", box, gate, passes+1, step, running, p.Wait())
		}
		t.Logf("%s: gate %s reached in %q, not %s: let go, waiting for the next arrival", box, gate, running, step)
		g.Pass()
	}
}

// sessionsCmd prints the PIDs of the commands running in box's SSH
// sessions (children of a per-connection sshd), its own left out.
const sessionsCmd = `me=$$; for d in /proc/[0-9]*; do p=${d#/proc/}; [ "$p" = "$me" ] && continue; ` +
	`pp=$(sed 's/.*) //' "$d/stat" 2>/dev/null | cut -d' ' -f2); [ -n "$pp" ] || continue; ` +
	`case "$(cat "/proc/$pp/comm" 2>/dev/null)" in sshd*) case "$(cat "$d/comm" 2>/dev/null)" in sshd*) ;; *) echo "$p" ;; esac ;; esac; done; true`

// waitAttached waits until a command of boxswap's runs in an SSH session
// on box (attached to the held program, or the held program itself), so a
// kill or a cut lands on a command in flight, not between two.
func waitAttached(t *testing.T, h *labtest.Harness, p *labtest.Proc, box string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for h.Sh(box, sessionsCmd) == "" {
		select {
		case <-p.Done():
			t.Fatalf("%s: boxswap ended before a command of its ran there: %s", box, p.Wait())
		default:
		}
		if time.Now().After(deadline) {
			_ = p.Signal(syscall.SIGKILL)
			t.Fatalf("%s: no command of boxswap's ran in an SSH session there within a minute: %s", box, p.Wait())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitingFor is what boxswap writes once its reboot step waits for box.
func waitingFor(box string) string { return "waiting for " + box + " to come back on" }

// killDuring SIGKILLs boxswap (started with verb) in step, at gate on box:
// for "reboot", once it waits for the box (the box still up, its reboot
// asked); else while the gated program runs and boxswap is attached to
// it. It releases the gate, waits for the box's new boot (a gate armed
// before it would be lost) or for an rsync let go to end (so the resume's
// rsync runs alone), and reports whether the kill hit the step:
// boxswap killed, the step left running.
func killDuring(t *testing.T, h *labtest.Harness, verb, step, box, gate string) bool {
	t.Helper()
	p, g, pid := holdIn(t, h, box, gate, step, "--yes", verb)
	if gate == "reboot" {
		h.WaitOutput(p, waitingFor(box), time.Minute)
	} else {
		waitAttached(t, h, p, box)
	}
	boot := ""
	if gate == "reboot" {
		boot = bootID(t, h, box)
	}
	_ = p.Signal(syscall.SIGKILL)
	r := p.Wait()
	switch gate {
	case "reboot":
		releaseReboot(t, h, g, boot)
	case "rsync":
		g.Release()
		g.WaitGone(pid, 2*time.Minute)
	default:
		g.Release()
	}
	if !r.Killed() {
		t.Errorf("%s: not killed: %s", step, r)
		return false
	}
	if got := h.Where().Running(); got != step {
		t.Errorf("%s: after the kill the running step is %q, want it (the kill missed it)", step, got)
		return false
	}
	return true
}

// cutDuring cuts box's SSH connections while boxswap (started with args)
// is attached to the program held at gate in step, then releases the
// gate; it returns the run's end and how many connections the cut killed.
func cutDuring(t *testing.T, h *labtest.Harness, box, gate, step string, args ...string) (labtest.Result, int) {
	t.Helper()
	p, g, pid := holdIn(t, h, box, gate, step, args...)
	waitAttached(t, h, p, box)
	n, err := h.Lab.Cut(box)
	if err != nil {
		t.Errorf("cut %s: %v", box, err)
	}
	if gate == "rsync" {
		// rsync ran in boxswap's session, not detached: it ends with the
		// session, and must not run on beside the retry's rsync.
		h.Sh(box, "kill -9 "+strconv.Itoa(pid))
		g.WaitGone(pid, time.Minute)
	}
	g.Release()
	return p.Wait(), n
}

// cutLive cuts box's SSH connections until a cut kills one (the one
// boxswap reconnected since the last), within a minute; for the reboot
// wait, whose polls reconnect between two cuts.
func cutLive(t *testing.T, h *labtest.Harness, p *labtest.Proc, box string) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		n, err := h.Lab.Cut(box)
		if err != nil {
			t.Fatalf("cut %s: %v", box, err)
		}
		if n > 0 {
			return n
		}
		select {
		case <-p.Done():
			t.Fatalf("%s: boxswap ended before a cut hit its connection: %s", box, p.Wait())
		default:
		}
		if time.Now().After(deadline) {
			_ = p.Signal(syscall.SIGKILL)
			t.Fatalf("%s: no connection of boxswap's to cut within a minute (its polls did not reconnect): %s", box, p.Wait())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bootID is box's boot id, read now.
func bootID(t *testing.T, h *labtest.Harness, box string) string {
	t.Helper()
	id, err := h.Lab.BootID(box)
	if err != nil {
		t.Fatalf("%s: boot id: %v", box, err)
	}
	return id
}

// releaseReboot releases the reboot gate g and waits until its box has
// booted again (a boot id other than before): the next gate armed there
// lives in that boot's /run.
func releaseReboot(t *testing.T, h *labtest.Harness, g *labtest.Gate, before string) {
	t.Helper()
	g.Release()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		id, err := h.Lab.BootID(g.Box)
		if err == nil && id != before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not booted again within 2m of its reboot gate's release (boot id %q, was %q, %v)", g.Box, id, before, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
