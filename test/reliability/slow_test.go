package reliability

import (
	"testing"
	"time"

	"boxswap/test/labtest"
)

// slowRsync makes rsync on box take a second more per run (a wrapper
// first in PATH, on the box's own disk), so a test can act mid-rsync.
func slowRsync(t *testing.T, h *labtest.Harness, box string) {
	t.Helper()
	h.Sh(box, `printf '#!/bin/sh\nsleep 1\nexec /usr/bin/rsync "$@"\n' > /usr/local/bin/rsync && chmod 755 /usr/local/bin/rsync`)
}

// slowInstall makes the lab's install.sh on box sleep two seconds once it
// has logged that it started, so a test can act during it: a flag outside
// the checkout (editing install.sh would be a local edit the upgrades'
// preflight refuses).
func slowInstall(t *testing.T, h *labtest.Harness, box string) {
	t.Helper()
	h.Sh(box, `touch /var/lib/lab/install.slow && grep -q install.slow /root/nbhosting/install.sh`)
}

// killDuring starts a run, waits until step is recorded running and then
// delay more, and SIGKILLs it; it reports whether the kill hit the step.
func killDuring(t *testing.T, h *labtest.Harness, verb, step string, delay time.Duration) bool {
	t.Helper()
	p := h.Start(nil, "--yes", verb)
	if !h.WaitRunning(p, step, 60*time.Second) {
		r := p.Wait()
		t.Errorf("%s never seen running: %s", step, r)
		return false
	}
	time.Sleep(delay)
	select {
	case <-p.Done():
		t.Errorf("%s: the run ended before the kill: %s", step, p.Wait())
		return false
	default:
	}
	_ = p.Signal(9)
	r := p.Wait()
	if !r.Killed() {
		t.Errorf("%s: not killed: %s", step, r)
		return false
	}
	return true
}
