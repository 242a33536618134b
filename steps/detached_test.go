package steps

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"boxswap/boxes"
)

// localRuns points the detached runs at a temporary folder for the test.
func localRuns(t *testing.T) string {
	t.Helper()
	old := runDir
	runDir = t.TempDir()
	t.Cleanup(func() { runDir = old })
	return runDir
}

func TestUnitName(t *testing.T) {
	if got := UnitName("upgrade-dev/apt-upgrade"); got != "boxswap-upgrade-dev-apt-upgrade" {
		t.Errorf("got %s", got)
	}
	if got := UnitName("hook/before/a b;c"); got != "boxswap-hook-before-a-b-c" {
		t.Errorf("got %s", got)
	}
}

func TestParseRunState(t *testing.T) {
	st, err := parseRunState("token=t1\nstarted=42\nalive=no\nrc=3\n")
	if err != nil || st.token != "t1" || !st.started || st.alive || st.rc != 3 {
		t.Errorf("%+v %v", st, err)
	}
	st, err = parseRunState("token=\nstarted=\nalive=no\nrc=\n")
	if err != nil || st.started || st.rc != -1 {
		t.Errorf("%+v %v", st, err)
	}
	if _, err := parseRunState("garbage"); err == nil {
		t.Error("garbage parsed")
	}
}

// A detached command outlives the link: the first Apply loses its
// connection (its context ends) while the command runs; the command goes
// on, and the next Apply re-attaches instead of starting it again. Check
// is done after.
func TestDetachedOutlivesTheLink(t *testing.T) {
	localRuns(t)
	r := newShRunner(t)
	count := filepath.Join(r.dir, "count")
	s := Install("upgrade-dev/install", "b", "install", "echo run >> "+quote(count)+"; sleep 2; echo installed")
	te := newEnv(map[string]boxes.Runner{"b": r})
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	err := s.Apply(ctx, te.Env)
	cancel()
	if err == nil {
		t.Fatal("apply survived its context")
	}
	if done, why, err := s.Check(context.Background(), te.Env); done || err != nil {
		t.Fatalf("check while running = %v %q %v", done, why, err)
	}
	if err := s.Apply(context.Background(), te.Env); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, count); got != "run\n" {
		t.Errorf("ran %q, want once", got)
	}
	if !strings.Contains(strings.Join(te.progress, "\n"), "re-attaching") {
		t.Errorf("progress %q", te.progress)
	}
	if !strings.Contains(te.out["b"].String(), "installed") {
		t.Errorf("output %q", te.out["b"])
	}
	if done, why, err := s.Check(context.Background(), te.Env); !done || err != nil {
		t.Fatalf("check after = %v %q %v", done, why, err)
	}
	// Done, so a resume does not run it again; an undo forgets the run.
	if err := s.Undo(context.Background(), te.Env); err != nil {
		t.Fatal(err)
	}
	if done, _, _ := s.Check(context.Background(), te.Env); done {
		t.Error("done after undo")
	}
}

// A run that ended while boxswap was away is read, not repeated; one
// that failed is run again by the next Apply.
func TestDetachedEndedWhileAway(t *testing.T) {
	localRuns(t)
	r := newShRunner(t)
	count := filepath.Join(r.dir, "count")
	flag := filepath.Join(r.dir, "ok")
	s := Install("i", "b", "install", "echo run >> "+quote(count)+"; sleep 0.5; test -e "+quote(flag))
	te := newEnv(map[string]boxes.Runner{"b": r})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_ = s.Apply(ctx, te.Env)
	cancel()
	time.Sleep(time.Second) // it fails meanwhile
	mustWrite(t, flag, "")
	if err := s.Apply(context.Background(), te.Env); err != nil {
		t.Fatalf("%v\n%s\n%q", err, te.out["b"], te.progress)
	}
	if got := mustRead(t, count); got != "run\nrun\n" {
		t.Errorf("ran %q, want twice (the failed run, then again)", got)
	}
	// Now ended well while away: read, not repeated.
	d := s.(*cmdStep).run()
	end, err := d.attach(context.Background(), te.Env)
	if err != nil || !end.ok() || !end.Earlier {
		t.Errorf("attach = %+v %v", end, err)
	}
	if got := mustRead(t, count); got != "run\nrun\n" {
		t.Errorf("ran %q after attach", got)
	}
}

