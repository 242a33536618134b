package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"boxswap/boxes"
	"boxswap/steps"
	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// The faults of issue 12, on real boxes with a real apt transaction: each
// runs inside TestCycleDebian's one real upgrade per box.

// localWheel installs, with pip into /usr/local, a package whose wheel is
// then deleted: after the upgrade pip cannot reinstall it (the lab's
// wheelhouse does not have it), as a package whose pinned version does not
// exist for the new python.
const localWheel = `set -e; d=$(mktemp -d); python3 - "$d" <<'PY'
import base64, hashlib, sys, zipfile
name, ver = "local_only", "0.1"
files = {f"{name}/__init__.py": b"X = 1\n",
         f"{name}-{ver}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: local-only\nVersion: {ver}\n".encode(),
         f"{name}-{ver}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: e2e\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
def rec(d):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode() + "," + str(len(d))
files[f"{name}-{ver}.dist-info/RECORD"] = ("".join(f"{p},{rec(d)}\n" for p, d in files.items()) + f"{name}-{ver}.dist-info/RECORD,,\n").encode()
with zipfile.ZipFile(f"{sys.argv[1]}/{name}-{ver}-py3-none-any.whl", "w") as z:
    for p, d in files.items():
        z.writestr(p, d)
PY
pip3 install -q --break-system-packages --no-index --find-links "$d" local_only; rm -rf "$d"`

// aptRuns counts the transactions in box's apt history.
func aptRuns(t *testing.T, h *labtest.Harness, box string) int {
	t.Helper()
	out := h.Sh(box, "cat /var/log/apt/history.log 2>/dev/null | grep -c '^Start-Date' || true")
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("%s: apt history: %q", box, out)
	}
	return n
}

// The gates in the preinst of the lab's nbh-gate packages
// (test/lab/lab/images/debian.sh). nbh-gate 2, in the trixie set,
// pre-depends on trixie's libc6, so an armed dpkgGate holds dpkg in the
// middle of the upgrade's transaction, inside a package, after others were
// unpacked. nbh-gate-rerun 2 pre-depends on nbh-gate 2: after a dpkg
// killed at dpkgGate, only the transaction's next run reaches rerunGate.
const (
	dpkgGate  = "dpkg-preinst"
	rerunGate = "dpkg-rerun"
)

// heldDpkg waits until the upgrade's transaction on g's box is held in
// nbh-gate's preinst, and checks that it is where the fault must land: a
// preinst whose parent is dpkg, running in unit (the detached apt-get
// boxswap started), both alive. It returns the PIDs of dpkg and of the
// preinst.
func heldDpkg(t *testing.T, h *labtest.Harness, g *labtest.Gate, p *labtest.Proc, unit string) (dpkg, preinst int) {
	t.Helper()
	preinst = g.Wait(p, 10*time.Minute)
	dpkg, comm := g.Parent(preinst)
	if comm != "dpkg" {
		t.Fatalf("%s: the process held in nbh-gate's preinst (pid %d) is a child of %s (pid %d), not of dpkg", g.Box, preinst, comm, dpkg)
	}
	cg := h.Sh(g.Box, "cat /proc/"+strconv.Itoa(dpkg)+"/cgroup")
	if !strings.Contains(cg, "/"+unit+".service") {
		t.Fatalf("%s: dpkg (pid %d) does not run in %s: %s", g.Box, dpkg, unit, cg)
	}
	if !g.Alive(dpkg) || !g.Alive(preinst) {
		t.Fatalf("%s: dpkg (pid %d) or its preinst (pid %d) ended while held", g.Box, dpkg, preinst)
	}
	return dpkg, preinst
}

