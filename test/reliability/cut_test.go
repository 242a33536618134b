package reliability

import (
	"maps"
	"strings"
	"testing"
	"time"

	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// TestCutLinks cuts a box's SSH connections while a step runs, each at a
// gate holding the step's program with boxswap attached: during install.sh
// (detached on the box: it goes on, and the retry re-attaches to it; it
// runs once), mid-rsync (safe to repeat: retried after a backoff, the
// transition completes by itself) and during the reboot wait (the box
// held up, its reboot asked: each cut hits a poll's connection, and the
// wait reconnects).
func TestCutLinks(t *testing.T) {
	h := labtest.New(t, lab.Options{RebootDelay: 2 * time.Second})
	const root = "/nbhosting"
	prodData := h.Sums(lab.Thurst, root, "students", "raw")
	gateRsync(t, h, lab.Thurst)
	cuts, waitCuts := 0, 0

	// During the reboot wait: the wait's polls reconnect.
	p, g, _ := holdIn(t, h, lab.Thermals, "reboot", "upgrade-dev/reboot", "--yes", "next", "--stop-before", "upgrade-dev/install")
	h.WaitOutput(p, waitingFor(lab.Thermals), time.Minute)
	for range 3 {
		cutLive(t, h, p, lab.Thermals)
		waitCuts++
	}
	g.Release()
	if r := p.Wait(); r.Code != 130 || !strings.Contains(r.Stdout, "stopped at upgrade-dev/install") {
		t.Fatalf("next --stop-before install, with cuts in the reboot wait: %s", r)
	}

	// During install.sh: it runs detached on the box (issue 12), so the
	// cut does not stop it; the engine checks again after a backoff,
	// re-attaches to it or reads its result, and install.sh ran once.
	installs := h.InstallRuns(lab.Thermals)
	r, n := cutDuring(t, h, lab.Thermals, "install", "upgrade-dev/install", "--yes", "resume")
	if n == 0 {
		t.Errorf("the cut during install.sh killed no connection")
	}
	cuts++
	if r.Code != 0 || !strings.Contains(r.Stdout, "outcome unknown") {
		t.Errorf("resume with a cut during install.sh: want a retry that re-attaches, and success: %s", r)
	}
	if got := h.InstallRuns(lab.Thermals) - installs; got != 1 {
		t.Errorf("install.sh ran %d times across the cut, want once", got)
	}
	checkTable(t, h, "dev-upgraded")

	// Mid-rsync: sync steps are safe to repeat; the engine checks again
	// after a backoff and the transition completes without resume.
	r, n = cutDuring(t, h, lab.Thurst, "rsync", "redirect/sync/students", "--yes", "next")
	if n == 0 {
		t.Errorf("the cut mid-rsync killed no connection")
	}
	cuts++
	if r.Code != 0 || !strings.Contains(r.Stdout, "outcome unknown") {
		t.Errorf("redirect with a cut mid-rsync: want a retry and success: %s", r)
	}
	checkTable(t, h, "redirected")
	if got := h.Sums(lab.Thermals, root, "students", "raw"); !maps.Equal(got, prodData) {
		t.Errorf("thermals' data after the cut %v, want %v", got, prodData)
	}
	figure(t, "cut links: %d cuts mid-command at a gate (install.sh: detached, re-attached by the retry, ran once; rsync: retried after backoff) and %d cuts during the reboot wait, each on a live poll connection; all recovered",
		cuts, waitCuts)
}
