package fsm

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"boxswap/boxes"
	"boxswap/state"
	"boxswap/steps"
)

// errKilled stands for a SIGKILL inside a step: the panic unwinds the
// executor without one more write, as a crash would. The state is bbolt's:
// each write is one committed transaction, so what a crash leaves is what
// was written before it.
var errKilled = errors.New("killed")

// Where a scripted step dies.
const (
	killCheckBefore = "check-before"  // the first Check: nothing written yet
	killApplyBefore = "apply-before"  // recorded running, nothing applied
	killApplyAfter  = "apply-after"   // recorded running, the effect in place
	killCheckAfter  = "check-after"   // the check that confirms the Apply
	killUndoBefore  = "undo-before"   // recorded undoing, nothing undone
	killUndoAfter   = "undo-after"    // recorded undoing, the effect gone
	killNowhere     = ""              // runs to its end
	unknownCheck    = "unknown-check" // Check before apply loses the link
)

// scripted is a step whose box is one bool (its effect in place) and
// whose failures and death are set per test.
type scripted struct {
	effect   bool
	applies  int // Apply calls that put the effect in place
	checks   int
	kill     string
	killed   bool  // the kill fired once: the next process goes on
	checkErr error // the first Check's error
	applyErr error // Apply's error, before any effect
	noEffect bool  // Apply succeeds without its effect: the check after catches it
	noCheck  bool  // Description.NoCheckAfter
	undoErr  error
}

func (s *scripted) die(point string) {
	if s.kill == point && !s.killed {
		s.killed = true
		panic(errKilled)
	}
}

func (s *scripted) ID() string { return "t/step" }
func (s *scripted) Describe() steps.Description {
	d := steps.Description{Box: "thermals", Text: "scripted", Commands: []string{"true"}}
	if s.noCheck {
		d.NoCheckAfter = "scripted"
	}
	return d
}
func (s *scripted) Check(context.Context, *steps.Env) (bool, string, error) {
	s.checks++
	if s.applies > 0 || s.checks > 1 {
		s.die(killCheckAfter)
	} else {
		s.die(killCheckBefore)
	}
	if s.checkErr != nil && s.checks == 1 {
		return false, "could not look", s.checkErr
	}
	return s.effect, fmt.Sprintf("effect %v", s.effect), nil
}
func (s *scripted) Apply(context.Context, *steps.Env) error {
	s.die(killApplyBefore)
	if s.applyErr != nil {
		return s.applyErr
	}
	if !s.noEffect {
		s.effect = true
		s.applies++
	}
	s.die(killApplyAfter)
	return nil
}
func (s *scripted) Undo(context.Context, *steps.Env) error {
	s.die(killUndoBefore)
	if s.undoErr != nil {
		return s.undoErr
	}
	s.effect = false
	s.die(killUndoAfter)
	return nil
}

// newExecutor records an attempt of one step in status from, in a real
// state in t.TempDir, and returns the executor of its steps.
func newExecutor(t *testing.T, from state.StepStatus) *executor {
	t.Helper()
	store := state.Open(filepath.Join(t.TempDir(), "boxswap.db"))
	if err := store.Init(state.Meta{Schema: state.SchemaVersion, Phase: Start, Cycle: 1, From: 27, To: 29}); err != nil {
		t.Fatal(err)
	}
	att := &state.Attempt{Cycle: 1, Event: UpgradeDev, From: Start, To: DevUpgraded, Status: state.Running, Started: time.Now(),
		Steps: []state.StepRecord{{ID: "t/step", Box: "thermals", Text: "scripted", Status: from}}}
	id, err := store.Begin(att)
	if err != nil {
		t.Fatal(err)
	}
	att.ID = id
	return reopen(t, store, att.ID)
}

