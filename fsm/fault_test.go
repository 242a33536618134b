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

	"boxswap/internal/fault"
	"boxswap/state"
)

func faults(t *testing.T, spec string) *fault.Faults {
	t.Helper()
	f, err := fault.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestAFaultNamingNoStepOfTheTransitionIsRefused(t *testing.T) {
	r := newRig(t)
	r.eng.Wrap = faults(t, "upgrade-dev/nope@before:fail").Wrap
	if _, err := r.eng.Next(context.Background()); err == nil || !strings.Contains(err.Error(), "no step upgrade-dev/nope") {
		t.Fatalf("next with an unknown step: %v", err)
	}
	// A step of another transition is unknown too: it would never fire.
	r.eng.Wrap = faults(t, "redirect/a@before:fail").Wrap
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
	t.Setenv(fault.Env, "upgrade-dev/a@sometime:kill")
	r.eng.Wrap = fault.FromEnv().Wrap
	if _, err := r.eng.Next(context.Background()); err == nil || !strings.Contains(err.Error(), "unknown point") {
		t.Fatalf("next with a malformed %s: %v", fault.Env, err)
	}
	os.Unsetenv(fault.Env)
	if fault.FromEnv() != nil {
		t.Fatal("faults armed with the variable unset")
	}
}

// A fault at before fires in the step's first Check, so the step fails as
// a failing check does: recorded failed, never applied.
func TestAFailureInjectedBeforeAStepNeverAppliesIt(t *testing.T) {
	r := newRig(t)
	r.eng.Wrap = faults(t, "upgrade-dev/b@before:fail").Wrap
	a, err := r.eng.Next(context.Background())
	if !errors.Is(err, fault.ErrInjected) {
		t.Fatalf("next: %v", err)
	}
	if got, want := r.statuses(a), "failed a=done/1 b=failed/1 c=pending/0"; got != want {
		t.Fatalf("attempt %q, want %q", got, want)
	}
	if a.FailedStep != "upgrade-dev/b" || strings.Contains(r.w.journal(), "upgrade-dev/b") {
		t.Fatalf("failed step %q, journal %s", a.FailedStep, r.w.journal())
	}
	r.eng.Wrap = nil
	if a, err = r.eng.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := r.statuses(a), "done a=done/1 b=done/2 c=done/1"; got != want {
		t.Fatalf("after resume %q, want %q", got, want)
	}
}

func TestAFailureInjectedAfterApplyIsRecordedFailedAndRolledBack(t *testing.T) {
	r := newRig(t)
	r.eng.Wrap = faults(t, "upgrade-dev/b@applied:fail").Wrap
	a, err := r.eng.Next(context.Background())
	if !errors.Is(err, fault.ErrInjected) {
		t.Fatalf("next: %v", err)
	}
	if got, want := r.statuses(a), "failed a=done/1 b=failed/1 c=pending/0"; got != want {
		t.Fatalf("attempt %q, want %q", got, want)
	}
	if !r.w.applied["upgrade-dev/b"] {
		t.Fatal("b's effect is not in place: the fault fired before Apply")
	}
	r.eng.Wrap = nil
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
	f.OnKill = func() {
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
	r.eng.Wrap = f.Wrap
	if _, err := r.eng.Next(context.Background()); err == nil {
		t.Fatal("next went on after its kill")
	}
	if killed != 1 {
		t.Fatalf("killed %d times", killed)
	}
}

func TestAFaultAtUndoStopsTheRollbackWhichThenResumes(t *testing.T) {
	r := newRig(t)
	r.eng.StopBefore = "upgrade-dev/c"
	r.eng.Next(context.Background())
	r.eng.StopBefore = ""
	r.eng.Wrap = faults(t, "upgrade-dev/a@undo:fail").Wrap
	a, err := r.eng.Rollback(context.Background())
	if !errors.Is(err, fault.ErrInjected) {
		t.Fatalf("rollback: %v", err)
	}
	if got, want := r.statuses(a), "rolling-back a=undoing/1 b=undone/1 c=pending/0"; got != want {
		t.Fatalf("attempt %q, want %q", got, want)
	}
	r.eng.Wrap = nil
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
	r.eng.Wrap = fault.FromEnv().Wrap
	r.eng.Next(context.Background())
	t.Fatal("still alive after the injected kill")
}

func TestAKillIsARealCrashAndResumeChecksTheStep(t *testing.T) {
	db := filepath.Join(t.TempDir(), "boxswap.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestFaultKillChild$", "-test.count=1")
	// The child dies by SIGKILL before its own cleanup: its temporary
	// folders go under this test's, which is cleaned up.
	cmd.Env = append(os.Environ(), faultChildDB+"="+db, fault.Env+"=upgrade-dev/b@applied:kill", "TMPDIR="+t.TempDir())
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
	if got, want := r.w.journal(), "check:upgrade-dev/b check:upgrade-dev/c apply:upgrade-dev/c check:upgrade-dev/c"; got != want {
		t.Fatalf("journal %q, want %q (b checked, not applied again)", got, want)
	}
	if got, want := r.statuses(a), "done a=done/1 b=done/2 c=done/1"; got != want {
		t.Fatalf("after resume %q, want %q", got, want)
	}
}
