package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"boxswap/steps"
	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// The faults of issue 12 on the Fedora boxes, with real dnf and rpm.
//
// Which rpm transaction is interrupted: the offline one, in the upgrade
// boot. It is the one that changes the release (the dnf upgrade --refresh
// before it has nothing to do on the lab's release-27 repository, as on a
// box kept up to date), and it runs where no SSH link reaches: only a power
// cut can interrupt it, as on real hardware. The lab's nbh-runtime has a
// %post that blocks while the box has the FIFO /etc/boxswap-lab-gate-post
// (test/lab/lab/images/fedora/build-repos.sh): the gate is on disk, since
// the upgrade boot is a new boot, and the fault lands while the
// transaction is held there.

// postGate is the FIFO that arms nbh-runtime's %post; postMarker the file
// the %post writes before it blocks on it.
const (
	postGate   = "etc/boxswap-lab-gate-post"
	postMarker = "var/lib/boxswap-lab-gate-post"
)

// armPost arms nbh-runtime's %post gate on box.
func armPost(t *testing.T, h *labtest.Harness, box string) {
	t.Helper()
	h.Sh(box, "rm -f /"+postMarker+" /"+postGate+" && mkfifo /"+postGate)
}

// waitPost waits until box's transaction is held in nbh-runtime's %post
// (its marker on the box's disk), or p ends.
func waitPost(t *testing.T, h *labtest.Harness, p *labtest.Proc, box string) {
	t.Helper()
	marker := h.Disk(box, postMarker)
	deadline := time.Now().Add(10 * time.Minute)
	for {
		if _, err := os.Stat(marker); err == nil {
			return
		}
		select {
		case <-p.Done():
			t.Fatalf("boxswap ended before the offline transaction reached nbh-runtime's %%post on %s: %s", box, p.Wait())
		default:
		}
		if time.Now().After(deadline) {
			p.Cmd.Process.Kill()
			t.Fatalf("the offline transaction never reached nbh-runtime's %%post on %s: %s", box, p.Wait())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// finish waits for p and, if it failed, resumes once; it returns all they
// printed.
func (r *rehearsal) finish(t *testing.T, p *labtest.Proc) string {
	t.Helper()
	res := p.Wait()
	r.moving += res.Took
	out := res.Stdout + res.Stderr
	if res.Code != 0 {
		t.Logf("next after the fault: exit %d; resuming", res.Code)
		res = r.move("--yes", "resume")
		out += res.Stdout + res.Stderr
		if res.Code != 0 {
			t.Fatalf("resume after the fault: %s", res)
		}
	}
	if !strings.Contains(out, "needs recovery") {
		t.Errorf("boxswap did not say the package database needed recovery:\n%s", out)
	}
	return out
}

// upgradeProdKillDnf (the second cycle, 29 to 31): dnf, which runs the
// rpm transaction in its own process, is killed (SIGKILL, inside thurst)
// in nbh-runtime-31's %post in the upgrade boot. The unit fails, its
// cleanup reboots the box, half upgraded; boxswap recovers the database
// and upgrade-prod ends healthy on 31.
func (r *rehearsal) upgradeProdKillDnf(t *testing.T) {
	h, box := r.h, lab.Thurst
	armPost(t, h, box)
	p := h.Start(nil, "--yes", "next")
	waitPost(t, h, p, box)
	// Disarmed for later transactions; the one held stays blocked in its
	// open of the FIFO until dnf is killed.
	h.Sh(box, "rm -f /"+postGate)
	// Exactly one dnf runs the upgrade's transaction, held in the %post:
	// more (or none) would make the kill below not the fault this test
	// means.
	pid := strings.TrimSpace(h.Sh(box, "pgrep -x dnf-3 || true"))
	if strings.Count(pid, "\n") != 0 || pid == "" {
		t.Fatalf("%s: want the one dnf of the upgrade boot, pgrep -x dnf-3 found %q", box, pid)
	}
	// Held in its open(2) of the FIFO, dnf waits in the kernel's
	// wait_for_partner: it is in the %post now, and stays there.
	if wchan := h.Sh(box, "for w in /proc/"+pid+"/task/*/wchan; do cat $w; echo; done"); !strings.Contains(wchan, "wait_for_partner") {
		t.Fatalf("%s: dnf (pid %s) is not held in the %%post's gate: it waits in %q", box, pid, wchan)
	}
	h.Sh(box, "kill -9 "+pid)
	t.Logf("%s: dnf (pid %s) killed in the upgrade boot, in nbh-runtime-31's %%post", box, pid)
	r.finish(t, p)
	rpmHealthy(t, h, box, 31)
}

// upgradeProdCrashOffline: thurst's power is cut in the middle of the
// offline upgrade's rpm transaction (in nbh-runtime-29's %post), then it
// boots again: the upgrade boot does not come back (dnf removed
// /system-update when it started), so thurst boots half upgraded, rpm
// holding two versions of packages. boxswap recovers the database (dnf
// remove --duplicates, then distro-sync, recorded) and upgrade-prod ends
// with a healthy rpm database on release 29.
func (r *rehearsal) upgradeProdCrashOffline(t *testing.T) {
	h, box := r.h, lab.Thurst
	armPost(t, h, box)
	p := h.Start(nil, "--yes", "next")
	waitPost(t, h, p, box)
	if err := h.Lab.Crash(box); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: power cut in the upgrade boot, in nbh-runtime-29's %%post", box)
	// The flag goes while the box is down, on its disk: no later
	// transaction is slowed.
	if err := os.Remove(h.Disk(box, postGate)); err != nil {
		t.Fatal(err)
	}
	if err := h.Lab.Start(box); err != nil {
		t.Fatal(err)
	}
	dups, _, _ := h.Lab.Run(box, "rpm -qa --qf '%{NAME}-%{VERSION}\\n' | sort | tr '\\n' ' '; test -e /system-update && echo '/system-update still there'")
	t.Logf("%s after the crash: %s", box, dups)
	r.finish(t, p)
	rpmHealthy(t, h, box, 29)
}

// rpmHealthy checks box's rpm database: no package twice, the release's
// packages installed, nbh-legacy replaced by nbh-compat, dnf check clean.
func rpmHealthy(t *testing.T, h *labtest.Harness, box string, release int) {
	t.Helper()
	rel := strconv.Itoa(release)
	got := h.Sh(box, "rpm -qa --qf '%{NAME}\\n' | sort | uniq -d; rpm -q --qf '%{NAME}-%{VERSION}\\n' fedora-release nbh-runtime nbh-compat; rpm -q nbh-legacy >/dev/null && echo nbh-legacy installed; dnf -q check && echo 'dnf check: ok'")
	want := "fedora-release-" + rel + "\nnbh-runtime-" + rel + ".0\nnbh-compat-" + rel + ".0\ndnf check: ok"
	if got != want {
		t.Errorf("%s: rpm database:\n%s\nwant\n%s", box, got, want)
	}
}

// optionsPassed: upgrade.options (the lab's Fedora boxes.yaml has
// --allowerasing) reached the box's dnf command line, quoted, as plan
// showed it.
func optionsPassed(t *testing.T, h *labtest.Harness, plan string) {
	t.Helper()
	want := "dnf system-upgrade download --releasever=29 -y '--allowerasing'"
	if !strings.Contains(plan, want) {
		t.Errorf("plan does not show %q:\n%s", want, plan)
	}
	unit := steps.UnitName("upgrade-dev/dnf-download")
	if got := h.Sh(lab.Thermals, "cat "+steps.RunDir+"/"+unit+"/cmd"); got != want {
		t.Errorf("thermals ran %q, want %q", got, want)
	}
}

// TestFedoraUpgradeBootFails: the offline transaction fails in the upgrade
// boot (fedora-release-29's %pre refuses while the box has
// /etc/boxswap-lab-fail-upgrade); the box comes back on Fedora 27, and the
// reboot step fails saying so, with the end of dnf's own lines of
// `dnf system-upgrade log --number=-1` in its error (issue 12, item 6).
func TestFedoraUpgradeBootFails(t *testing.T) {
	h := labtest.New(t, lab.Options{Kind: lab.KindSystemd, OS: lab.OSFedora})
	h.Sh(lab.Thermals, "touch /etc/boxswap-lab-fail-upgrade")
	res := h.Run("--yes", "next")
	if res.Code == 0 {
		t.Fatalf("upgrade-dev succeeded with the upgrade refused: %s", res)
	}
	w := h.Where()
	if w.Transition == nil || w.Transition.FailedStep != "upgrade-dev/reboot" {
		t.Fatalf("failed step: %+v\n%s", w.Transition, res)
	}
	t.Logf("the error:\n%s", res.Stderr)
	for _, want := range []string{"the upgrade did not take", "runs Fedora 27", "dnf system-upgrade log --number=-1"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("the reboot step's error does not say %q:\n%s", want, res.Stderr)
		}
	}
	// dnf's own lines are in the record: boxswap log shows them.
	log := h.MustRun("log", "--wide").Stdout
	for _, want := range []string{"ends with:", "fedora-release"} {
		if !strings.Contains(log, want) {
			t.Errorf("boxswap log --wide does not show %q of the reboot step's failure:\n%s", want, log)
		}
	}
	if got := h.Sh(lab.Thermals, ". /etc/os-release; echo $VERSION_ID"); got != "27" {
		t.Errorf("thermals runs %s after the failed upgrade boot", got)
	}
}