// reopen is the executor a new process (resume, rollback) would have.
func reopen(t *testing.T, store state.Backend, id uint64) *executor {
	t.Helper()
	att, err := store.Attempt(id)
	if err != nil {
		t.Fatal(err)
	}
	out := newOutput(discard{}, nil)
	env := &steps.Env{Output: out.writer, Progress: out.progress}
	return &executor{store: store, att: att, out: out, env: env, retries: 2, backoff: time.Millisecond}
}

// do runs x.Do and says whether the step was killed in it.
func do(x *executor, s steps.Step, dir direction) (err error, killed bool) {
	defer func() {
		if r := recover(); r != nil {
			if r != errKilled {
				panic(r)
			}
			killed = true
		}
	}()
	return x.Do(context.Background(), 0, s, dir), false
}

// recorded is the step's record as the state has it: status/attempts, and
// the error when there is one.
func recorded(t *testing.T, x *executor) string {
	t.Helper()
	a, err := x.store.Attempt(x.att.ID)
	if err != nil {
		t.Fatal(err)
	}
	r := a.Steps[0]
	s := fmt.Sprintf("%s/%d", r.Status, r.Attempts)
	if r.Error != "" {
		s += " error"
	}
	return s
}

var (
	exit3 = &steps.ExitError{Code: 3}
	lost  = fmt.Errorf("thermals: %w: connection lost", boxes.ErrOutcomeUnknown)
)