// upgradeDevCutAndPip: the operator's link to thermals is cut while dpkg
// is held in the middle of the apt transaction; boxswap gives up, the
// transaction then goes on and ends on the box; after the heal, resume
// reads its result and the history shows one transaction. Then pip:
// nbh_extras imports again under the new python, local_only fails once
// with pip's reason and the ways on, and is accepted with mark-done.
func (r *rehearsal) upgradeDevCutAndPip(t *testing.T) {
	h, box := r.h, lab.Thermals
	h.Sh(box, localWheel)
	before := aptRuns(t, h, box)
	unit := steps.UnitName("upgrade-dev/apt-upgrade")
	g := h.Arm(box, dpkgGate)
	p := h.Start(nil, "--yes", "next")
	dpkg, _ := heldDpkg(t, h, g, p, unit)
	n, err := h.Lab.Cut(box)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("the cut of %s while dpkg was held reset no connection: boxswap was not attached", box)
	}
	cut := time.Now()
	res := p.Wait()
	r.moving += res.Took
	t.Logf("link cut while dpkg (pid %d) was held in %s; boxswap gave up after %s: exit %d", dpkg, unit, time.Since(cut).Round(time.Second), res.Code)
	if res.Code == 0 {
		t.Fatalf("next succeeded with the link cut: %s", res)
	}
	if !g.Alive(dpkg) {
		t.Fatalf("%s: dpkg (pid %d) ended with the operator's link: the transaction must go on on the box", box, dpkg)
	}
	// Let the transaction go on and end while boxswap is away.
	g.Release()
	h.Sh(box, "for i in $(seq 1 1200); do [ -e "+boxes.Quote(steps.RunDir+"/"+unit+"/rc")+" ] && exit 0; sleep 0.5; done; echo 'the transaction did not end within 10 min' >&2; exit 1")
	t.Logf("on %s after boxswap gave up: the transaction ended with rc %s", box, h.Sh(box, "cat "+boxes.Quote(steps.RunDir+"/"+unit+"/rc")))
	if err := h.Lab.Heal(box); err != nil {
		t.Fatal(err)
	}
	res = r.move("--yes", "resume")
	if res.Code == 0 {
		t.Fatalf("resume went through the pip failure: %s", res)
	}
	out := res.Stdout + res.Stderr
	// The step's check finds the run it recorded ended well: not run again.
	if !strings.Contains(out, "already done: apt-get full-upgrade ("+unit+") exited 0") {
		t.Errorf("resume does not say the transaction that ended while boxswap was away is done:\n%s", res)
	}
	if got := aptRuns(t, h, box) - before; got != 1 {
		t.Errorf("%s: %d apt transactions in the history, want 1 (the one cut from the operator)", box, got)
	}
	w := h.Where()
	if w.Transition == nil || w.Transition.FailedStep != "upgrade-dev/pip-reinstall" {
		t.Fatalf("after resume: %+v\n%s", w.Transition, res)
	}
	for _, want := range []string{"pip could not reinstall 1 of 2 packages for python 3.13", "local-only==0.1: ERROR: ",
		"boxswap mark-done upgrade-dev/pip-reinstall --reason"} {
		if !strings.Contains(out, want) {
			t.Errorf("the pip failure does not say %q:\n%s", want, res)
		}
	}
	if got := h.Sh(box, "python3 -c 'import sys, nbh_extras; print(sys.version_info[:2], nbh_extras.VERSION)'"); got != "(3, 13) 1.0" {
		t.Errorf("%s: nbh_extras under the new python: %q", box, got)
	}
	for _, s := range h.LastAttempt().Steps {
		if s.ID == "upgrade-dev/pip-snapshot" && !strings.HasSuffix(strings.Join(s.Tail, "\n"), "2 packages pip installed under /usr/local: local-only==0.1 nbh-extras==1.0") {
			t.Errorf("pip snapshot: %q (only what pip installed under /usr/local, not pip, setuptools, wheel of /usr/lib)", s.Tail)
		}
		if s.ID == "upgrade-dev/reboot" {
			t.Logf("reboot record: %s", strings.Join(s.Tail, " | "))
		}
	}
	// Resumed without a fix, it tries only the missing package again.
	res = r.move("--yes", "resume")
	if res.Code == 0 || !strings.Contains(res.Stdout+res.Stderr, "pip could not reinstall 1 of 2") {
		t.Errorf("second resume: %s", res)
	}
	h.MustRun("mark-done", "upgrade-dev/pip-reinstall", "--reason", "local_only was a test package; dropped")
	r.mustMove(t, "--yes", "resume")
	if got := h.Sh(box, "dpkg --audit; ls /var/lib/dpkg/updates | wc -l"); got != "0" {
		t.Errorf("%s: the package database after upgrade-dev: %q", box, got)
	}
	found := false
	for _, e := range h.Log().History {
		found = found || e.Kind == "mark-done" && strings.Contains(e.Detail, "local_only was a test package")
	}
	if !found {
		t.Error("the history does not show the mark-done")
	}
}

