package fsm

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"boxswap/state"
)

func TestParseFaults(t *testing.T) {
	good := map[string]string{
		"upgrade-dev/b@before:kill":                       "upgrade-dev/b@before:kill",
		"redirect/take-address/thermals@applied:fail":     "redirect/take-address/thermals@applied:fail",
		" a@undo:kill , b@before:fail":                    "a@undo:kill,b@before:fail",
		"redirect/hook/before/x@y@applied:kill":           "redirect/hook/before/x@y@applied:kill",
		"upgrade-dev/preflight/reach/thurst@applied:kill": "upgrade-dev/preflight/reach/thurst@applied:kill",
	}
	for spec, want := range good {
		f, err := ParseFaults(spec)
		if err != nil {
			t.Errorf("%q: %v", spec, err)
			continue
		}
		if f.String() != want {
			t.Errorf("%q parsed as %q, want %q", spec, f, want)
		}
	}
	for _, spec := range []string{"", " ", "a", "a@before", "@before:kill", "a@during:kill", "a@before:explode", "a:kill@before", "a@before:kill,", "a@before:kill,b"} {
		if f, err := ParseFaults(spec); err == nil {
			t.Errorf("%q accepted: %v", spec, f)
		} else if !strings.Contains(err.Error(), FaultEnv) {
			t.Errorf("%q: error does not name %s: %v", spec, FaultEnv, err)
		}
	}
}