// TestExecutorLifecycle runs each edge of the lifecycle (see lifecycle),
// and a kill at each point between two of its writes followed by the run
// a new process makes (resume forward, rollback backward).
func TestExecutorLifecycle(t *testing.T) {
	for _, c := range []struct {
		name   string
		from   state.StepStatus
		dir    direction
		step   scripted
		want   string // the record after the first run (the kill's, if any)
		errIs  error  // of the first run
		after  string // the record after the next process's run ("" = no second run)
		effect bool   // the box at the end
		calls  int    // Apply calls that put the effect in place, in all
	}{
		// Forward: pending → running → done | failed | unknown.
		{name: "applied and confirmed", from: state.Pending, step: scripted{}, want: "done/1", effect: true, calls: 1},
		{name: "found done: one write", from: state.Pending, step: scripted{effect: true}, want: "done/1", effect: true},
		{name: "check fails", from: state.Pending, step: scripted{checkErr: errors.New("no such file")}, want: "failed/1 error",
			after: "done/2", effect: true, calls: 1},
		{name: "check loses the link: unknown, never applied", from: state.Pending, step: scripted{checkErr: lost},
			want: "pending/1 error", errIs: boxes.ErrOutcomeUnknown, after: "done/2", effect: true, calls: 1},
		{name: "apply fails", from: state.Pending, step: scripted{applyErr: exit3}, want: "failed/1 error", errIs: exit3},
		{name: "apply loses the link: unknown", from: state.Pending, step: scripted{applyErr: lost}, want: "running/1 error",
			errIs: boxes.ErrOutcomeUnknown},
		{name: "applied but not confirmed", from: state.Pending, step: scripted{noEffect: true}, want: "failed/1 error",
			errIs: ErrNotConfirmed},
		{name: "no check after: its exit status is all", from: state.Pending, step: scripted{noEffect: true, noCheck: true},
			want: "done/1"},
		{name: "found running after a crash, done", from: state.StepRunning, step: scripted{effect: true}, want: "done/1", effect: true},
		{name: "failed, then resumed", from: state.StepFailed, step: scripted{}, want: "done/1", effect: true, calls: 1},
		{name: "undone, then run forward again", from: state.Undone, step: scripted{}, want: "done/1", effect: true, calls: 1},
		// Forward kills, then resume.
		{name: "kill at the first check", from: state.Pending, step: scripted{kill: killCheckBefore}, want: "pending/0",
			after: "done/1", effect: true, calls: 1},
		{name: "kill in apply, nothing applied", from: state.Pending, step: scripted{kill: killApplyBefore}, want: "running/1",
			after: "done/2", effect: true, calls: 1},
		{name: "kill in apply, applied", from: state.Pending, step: scripted{kill: killApplyAfter}, want: "running/1",
			after: "done/2", effect: true, calls: 1},
		{name: "kill in the check after apply", from: state.Pending, step: scripted{kill: killCheckAfter}, want: "running/1",
			after: "done/2", effect: true, calls: 1},
		// Backward: done → undoing → undone | undo-failed.
		{name: "undone", from: state.StepDone, dir: backward, step: scripted{effect: true}, want: "undone/0"},
		{name: "undo fails", from: state.StepDone, dir: backward, step: scripted{effect: true, undoErr: exit3}, want: "undoing/0 error",
			errIs: exit3, after: "undone/0"},
		{name: "irreversible", from: state.StepDone, dir: backward, step: scripted{effect: true, undoErr: steps.ErrIrreversible},
			want: "undoing/0 error", errIs: ErrRollbackStopped, effect: true},
		{name: "running undone", from: state.StepRunning, dir: backward, step: scripted{effect: true}, want: "undone/0"},
		{name: "failed undone", from: state.StepFailed, dir: backward, step: scripted{effect: true}, want: "undone/0"},
		// Backward kills, then rollback again.
		{name: "kill in undo, nothing undone", from: state.StepDone, dir: backward, step: scripted{effect: true, kill: killUndoBefore},
			want: "undoing/0", after: "undone/0"},
		{name: "kill in undo, undone", from: state.StepDone, dir: backward, step: scripted{effect: true, kill: killUndoAfter},
			want: "undoing/0", after: "undone/0"},
		// Moves the lifecycle does not have.
		{name: "a pending step is not undone", from: state.Pending, dir: backward, step: scripted{}, want: "pending/0", errIs: ErrLifecycle},
		{name: "an undone step is not undone again", from: state.Undone, dir: backward, step: scripted{}, want: "undone/0", errIs: ErrLifecycle},
		{name: "a done step is not applied again", from: state.StepDone, step: scripted{}, want: "done/0", errIs: ErrLifecycle},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := newExecutor(t, c.from)
			s := c.step
			err, killed := do(x, &s, c.dir)
			if killed != (s.kill != "") {
				t.Fatalf("killed %v, scripted kill %q", killed, s.kill)
			}
			if c.errIs != nil && !errors.Is(err, c.errIs) {
				t.Fatalf("error %v, want %v", err, c.errIs)
			}
			if c.errIs == nil && !killed && c.after == "" && err != nil {
				t.Fatalf("error %v", err)
			}
			if got := recorded(t, x); got != c.want {
				t.Fatalf("recorded %s, want %s", got, c.want)
			}
			if c.after != "" {
				s.checkErr, s.undoErr = nil, nil
				x = reopen(t, x.store, x.att.ID)
				if err, _ := do(x, &s, c.dir); err != nil {
					t.Fatalf("the next run: %v", err)
				}
				if got := recorded(t, x); !strings.HasPrefix(got, c.after) {
					t.Fatalf("after the next run %s, want %s", got, c.after)
				}
			}
			if s.effect != c.effect || s.applies != c.calls {
				t.Fatalf("the box: effect %v after %d applies, want %v after %d", s.effect, s.applies, c.effect, c.calls)
			}
		})
	}
}

// The check after apply shows both answers: the apply's and the check's.
func TestANotConfirmedStepShowsBothAnswers(t *testing.T) {
	x := newExecutor(t, state.Pending)
	err, _ := do(x, &scripted{noEffect: true}, forward)
	if !errors.Is(err, ErrNotConfirmed) || !strings.Contains(err.Error(), "succeeded, but check says: effect false") {
		t.Fatalf("error %v", err)
	}
	a, _ := x.store.Attempt(x.att.ID)
	if r := a.Steps[0]; r.Why != "effect false" || !strings.Contains(r.Error, "check says") || r.Ended.IsZero() {
		t.Fatalf("record %+v", r)
	}
}