// upgradeProdKillAndCrash: upgrade-prod waits at its gate, saying how long
// the new production served; then dpkg is killed inside thurst while it is
// held in the middle of the transaction (boxswap recovers and runs it
// again, by itself); then thurst's power is cut while that second run is
// held at the same point, and after it boots, resume recovers and
// finishes. The package database ends healthy on the new release.
func (r *rehearsal) upgradeProdKillAndCrash(t *testing.T) {
	h, box := r.h, lab.Thurst
	res := h.Run("next")
	if out := res.Stdout + res.Stderr; res.Code != 4 || !strings.Contains(out, "thermals has served production for ") ||
		!strings.Contains(out, "cannot go back to bookworm") {
		t.Fatalf("next without --yes: %s", res)
	}
	before := aptRuns(t, h, box)
	unit := steps.UnitName("upgrade-prod/apt-upgrade")
	g, rerun := h.Arm(box, dpkgGate), h.Arm(box, rerunGate)
	p := h.Start(nil, "--yes", "resume")
	dpkg, preinst := heldDpkg(t, h, g, p, unit)
	// Disarmed before the kill, so the recovery that follows is not held;
	// then dpkg and the preinst it waits for: the kill lands inside a
	// package.
	g.Disarm()
	h.Sh(box, "kill -9 "+strconv.Itoa(dpkg)+" "+strconv.Itoa(preinst))
	t.Logf("dpkg (pid %d) killed in %s, held in nbh-gate's preinst", dpkg, unit)
	// The transaction's run after the recovery is held in
	// nbh-gate-rerun's preinst, and the power is cut then.
	dpkg2, _ := heldDpkg(t, h, rerun, p, unit)
	if err := h.Lab.Crash(box); err != nil {
		t.Fatal(err)
	}
	res = p.Wait()
	r.moving += res.Took
	t.Logf("%s crashed while dpkg (pid %d) was held in the transaction's second run, in nbh-gate-rerun's preinst; boxswap: exit %d", box, dpkg2, res.Code)
	// Killed inside a package's preinst, dpkg leaves the database to
	// recover (nbh-gate half installed).
	if out := res.Stdout + res.Stderr; !strings.Contains(out, "apt-get full-upgrade exited") || !strings.Contains(out, "needs recovery") {
		t.Errorf("after the dpkg kill, boxswap did not say that the database needs recovery:\n%s", res)
	}
	if res.Code == 0 {
		t.Fatalf("resume succeeded with the box crashed: %s", res)
	}
	// The crash took the gate with it (the box's /run): nothing holds the
	// transaction now.
	if err := h.Lab.Start(box); err != nil {
		t.Fatal(err)
	}
	audit, _, _ := h.Lab.Run(box, "dpkg --audit | head -n 3; ls /var/lib/dpkg/updates | wc -l")
	t.Logf("%s after the crash: %s", box, strings.Join(strings.Fields(audit), " "))
	res = r.move("--yes", "resume")
	if res.Code != 0 {
		t.Fatalf("resume after the crash: %s", res)
	}
	if !strings.Contains(res.Stdout+res.Stderr, "was interrupted") {
		t.Errorf("resume after the crash did not say the transaction was interrupted:\n%s", res)
	}
	if got := h.Sh(box, "dpkg --audit; ls /var/lib/dpkg/updates | wc -l; cat /usr/share/nbh-gate/VERSION /usr/share/nbh-gate-rerun/VERSION"); got != "0\n2\n2" {
		t.Errorf("%s: the package database after upgrade-prod (audit, journal entries, the nbh-gate packages' versions): %q", box, got)
	}
	t.Logf("%s: %d apt transactions in the history for upgrade-prod (killed, crashed, finished)", box, aptRuns(t, h, box)-before)
}