// A run alive under the unit's name that this cycle did not start is
// never doubled.
func TestDetachedNeverASecondCopy(t *testing.T) {
	localRuns(t)
	r := newShRunner(t)
	s := Install("i", "b", "install", "sleep 2")
	te := newEnv(map[string]boxes.Runner{"b": r})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_ = s.Apply(ctx, te.Env)
	cancel()
	other := newEnv(map[string]boxes.Runner{"b": r}) // another cycle's facts
	err := s.Apply(context.Background(), other.Env)
	if !errors.Is(err, ErrPrecondition) || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("err = %v", err)
	}
}

// fakePM is a package manager whose database is "broken" while a file
// exists.
func fakePM(dir string) PkgManager {
	broken := quote(filepath.Join(dir, "broken"))
	return PkgManager{Name: "fakepkg", Health: "if [ -e " + broken + " ]; then echo 'interrupted'; exit 1; fi; echo healthy",
		Recover: "rm -f " + broken + "; echo recovered", Manual: "fix it"}
}

// A transaction whose package manager dies mid-way (the database left
// broken) is recovered, recorded, and run again, once.
func TestTransactionRecoversAnInterruption(t *testing.T) {
	localRuns(t)
	r := newShRunner(t)
	count, killed := quote(filepath.Join(r.dir, "count")), filepath.Join(r.dir, "killed")
	// The first run "dies" leaving the database broken.
	cmd := "echo run >> " + count + "; if [ ! -e " + quote(killed) + " ]; then touch " + quote(killed) + " " + quote(filepath.Join(r.dir, "broken")) + "; exit 100; fi; echo upgraded"
	s := &txStep{box: "b", pm: fakePM(r.dir), d: detached{box: "b", unit: "boxswap-tx", label: "upgrade", cmd: cmd},
		base: base{id: "u/tx", desc: Description{Box: "b"}}}
	te := newEnv(map[string]boxes.Runner{"b": r})
	if err := s.Apply(context.Background(), te.Env); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(r.dir, "count")); got != "run\nrun\n" {
		t.Errorf("ran %q, want the interrupted run and one after recovery", got)
	}
	if rec, _ := te.facts.Get("b/recovery/u/tx"); !strings.Contains(rec, "upgrade exited 100: interrupted") || !strings.Contains(rec, "exit 0") {
		t.Errorf("recovery fact %q", rec)
	}
	if done, why, err := s.Check(context.Background(), te.Env); !done || err != nil {
		t.Errorf("check after = %v %q %v", done, why, err)
	}
}

