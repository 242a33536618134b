package reliability

import (
	"maps"
	"strings"
	"testing"
	"time"

	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// cutDuring starts a run, waits until step is recorded running and then
// delay more, and cuts box's SSH connections; it returns the run's end and
// how many connections the cut killed.
func cutDuring(t *testing.T, h *labtest.Harness, verb, step, box string, delay time.Duration) (labtest.Result, int) {
	t.Helper()
	p := h.Start(nil, "--yes", verb)
	if !h.WaitRunning(p, step, 60*time.Second) {
		t.Fatalf("%s never seen running: %s", step, p.Wait())
	}
	time.Sleep(delay)
	n, err := h.Lab.Cut(box)
	if err != nil {
		t.Errorf("cut %s: %v", box, err)
	}
	return p.Wait(), n
}

// TestCutLinks cuts a box's SSH connections while a step runs: during
// install.sh (detached on the box: it goes on, and the retry re-attaches
// to it; it runs once), mid-rsync (safe to repeat: retried
// after a backoff, the transition completes by itself) and during the
// reboot wait (the wait reconnects).
func TestCutLinks(t *testing.T) {
	h := labtest.New(t, lab.Options{RebootDelay: 2 * time.Second})
	const root = "/nbhosting"
	prodData := h.Sums(lab.Thurst, root, "students", "raw")
	for _, b := range lab.BoxNames {
		slowInstall(t, h, b)
	}
	slowRsync(t, h, lab.Thurst)
	cuts, waitCuts := 0, 0

	// During the reboot wait: the wait's polls reconnect.
	p := h.Start(nil, "--yes", "next", "--stop-before", "upgrade-dev/install")
	if !h.WaitRunning(p, "upgrade-dev/reboot", time.Minute) {
		t.Fatalf("reboot never running: %s", p.Wait())
	}
	for range 3 {
		time.Sleep(700 * time.Millisecond)
		// The box may be down (nothing to cut) or up again (the poll's
		// connection is cut).
		if n, err := h.Lab.Cut(lab.Thermals); err == nil && n > 0 {
			waitCuts++
		}
	}
	if r := p.Wait(); r.Code != 130 || !strings.Contains(r.Stdout, "stopped at upgrade-dev/install") {
		t.Fatalf("next --stop-before install, with cuts in the reboot wait: %s", r)
	}

	// During install.sh: it runs detached on the box (issue 12), so the
	// cut does not stop it; the engine checks again after a backoff,
	// re-attaches to it or reads its result, and install.sh ran once.
	installs := h.InstallRuns(lab.Thermals)
	r, n := cutDuring(t, h, "resume", "upgrade-dev/install", lab.Thermals, time.Second)
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
	r, n = cutDuring(t, h, "next", "redirect/sync/students", lab.Thurst, 1500*time.Millisecond)
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
	figure(t, "cut links: %d cuts mid-command (install.sh: detached, re-attached by the retry, ran once; rsync: retried after backoff) and 3 cuts during the reboot wait (%d hit a live connection); all recovered",
		cuts, waitCuts)
}