func faults(t *testing.T, spec string) *Faults {
	t.Helper()
	f, err := ParseFaults(spec)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestAFaultNamingNoStepOfTheTransitionIsRefused(t *testing.T) {
	r := newRig(t)
	r.eng.Fault = faults(t, "upgrade-dev/nope@before:fail")
	if _, err := r.eng.Next(context.Background()); err == nil || !strings.Contains(err.Error(), "no step upgrade-dev/nope") {
		t.Fatalf("next with an unknown step: %v", err)
	}
	// A step of another transition is unknown too: it would never fire.
	r.eng.Fault = faults(t, "redirect/a@before:fail")
	if _, err := r.eng.Next(context.Background()); err == nil || !strings.Contains(err.Error(), "no step redirect/a") {
		t.Fatalf("next with another transition's step: %v", err)
	}
	if a, _ := r.store.Last(); a != nil {
		t.Fatalf("an attempt was recorded under a refused fault: %+v", a)
	}
	if r.w.journal() != "" {
		t.Fatalf("steps ran: %s", r.w.journal())
	}
	// A malformed BOXSWAP_FAULT is refused by the engine, not ignored.
	t.Setenv(FaultEnv, "upgrade-dev/a@sometime:kill")
	r.eng.Fault = FaultFromEnv()
	if _, err := r.eng.Next(context.Background()); err == nil || !strings.Contains(err.Error(), "unknown point") {
		t.Fatalf("next with a malformed %s: %v", FaultEnv, err)
	}
	os.Unsetenv(FaultEnv)
	if FaultFromEnv() != nil {
		t.Fatal("faults armed with the variable unset")
	}
}

func TestAFailureInjectedBeforeAStepLeavesItPending(t *testing.T) {
	r := newRig(t)
	r.eng.Fault = faults(t, "upgrade-dev/b@before:fail")
	a, err := r.eng.Next(context.Background())
	if !errors.Is(err, ErrInjected) {
		t.Fatalf("next: %v", err)
	}
	if got, want := r.statuses(a), "failed a=done/1 b=pending/0 c=pending/0"; got != want {
		t.Fatalf("attempt %q, want %q", got, want)
	}
	if a.FailedStep != "upgrade-dev/b" || strings.Contains(r.w.journal(), "upgrade-dev/b") {
		t.Fatalf("failed step %q, journal %s", a.FailedStep, r.w.journal())
	}
	r.eng.Fault = nil
	if a, err = r.eng.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := r.statuses(a), "done a=done/1 b=done/1 c=done/1"; got != want {
		t.Fatalf("after resume %q, want %q", got, want)
	}
}

func TestAFailureInjectedAfterApplyIsRecordedFailedAndRolledBack(t *testing.T) {
	r := newRig(t)
	r.eng.Fault = faults(t, "upgrade-dev/b@applied:fail")
	a, err := r.eng.Next(context.Background())
	if !errors.Is(err, ErrInjected) {
		t.Fatalf("next: %v", err)
	}
	if got, want := r.statuses(a), "failed a=done/1 b=failed/1 c=pending/0"; got != want {
		t.Fatalf("attempt %q, want %q", got, want)
	}
	if !r.w.applied["upgrade-dev/b"] {
		t.Fatal("b's effect is not in place: the fault fired before Apply")
	}
	r.eng.Fault = nil
	a, err = r.eng.Rollback(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.statuses(a), "rolled-back a=undone/1 b=undone/1 c=pending/0"; got != want {
		t.Fatalf("after rollback %q, want %q", got, want)
	}
	if !strings.HasSuffix(r.w.journal(), "undo:upgrade-dev/b undo:upgrade-dev/a") {
		t.Fatalf("undo order: %s", r.w.journal())
	}
}

func TestAKillAfterApplyFindsTheStepRunningWithItsEffectInPlace(t *testing.T) {
	r := newRig(t)
	f := faults(t, "upgrade-dev/b@applied:kill")
	killed := 0
	f.kill = func() {
		killed++
		a, err := r.store.Last()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := r.statuses(a), "running a=done/1 b=running/1 c=pending/0"; got != want {
			t.Errorf("at the kill: %q, want %q", got, want)
		}
		if !r.w.applied["upgrade-dev/b"] {
			t.Error("at the kill: b not applied yet")
		}
	}
	r.eng.Fault = f
	if _, err := r.eng.Next(context.Background()); err == nil {
		t.Fatal("next went on after its kill")
	}
	if killed != 1 {
		t.Fatalf("killed %d times", killed)
	}
}

func TestAFaultAtUndoStopsTheRollbackWhichThenResumes(t *testing.T) {
	r := newRig(t)
	r.eng.Fault = faults(t, "upgrade-dev/c@before:fail")
	r.eng.Next(context.Background())
	r.eng.Fault = faults(t, "upgrade-dev/a@undo:fail")
	a, err := r.eng.Rollback(context.Background())
	if !errors.Is(err, ErrInjected) {
		t.Fatalf("rollback: %v", err)
	}
	if got, want := r.statuses(a), "rolling-back a=undoing/1 b=undone/1 c=pending/0"; got != want {
		t.Fatalf("attempt %q, want %q", got, want)
	}
	r.eng.Fault = nil
	if a, err = r.eng.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := r.statuses(a), "rolled-back a=undone/1 b=undone/1 c=pending/0"; got != want {
		t.Fatalf("after the second rollback %q, want %q", got, want)
	}
}

// faultChildDB names the state of the re-executed test binary that
// SIGKILLs itself; unset, the helper test does nothing.
const faultChildDB = "BOXSWAP_TEST_FAULT_CHILD_DB"

// TestFaultKillChild is not a test: it is the process that kills itself
// for TestAKillIsARealCrashAndResumeChecksTheStep.
func TestFaultKillChild(t *testing.T) {
	db := os.Getenv(faultChildDB)
	if db == "" {
		return
	}
	r := newRig(t)
	r.store = state.Open(db)
	r.eng.Store = r.store
	r.eng.Fault = FaultFromEnv()
	r.eng.Next(context.Background())
	t.Fatal("still alive after the injected kill")
}

func TestAKillIsARealCrashAndResumeChecksTheStep(t *testing.T) {
	db := filepath.Join(t.TempDir(), "boxswap.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestFaultKillChild$", "-test.count=1")
	// The child dies by SIGKILL before its own cleanup: its temporary
	// folders go under this test's, which is cleaned up.
	cmd.Env = append(os.Environ(), faultChildDB+"="+db, FaultEnv+"=upgrade-dev/b@applied:kill", "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "killing this process (upgrade-dev/b@applied:kill)") {
		t.Fatalf("child output: %s", out)
	}
	r := newRig(t)
	r.store = state.Open(db)
	r.eng.Store = r.store
	a, err := r.store.Last()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.statuses(a), "running a=done/1 b=running/1 c=pending/0"; got != want {
		t.Fatalf("after the kill %q, want %q", got, want)
	}
	// The child's effects: a and b are in place on the "boxes".
	r.w.applied["upgrade-dev/a"], r.w.applied["upgrade-dev/b"] = true, true
	if a, err = r.eng.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := r.w.journal(), "check:upgrade-dev/b check:upgrade-dev/c apply:upgrade-dev/c"; got != want {
		t.Fatalf("journal %q, want %q (b checked, not applied again)", got, want)
	}
	if got, want := r.statuses(a), "done a=done/1 b=done/2 c=done/1"; got != want {
		t.Fatalf("after resume %q, want %q", got, want)
	}
}