// A database broken before the transaction is recovered first: never a
// transaction on a broken database. One that recovery cannot fix stops
// with what a person must run.
func TestTransactionNeverOnABrokenDatabase(t *testing.T) {
	localRuns(t)
	r := newShRunner(t)
	mustWrite(t, filepath.Join(r.dir, "broken"), "")
	count := filepath.Join(r.dir, "count")
	s := &txStep{box: "b", pm: fakePM(r.dir), d: detached{box: "b", unit: "boxswap-tx", label: "upgrade", cmd: "echo run >> " + quote(count)},
		base: base{id: "u/tx", desc: Description{Box: "b"}}}
	te := newEnv(map[string]boxes.Runner{"b": r})
	if err := s.Apply(context.Background(), te.Env); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, count); got != "run\n" {
		t.Errorf("ran %q", got)
	}
	pm := fakePM(r.dir)
	pm.Recover = "false"
	mustWrite(t, filepath.Join(r.dir, "broken"), "")
	s2 := &txStep{box: "b", pm: pm, d: detached{box: "b", unit: "boxswap-tx2", label: "upgrade", cmd: "echo run >> " + quote(count)},
		base: base{id: "u/tx2", desc: Description{Box: "b"}}}
	err := s2.Apply(context.Background(), te.Env)
	// The recovery ran (and changed the box): halted, not "nothing was
	// changed"; what to run is the hint, the recovery's commands only in
	// the record.
	var h interface{ Hint() string }
	if !errors.Is(err, ErrHalted) || !errors.As(err, &h) || h.Hint() != "this needs a person: run fix it on b, then boxswap resume" ||
		strings.Contains(err.Error(), pm.Recover) || !strings.Contains(Detail(err), "ran: "+pm.Recover) {
		t.Fatalf("err = %v (detail %q)", err, Detail(err))
	}
	if got := mustRead(t, count); got != "run\n" {
		t.Errorf("ran %q on a broken database", got)
	}
}

// pipBox stubs python3 on a shell runner: a version, packages installed
// under /usr/local (one per line of INST as name==version), a
// distribution package, and a wheelhouse holding only AVAIL.
func pipBox(t *testing.T) *shRunner {
	r := newShRunner(t)
	mustWrite(t, filepath.Join(r.dir, "VER"), "3.11.2\n")
	mustWrite(t, filepath.Join(r.dir, "INST"), "nbh-extras==1.0\nlocal-only==0.1\n")
	mustWrite(t, filepath.Join(r.dir, "AVAIL"), "nbh-extras==1.0\n")
	mustWrite(t, filepath.Join(r.dir, "stdlib", "EXTERNALLY-MANAGED"), "")
	d := quote(r.dir)
	r.stub(t, "python3", `d=`+d+`
case "$1" in
--version) echo "Python $(cat $d/VER)";;
-c) echo $d/stdlib;;
-m) shift 2; case "$1" in
  list) printf '[{"name":"rpm","version":"4.18","location":"/usr/lib/python3/dist-packages"}'
    while read -r l; do printf ',{"name":"%s","version":"%s","location":"/usr/local/lib/python3/dist-packages"}' "${l%%==*}" "${l#*==}"; done < $d/INST
    echo ']';;
  install) echo "$@" >> $d/INSTALLS; p=; for a; do p=$a; done
    if grep -qx "$p" $d/AVAIL; then echo "$p" >> $d/INST; echo "Successfully installed $p"; else echo "ERROR: No matching distribution found for $p"; exit 1; fi;;
  esac;;
esac`)
	return r
}

