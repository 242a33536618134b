package reliability

import (
	"maps"
	"strings"
	"syscall"
	"testing"
	"time"

	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// TestRealBoxes is the reliability sample on real boxes (systemd-nspawn,
// real dnf and rpm, real addresses): one whole f27 → f29 cycle with a
// fault in every transition, checked on the boxes after each.
//   - upgrade-dev: boxswap killed once the reboot into the upgrade is
//     asked, and the box itself crashed (no shutdown) before boxswap comes
//     back: resume finds it, waits, and the box ends on 29 with a healthy
//     rpm database.
//   - redirect: the operator's link to thurst cut while the first sync
//     pass's rsync runs (held at its gate), until boxswap has seen the
//     cut: the move ends right (retried, or resumed), with
//     production answered throughout but for the window, never by two boxes.
//   - upgrade-prod: boxswap killed after the download is in place; resume.
//   - switch-back: a failure injected once the address moved; rollback
//     puts production back on thermals; next then completes, measured by
//     a prober that counts a 502 as down.
func TestRealBoxes(t *testing.T) {
	h := labtest.New(t, lab.Options{Kind: lab.KindSystemd, OS: lab.OSFedora, Files: 40, FileSize: 512})
	const root = "/nbhosting"
	prodData := h.Sums(lab.Thurst, root, "students", "raw")
	checkTable(t, h, "start")

	// upgrade-dev: kill boxswap once the reboot is asked, crash the box.
	before := h.Boots(lab.Thermals)
	r := h.RunEnv(fault("upgrade-dev/reboot", "applied", "kill"), "--yes", "next")
	if !r.Killed() {
		t.Fatalf("next with a kill after the reboot: %s", r)
	}
	if err := h.Lab.Crash(lab.Thermals); err != nil {
		t.Fatal(err)
	}
	if err := h.Lab.Start(lab.Thermals); err != nil {
		t.Fatal(err)
	}
	if r := h.Run("--yes", "resume"); r.Code != 0 {
		t.Fatalf("resume after the crash: %s", r)
	}
	checkTable(t, h, "dev-upgraded")
	if got := h.Sh(lab.Thermals, "rpm -q fedora-release && rpm -qa | wc -l && test ! -e /system-update && echo clean"); !strings.HasPrefix(got, "fedora-release-29") || !strings.HasSuffix(got, "clean") {
		t.Errorf("thermals after the crash and resume: %q", got)
	}
	if n := h.Boots(lab.Thermals) - before; n < 3 {
		t.Errorf("thermals booted %d times during upgrade-dev, want at least 3 (the upgrade's, after it, after the crash)", n)
	}

	// redirect: a cut of the operator's link to thurst mid-sync.
	// The cut lands while rsync, held at its gate, runs in boxswap's
	// session, and lasts until boxswap has seen it (or ended).
	gateRsync(t, h, lab.Thurst)
	prober := labtest.StartProber(h.Lab, h.Lab.Info.ProductionURL, 50*time.Millisecond)
	p, g, _ := holdIn(t, h, lab.Thurst, "rsync", "redirect/sync/students", "--yes", "next")
	waitAttached(t, h, p, lab.Thurst)
	n, err := h.Lab.Cut(lab.Thurst)
	if err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	seenCut(t, p, 2*time.Minute)
	down := time.Since(cut)
	if err := h.Lab.Heal(lab.Thurst); err != nil {
		t.Fatal(err)
	}
	g.Release()
	if r := p.Wait(); r.Code != 0 {
		if r := h.Run("--yes", "resume"); r.Code != 0 {
			t.Fatalf("resume after the cut: %s", r)
		}
	}
	probe := prober.Stop()
	checkTable(t, h, "redirected")
	if got := strings.Join(probe.Sequence(), " "); got != "thurst thermals" || probe.Alternates() {
		t.Errorf("production during redirect answered by %q, want thurst then thermals: %s", got, probe)
	}
	if got := h.Sums(lab.Thermals, root, "students", "raw"); !maps.Equal(got, prodData) {
		t.Errorf("thermals' data after the cut %v, want thurst's %v", got, prodData)
	}
	figure(t, "real boxes: a cut of the operator's link mid-sync (%d connections reset, healed %s later once boxswap had seen it): redirect ended right; production's longest gap %s",
		n, down.Round(time.Millisecond), probe.Longest().Len().Round(time.Millisecond))

	// upgrade-prod: kill after the download.
	r = h.RunEnv(fault("upgrade-prod/dnf-download", "applied", "kill"), "--yes", "next")
	if !r.Killed() {
		t.Fatalf("next with a kill after the download: %s", r)
	}
	if r := h.Run("--yes", "resume"); r.Code != 0 {
		t.Fatalf("resume after the kill: %s", r)
	}
	checkTable(t, h, "prod-upgraded")

	// switch-back: fail once the address moved, roll back, then go on.
	r = h.RunEnv(fault("switch-back/take-address/thurst", "applied", "fail"), "--yes", "next")
	if r.Code == 0 || !strings.Contains(r.Stderr, "injected failure") {
		t.Fatalf("switch-back with a failure injected: %s", r)
	}
	r = h.Run("--yes", "rollback")
	if r.Code != 0 {
		t.Fatalf("rollback: %s", r)
	}
	if bad := h.CheckTable("prod-upgraded", from, to); len(bad) > 0 {
		t.Errorf("after the rollback, boxes do not match the table at prod-upgraded:\n  %s\n%s", strings.Join(bad, "\n  "), r)
	}
	prober = labtest.StartProber(h.Lab, h.Lab.Info.ProductionURL, 20*time.Millisecond)
	if r := h.Run("--yes", "next"); r.Code != 0 {
		prober.Stop()
		t.Fatalf("switch-back after the rollback: %s", r)
	}
	probe = prober.Stop()
	checkTable(t, h, "switched-back")
	if got := strings.Join(probe.Sequence(), " "); got != "thermals thurst" || probe.Alternates() {
		t.Errorf("production during switch-back answered by %q, want thermals then thurst: %s", got, probe)
	}
	figure(t, "real boxes: switch-back after a rollback; production's longest gap (a 502 counts as down) %s, %d probes",
		probe.Longest().Len().Round(time.Millisecond), len(probe.Answers))

	advance(t, h, "done")
	checkTable(t, h, "done")
	if got := h.Sums(lab.Thurst, root, "students", "raw"); !maps.Equal(got, prodData) {
		t.Errorf("thurst's data at the end %v, want %v", got, prodData)
	}
}

// seenCut waits until the run has seen its link cut: it says the step's
// outcome is unknown (it will check again), or it ended.
func seenCut(t *testing.T, p *labtest.Proc, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); !strings.Contains(p.Output(), "outcome unknown"); time.Sleep(100 * time.Millisecond) {
		select {
		case <-p.Done():
			return
		default:
		}
		if time.Now().After(deadline) {
			_ = p.Signal(syscall.SIGKILL)
			t.Fatalf("boxswap did not see the cut within %s (no \"outcome unknown\", still running): %s", within, p.Wait())
		}
	}
}