// upgradeDevByHand: the operator did thermals' upgrade by hand (download
// with upgrade.options, dnf system-upgrade reboot, both boots), with a
// unit that fails on every boot: next finds every upgrade step done
// (release reached, nothing staged, rebooted: no "Need a --releasever
// greater" nor "system is not ready for upgrade"), the reboot step's record
// says the box is degraded and names the failed unit, and the phase is
// reached without a second upgrade.
func (r *rehearsal) upgradeDevByHand(t *testing.T) {
	h, box := r.h, lab.Thermals
	h.Sh(box, "printf '[Unit]\\nDescription=fails on purpose\\n[Service]\\nType=oneshot\\nExecStart=/bin/false\\n[Install]\\nWantedBy=multi-user.target\\n' > /etc/systemd/system/e2e-fails.service && systemctl enable -q e2e-fails.service")
	to := h.Where().To
	if w := h.Where(); w.Phase != "done" {
		t.Fatalf("phase %s", w.Phase)
	}
	h.Sh(box, "dnf system-upgrade download --releasever=31 -y --allowerasing >/dev/null 2>&1")
	old, err := h.Lab.BootID(box)
	if err != nil {
		t.Fatal(err)
	}
	h.Lab.Run(box, "dnf system-upgrade reboot >/dev/null 2>&1 &")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for {
		if _, err := h.Lab.WaitBoot(ctx, box, old); err != nil {
			t.Fatalf("%s did not come back from the hand upgrade: %v", box, err)
		}
		if out, _, _ := h.Lab.Run(box, "test -e /system-update && echo pending; systemctl is-system-running"); !strings.Contains(out, "pending") &&
			(strings.Contains(out, "running") || strings.Contains(out, "degraded")) {
			break
		}
		b, _ := h.Lab.BootID(box)
		old = b
		time.Sleep(time.Second)
	}
	if got := h.Sh(box, ". /etc/os-release; echo $VERSION_ID"); got != "31" {
		t.Fatalf("%s runs %s after the hand upgrade (to %d)", box, got, to)
	}
	boots := h.Boots(box)
	r.mustMove(t, "--yes", "next")
	if got := h.Boots(box); got != boots {
		t.Errorf("%s booted %d more times: the hand upgrade was done again", box, got-boots)
	}
	for _, s := range h.LastAttempt().Steps {
		switch s.ID {
		case "upgrade-dev/dnf-download", "upgrade-dev/dnf-upgrade", "upgrade-dev/dnf-plugin":
			if s.Attempts != 1 || !strings.Contains(s.Why, "runs") {
				t.Errorf("%s: %+v, want found done (on the target release)", s.ID, s)
			}
		case "upgrade-dev/reboot":
			if !strings.Contains(s.Why, "done by hand") || !strings.Contains(s.Why, "failed units: e2e-fails.service") {
				t.Errorf("reboot: why %q, want done by hand, degraded with e2e-fails.service", s.Why)
			}
			t.Logf("upgrade-dev done by hand, next's reboot step: %s", s.Why)
		}
	}
	h.Sh(box, "systemctl disable -q e2e-fails.service; systemctl reset-failed")
}