// pip after a python minor change: only what pip installed under
// /usr/local is reinstalled, one by one, with --break-system-packages on
// an externally managed python; a package that fails is listed with pip's
// reason and the ways on, and a resume tries only what is still missing.
func TestPipReinstallPerPackage(t *testing.T) {
	localRuns(t)
	ctx := context.Background()
	r := pipBox(t)
	te := newEnv(map[string]boxes.Runner{"b": r})
	snap := PipSnapshot("upgrade-dev/pip-snapshot", "b", PipParams{})
	if err := snap.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if got, _ := te.facts.Get("b/pip-freeze"); got != "nbh-extras==1.0\nlocal-only==0.1\n" {
		t.Fatalf("snapshot %q (the distribution's rpm must not be in it)", got)
	}
	re := PipReinstall("upgrade-dev/pip-reinstall", "b", PipParams{})
	if done, _, _ := re.Check(ctx, te.Env); !done {
		t.Fatal("same python: not done")
	}
	// The upgrade: python 3.13, /usr/local/lib/python3.11 left behind.
	mustWrite(t, filepath.Join(r.dir, "VER"), "3.13.5\n")
	mustWrite(t, filepath.Join(r.dir, "INST"), "")
	err := re.Apply(ctx, te.Env)
	// One line names the failure, the hint the ways on, the record pip's words.
	var h *hinted
	if err == nil || !strings.HasPrefix(err.Error(), "b: pip could not reinstall 1 of 2 packages for python 3.13: local-only==0.1: ERROR: ") ||
		!errors.As(err, &h) || !strings.Contains(h.Hint(), "boxswap mark-done upgrade-dev/pip-reinstall --reason") ||
		!strings.Contains(Detail(err), "local-only==0.1: ERROR: No matching distribution found for local-only==0.1") {
		t.Fatalf("err = %v", err)
	}
	if res, _ := te.facts.Get("b/pip-results"); res != "nbh-extras==1.0: reinstalled for python 3.13\nlocal-only==0.1: failed: ERROR: No matching distribution found for local-only==0.1" {
		t.Errorf("results %q", res)
	}
	installs := mustRead(t, filepath.Join(r.dir, "INSTALLS"))
	if installs != "install --break-system-packages -- nbh-extras==1.0\ninstall --break-system-packages -- local-only==0.1\n" {
		t.Errorf("installs %q", installs)
	}
	// Fixed (the wheel made available), resume: only the missing one.
	mustWrite(t, filepath.Join(r.dir, "AVAIL"), "nbh-extras==1.0\nlocal-only==0.1\n")
	if done, _, _ := re.Check(ctx, te.Env); done {
		t.Fatal("done with a package missing")
	}
	if err := re.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimPrefix(mustRead(t, filepath.Join(r.dir, "INSTALLS")), installs); got != "install --break-system-packages -- local-only==0.1\n" {
		t.Errorf("resume installed %q", got)
	}
	if done, why, err := re.Check(ctx, te.Env); !done || err != nil {
		t.Errorf("check after = %v %q %v", done, why, err)
	}
	os.Remove(filepath.Join(r.dir, "stdlib", "EXTERNALLY-MANAGED"))
	if s := pipReinstallScript(PipParams{Pip: "pip3.13"}, quoteAll([]string{"a==1"}), ""); !strings.HasPrefix(s, "for p in a==1; do o=$(pip3.13 install -- \"$p\" 2>&1)") {
		t.Errorf("script %s", s)
	}
}

// A transaction that fails with the database intact (the package manager
// killed between two packages: apt says "dpkg exited unexpectedly") runs
// once more; one that fails twice on a sound database is the package
// manager's own error, returned after exactly two runs.
func TestTransactionFailedOnASoundDatabaseRunsOnceMore(t *testing.T) {
	localRuns(t)
	r := newShRunner(t)
	count := filepath.Join(r.dir, "count")
	// Fails the first time only.
	cmd := "echo run >> " + quote(count) + "; [ $(wc -l < " + quote(count) + ") -gt 1 ]"
	s := &txStep{box: "b", pm: fakePM(r.dir), d: detached{box: "b", unit: "boxswap-tx3", label: "upgrade", cmd: cmd},
		base: base{id: "u/tx3", desc: Description{Box: "b"}}}
	te := newEnv(map[string]boxes.Runner{"b": r})
	if err := s.Apply(context.Background(), te.Env); err != nil {
		t.Fatalf("a transaction failing once on a sound database: %v", err)
	}
	if got := mustRead(t, count); got != "run\nrun\n" {
		t.Errorf("ran %q, want twice", got)
	}
	always := filepath.Join(r.dir, "always")
	s2 := &txStep{box: "b", pm: fakePM(r.dir), d: detached{box: "b", unit: "boxswap-tx4", label: "upgrade", cmd: "echo run >> " + quote(always) + "; false"},
		base: base{id: "u/tx4", desc: Description{Box: "b"}}}
	if err := s2.Apply(context.Background(), te.Env); err == nil {
		t.Fatal("a transaction failing every time succeeded")
	}
	if got := mustRead(t, always); got != "run\nrun\n" {
		t.Errorf("ran %q, want exactly twice", got)
	}
}
