package fsm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"boxswap/boxes"
	"boxswap/state"
	"boxswap/steps"
)

// world is what fake steps act on: which step effects are in place, and
// the order things were done in.
type world struct {
	mu      sync.Mutex
	applied map[string]bool
	log     []string
}

func (w *world) did(s string) { w.mu.Lock(); w.log = append(w.log, s); w.mu.Unlock() }

func (w *world) journal() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.log, " ")
}

type fakeStep struct {
	w            *world
	id           string
	irreversible bool
	retry        bool
	revertTo     string // Description.RevertTo
	// applyErr, when set, is returned by Apply (before any effect) while
	// failures > 0, decrementing it.
	applyErr error
	failures int
	// onApply runs inside Apply after the effect; onUndo after Undo's.
	onApply func(env *steps.Env) error
	onUndo  func()
}

func (s *fakeStep) ID() string { return s.id }
func (s *fakeStep) Describe() steps.Description {
	return steps.Description{Box: "thermals", Text: "fake " + s.id, Commands: []string{"true " + s.id},
		Irreversible: s.irreversible, Retry: s.retry, RevertTo: s.revertTo}
}
func (s *fakeStep) Check(ctx context.Context, env *steps.Env) (bool, string, error) {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	s.w.log = append(s.w.log, "check:"+s.id)
	return s.w.applied[s.id], "seen", nil
}
func (s *fakeStep) Apply(ctx context.Context, env *steps.Env) error {
	if s.failures > 0 {
		s.failures--
		s.w.did("fail:" + s.id)
		return s.applyErr
	}
	s.w.mu.Lock()
	s.w.applied[s.id] = true
	s.w.log = append(s.w.log, "apply:"+s.id)
	s.w.mu.Unlock()
	fmt.Fprintf(env.Output("thermals"), "applied %s\n", s.id)
	if s.onApply != nil {
		return s.onApply(env)
	}
	return nil
}
func (s *fakeStep) Undo(ctx context.Context, env *steps.Env) error {
	if s.irreversible {
		return steps.ErrIrreversible
	}
	s.w.mu.Lock()
	s.w.applied[s.id] = false
	s.w.log = append(s.w.log, "undo:"+s.id)
	s.w.mu.Unlock()
	if s.onUndo != nil {
		s.onUndo()
	}
	return nil
}

func testConfig() *boxes.Config {
	return &boxes.Config{
		File:    "boxes.yaml",
		Version: 1,
		Boxes: []boxes.Box{
			{Name: "thurst", Host: "thurst.inria.fr", Port: 22, User: "root", Function: boxes.Production},
			{Name: "thermals", Host: "thermals.inria.fr", Port: 22, User: "root", Function: boxes.Development},
		},
		Functions: map[string]boxes.Function{
			boxes.Production:  {Alias: "nbhosting.inria.fr", AddressUnit: "nbhosting-addr", Address: "193.51.196.151", Settings: boxes.Settings{{Key: "server_name", Value: "nbhosting.inria.fr"}, {Key: "ssl_certificate", Value: "/p.crt"}, {Key: "ssl_certificate_key", Value: "/p.key"}}},
			boxes.Development: {Alias: "nbhosting-dev.inria.fr", AddressUnit: "nbhosting-dev-addr", Settings: boxes.Settings{{Key: "server_name", Value: "nbhosting-dev.inria.fr"}, {Key: "ssl_certificate", Value: "/d.crt"}, {Key: "ssl_certificate_key", Value: "/d.key"}}},
		},
		App: boxes.App{Checkout: "/root/nbhosting", SettingsFile: "/root/nbhosting/django/nbh_main/sitesettings.py", Install: "cd /root/nbhosting && ./install.sh", Services: []string{"nbh-uwsgi", "nbh-monitor", "docker"},
			Writers: []string{"nbh-monitor", "docker"}, Containers: boxes.ContainersPodman,
			Check: &boxes.Check{Path: "/hub/login", Status: 200, Timeout: 30 * time.Second, CA: "/etc/ssl/lab-ca.pem"}},
		Data:    boxes.Data{Root: "/nbhosting", Folders: []string{"students", "raw"}, BackupSuffix: ".prod", MaxDelete: 1000},
		Upgrade: boxes.Upgrade{From: 27, To: 29, RebootTimeout: time.Minute, DevelBranch: "f29", MinFreeDisk: 1 << 20},
	}
}

type rig struct {
	t     *testing.T
	w     *world
	store *state.Store
	plans map[Event][]steps.Step
	eng   *Engine
	out   *strings.Builder
}

// newRig builds an engine over a real bbolt state in t.TempDir whose
// transitions are made of fake steps: each event gets steps a, b, c.
func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, w: &world{applied: map[string]bool{}}, plans: map[Event][]steps.Step{}, out: &strings.Builder{}}
	r.store = state.Open(filepath.Join(t.TempDir(), "boxswap.db"))
	for _, tr := range Transitions {
		for _, n := range []string{"a", "b", "c"} {
			r.plans[tr.Event] = append(r.plans[tr.Event], &fakeStep{w: r.w, id: string(tr.Event) + "/" + n})
		}
	}
	r.eng = &Engine{
		Config: testConfig(), Store: r.store, Report: &lineReporter{w: r.out}, Who: "tester@here", Command: "next",
		Boxes:   func(string) (boxes.Runner, error) { return nil, errors.New("no boxes in this test") },
		Retries: 2, Backoff: time.Millisecond,
		Plan: func(cfg *boxes.Config, meta state.Meta, event Event) ([]steps.Step, error) {
			return r.plans[event], nil
		},
	}
	return r
}

func (r *rig) step(event Event, n string) *fakeStep {
	for _, s := range r.plans[event] {
		if s.ID() == string(event)+"/"+n {
			return s.(*fakeStep)
		}
	}
	r.t.Fatalf("no step %s/%s", event, n)
	return nil
}

func (r *rig) phase() Phase {
	r.t.Helper()
	m, err := r.store.Meta()
	if err != nil {
		r.t.Fatal(err)
	}
	return m.Phase
}

func (r *rig) statuses(a *state.Attempt) string {
	var s []string
	for _, st := range a.Steps {
		s = append(s, fmt.Sprintf("%s=%s/%d", st.ID[strings.LastIndex(st.ID, "/")+1:], st.Status, st.Attempts))
	}
	return string(a.Status) + " " + strings.Join(s, " ")
}

func TestNextRunsEveryStepThenMovesThePhase(t *testing.T) {
	r := newRig(t)
	a, err := r.eng.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.statuses(a), "done a=done/1 b=done/1 c=done/1"; got != want {
		t.Fatalf("attempt %q, want %q", got, want)
	}
	if r.phase() != DevUpgraded {
		t.Fatalf("phase %s, want %s", r.phase(), DevUpgraded)
	}
	// Each step is checked, applied, and checked again (issue 11).
	if got, want := r.w.journal(), "check:upgrade-dev/a apply:upgrade-dev/a check:upgrade-dev/a check:upgrade-dev/b apply:upgrade-dev/b check:upgrade-dev/b "+
		"check:upgrade-dev/c apply:upgrade-dev/c check:upgrade-dev/c"; got != want {
		t.Fatalf("journal %q, want %q", got, want)
	}
	if a.Steps[0].Tail[0] != "thermals: applied upgrade-dev/a" {
		t.Fatalf("tail %q", a.Steps[0].Tail)
	}
	// The whole cycle, then nothing more to do.
	for _, want := range []Phase{Redirected, ProdUpgraded, SwitchedBack, Done} {
		if _, err := r.eng.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
		if r.phase() != want {
			t.Fatalf("phase %s, want %s", r.phase(), want)
		}
	}
	if _, err := r.eng.Next(context.Background()); !errors.Is(err, ErrCycleDone) {
		t.Fatalf("next after done: %v, want ErrCycleDone", err)
	}
}

func TestAStepAlreadyInPlaceIsNotApplied(t *testing.T) {
	r := newRig(t)
	r.w.applied["upgrade-dev/b"] = true
	if _, err := r.eng.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.w.journal(), "apply:upgrade-dev/b") {
		t.Fatalf("b applied although its check said done: %s", r.w.journal())
	}
	a, _ := r.store.Last()
	if a.Steps[1].Why != "seen" || a.Steps[1].Status != state.StepDone {
		t.Fatalf("b recorded %+v", a.Steps[1])
	}
}

func TestAFailedStepStopsTheTransitionAndResumeFinishesIt(t *testing.T) {
	r := newRig(t)
	b := r.step(UpgradeDev, "b")
	b.applyErr, b.failures = errors.New("thermals: dnf: exit 1: no space left"), 1
	a, err := r.eng.Next(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("next: %v", err)
	}
	if got, want := r.statuses(a), "failed a=done/1 b=failed/1 c=pending/0"; got != want {
		t.Fatalf("attempt %q, want %q", got, want)
	}
	if a.FailedStep != "upgrade-dev/b" || r.phase() != Start {
		t.Fatalf("failed step %q, phase %s", a.FailedStep, r.phase())
	}
	if _, err := r.eng.Next(context.Background()); !errors.Is(err, ErrPending) {
		t.Fatalf("next over a failed transition: %v, want ErrPending", err)
	}
	a, err = r.eng.Resume(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.statuses(a), "done a=done/1 b=done/2 c=done/1"; got != want {
		t.Fatalf("after resume %q, want %q", got, want)
	}
	if n := strings.Count(r.w.journal(), "apply:upgrade-dev/a"); n != 1 {
		t.Fatalf("a applied %d times", n)
	}
	if r.phase() != DevUpgraded {
		t.Fatalf("phase %s", r.phase())
	}
	if _, err := r.eng.Resume(context.Background()); !errors.Is(err, ErrNothingToResume) {
		t.Fatalf("resume with nothing pending: %v", err)
	}
}

func TestAStepFoundRunningIsCheckedBeforeItIsAppliedAgain(t *testing.T) {
	r := newRig(t)
	// A previous process recorded b running, applied it, and died.
	b := r.step(UpgradeDev, "b")
	b.onApply = func(env *steps.Env) error { panic("unreachable") }
	att := &state.Attempt{Cycle: 1, Event: UpgradeDev, From: Start, To: DevUpgraded, Status: state.Running, Started: time.Now()}
	for _, s := range r.plans[UpgradeDev] {
		att.Steps = append(att.Steps, state.StepRecord{ID: s.ID(), Commands: s.Describe().Commands, Status: state.Pending})
	}
	if err := r.store.Init(state.Meta{Schema: state.SchemaVersion, Phase: Start, Cycle: 1, From: 27, To: 29}); err != nil {
		t.Fatal(err)
	}
	id, err := r.store.Begin(att)
	if err != nil {
		t.Fatal(err)
	}
	mark := func(step string, status state.StepStatus) {
		if err := r.store.UpdateStep(id, step, func(s *state.StepRecord) error { s.Status = status; s.Attempts = 1; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	mark("upgrade-dev/a", state.StepDone)
	mark("upgrade-dev/b", state.StepRunning)
	r.w.applied["upgrade-dev/a"], r.w.applied["upgrade-dev/b"] = true, true

	a, err := r.eng.Resume(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.w.journal(), "check:upgrade-dev/b check:upgrade-dev/c apply:upgrade-dev/c check:upgrade-dev/c"; got != want {
		t.Fatalf("journal %q, want %q", got, want)
	}
	if got, want := r.statuses(a), "done a=done/1 b=done/2 c=done/1"; got != want {
		t.Fatalf("attempt %q, want %q", got, want)
	}
}

func TestAnUnknownOutcomeIsNeverRecordedDone(t *testing.T) {
	r := newRig(t)
	b := r.step(UpgradeDev, "b")
	lost := fmt.Errorf("thermals: %w: connection lost", boxes.ErrOutcomeUnknown)
	b.applyErr, b.failures = lost, 5
	a, err := r.eng.Next(context.Background())
	if !errors.Is(err, boxes.ErrOutcomeUnknown) {
		t.Fatalf("next: %v", err)
	}
	if got, want := r.statuses(a), "failed a=done/1 b=running/1 c=pending/0"; got != want {
		t.Fatalf("attempt %q, want %q (not retried: b is not declared safe to repeat)", got, want)
	}
	if n := strings.Count(r.w.journal(), "fail:upgrade-dev/b"); n != 1 {
		t.Fatalf("b tried %d times, want 1", n)
	}
}

func TestAStepSafeToRepeatIsRetriedWhenItsOutcomeIsUnknown(t *testing.T) {
	r := newRig(t)
	b := r.step(UpgradeDev, "b")
	b.retry = true
	b.applyErr, b.failures = fmt.Errorf("thermals: %w", boxes.ErrOutcomeUnknown), 2
	a, err := r.eng.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.statuses(a), "done a=done/1 b=done/1 c=done/1"; got != want {
		t.Fatalf("attempt %q, want %q", got, want)
	}
	if got := strings.Count(r.w.journal(), "check:upgrade-dev/b"); got != 4 {
		t.Fatalf("b checked %d times, want 4 (re-checked before each retry, and after the apply): %s", got, r.w.journal())
	}
	// More failures than retries: left running, never done.
	r2 := newRig(t)
	b2 := r2.step(UpgradeDev, "b")
	b2.retry = true
	b2.applyErr, b2.failures = fmt.Errorf("thermals: %w", boxes.ErrOutcomeUnknown), 10
	a, _ = r2.eng.Next(context.Background())
	if a.Steps[1].Status != state.StepRunning {
		t.Fatalf("b is %s after retries ran out, want running", a.Steps[1].Status)
	}
}

func TestStopWaitsForTheStepThenRecordsInterrupted(t *testing.T) {
	r := newRig(t)
	stop := make(chan struct{})
	r.eng.Stop = stop
	r.step(UpgradeDev, "a").onApply = func(*steps.Env) error { close(stop); return nil }
	a, err := r.eng.Next(context.Background())
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("next: %v", err)
	}
	if got, want := r.statuses(a), "interrupted a=done/1 b=pending/0 c=pending/0"; got != want {
		t.Fatalf("attempt %q, want %q", got, want)
	}
	r.eng.Stop = nil
	if _, err := r.eng.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.phase() != DevUpgraded {
		t.Fatalf("phase %s", r.phase())
	}
}

func TestACancelledContextInsideAStepInterruptsIt(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := r.step(UpgradeDev, "b")
	b.applyErr, b.failures = fmt.Errorf("thermals: %w: %w", boxes.ErrOutcomeUnknown, context.Canceled), 1
	r.step(UpgradeDev, "a").onApply = func(*steps.Env) error { cancel(); return nil }
	a, err := r.eng.Next(ctx)
	if err == nil {
		t.Fatal("next succeeded")
	}
	if got, want := r.statuses(a), "interrupted a=done/1 b=running/1 c=pending/0"; got != want {
		t.Fatalf("attempt %q, want %q", got, want)
	}
}

// looplab/fsm issue #101: a cancelled context must never leave the machine
// stuck. The last step cancels the run's context; the phase still moves.
func TestACancelledContextAfterTheLastStepStillMovesThePhase(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	r.step(UpgradeDev, "c").onApply = func(*steps.Env) error { cancel(); return nil }
	if _, err := r.eng.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if r.phase() != DevUpgraded {
		t.Fatalf("phase %s, want %s", r.phase(), DevUpgraded)
	}
	if _, err := r.eng.Next(context.Background()); err != nil {
		t.Fatalf("the machine is stuck after a cancelled context: %v", err)
	}
}

func TestRollbackUndoesInReverseAndSurvivesBeingStopped(t *testing.T) {
	r := newRig(t)
	c := r.step(UpgradeDev, "c")
	c.applyErr, c.failures = errors.New("thermals: exit 1"), 1
	if _, err := r.eng.Next(context.Background()); err == nil {
		t.Fatal("next succeeded")
	}
	// Stop after the first undo (c: a failed step may be half done, so it is
	// undone too): the rollback is left rolling-back.
	stop := make(chan struct{})
	r.eng.Stop = stop
	r.eng.Command = "rollback"
	c.onUndo = func() { close(stop) }
	a, err := r.eng.Rollback(context.Background())
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("rollback with stop: %v", err)
	}
	if got, want := r.statuses(a), "rolling-back a=done/1 b=done/1 c=undone/1"; got != want {
		t.Fatalf("attempt %q, want %q", got, want)
	}
	if _, err := r.eng.Resume(context.Background()); !errors.Is(err, ErrPending) {
		t.Fatalf("resume during a rollback: %v", err)
	}
	r.eng.Stop = nil
	a, err = r.eng.Rollback(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.statuses(a), "rolled-back a=undone/1 b=undone/1 c=undone/1"; got != want {
		t.Fatalf("attempt %q, want %q", got, want)
	}
	j := r.w.journal()
	if i, k, l := strings.Index(j, "undo:upgrade-dev/c"), strings.Index(j, "undo:upgrade-dev/b"), strings.Index(j, "undo:upgrade-dev/a"); !(i < k && k < l) || i < 0 {
		t.Fatalf("undo order wrong: %s", j)
	}
	if r.phase() != Start {
		t.Fatalf("phase %s after rollback, want start", r.phase())
	}
	if _, err := r.eng.Rollback(context.Background()); !errors.Is(err, ErrNothingToRollBack) {
		t.Fatalf("second rollback: %v", err)
	}
	// The transition can be tried again from scratch.
	if _, err := r.eng.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.phase() != DevUpgraded {
		t.Fatalf("phase %s", r.phase())
	}
}

func TestRollbackStopsBeforeAnIrreversibleStep(t *testing.T) {
	r := newRig(t)
	r.step(UpgradeDev, "b").irreversible = true
	c := r.step(UpgradeDev, "c")
	c.applyErr, c.failures = errors.New("thermals: exit 1"), 1
	r.eng.Next(context.Background())
	a, err := r.eng.Rollback(context.Background())
	if !errors.Is(err, ErrRollbackStopped) || !strings.Contains(err.Error(), "resume") {
		t.Fatalf("rollback: %v", err)
	}
	if got, want := r.statuses(a), "failed a=done/1 b=done/1 c=undone/1"; got != want {
		t.Fatalf("attempt %q, want %q", got, want)
	}
	if strings.Contains(r.w.journal(), "undo:upgrade-dev/a") {
		t.Fatalf("a undone past the irreversible b: %s", r.w.journal())
	}
	// Forward still works.
	if _, err := r.eng.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.phase() != DevUpgraded {
		t.Fatalf("phase %s", r.phase())
	}
}

func TestFactsPersistAcrossRunsWithinACycle(t *testing.T) {
	r := newRig(t)
	r.step(UpgradeDev, "a").onApply = func(env *steps.Env) error { return env.Facts.Set("thermals/python3", "3.6") }
	b := r.step(UpgradeDev, "b")
	b.applyErr, b.failures = errors.New("boom"), 1
	r.eng.Next(context.Background())
	var seen string
	b.onApply = func(env *steps.Env) error { seen, _ = env.Facts.Get("thermals/python3"); return nil }
	if _, err := r.eng.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if seen != "3.6" {
		t.Fatalf("fact lost across runs: %q", seen)
	}
	a, _ := r.store.Last()
	if a.Steps[0].Facts["thermals/python3"] != "3.6" {
		t.Fatalf("step a does not show its fact: %+v", a.Steps[0].Facts)
	}
}

func TestTheConfigCannotChangeUnderARunningCycle(t *testing.T) {
	r := newRig(t)
	if _, err := r.eng.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.eng.Config.Upgrade.To = 31
	if _, err := r.eng.Next(context.Background()); !errors.Is(err, ErrConfigChanged) {
		t.Fatalf("next with another target mid-cycle: %v", err)
	}
}

func TestResumeRefusesStepsThatChanged(t *testing.T) {
	r := newRig(t)
	b := r.step(UpgradeDev, "b")
	b.applyErr, b.failures = errors.New("boom"), 1
	r.eng.Next(context.Background())
	r.plans[UpgradeDev] = r.plans[UpgradeDev][:2]
	if _, err := r.eng.Resume(context.Background()); !errors.Is(err, ErrConfigChanged) {
		t.Fatalf("resume with fewer steps: %v", err)
	}
}

func TestASecondCycleStartsWhenBoxesYamlAsksForIt(t *testing.T) {
	r := newRig(t)
	for range Transitions {
		if _, err := r.eng.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	r.eng.Config.Upgrade.From, r.eng.Config.Upgrade.To = 29, 31
	v, err := Where(r.eng.Config, r.store)
	if err != nil {
		t.Fatal(err)
	}
	if v.Next == nil || *v.Next != UpgradeDev {
		t.Fatalf("where at done with a new target: next %v", v.Next)
	}
	if _, err := r.eng.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	m, _ := r.store.Meta()
	if m.Cycle != 2 || m.From != 29 || m.To != 31 || m.Phase != DevUpgraded {
		t.Fatalf("meta %+v", m)
	}
	// Facts of cycle 1 are not seen by cycle 2.
	r.eng.Config.Upgrade.From, r.eng.Config.Upgrade.To = 27, 29
	if _, err := r.eng.Next(context.Background()); !errors.Is(err, ErrConfigChanged) {
		t.Fatalf("going back to 27->29 mid-cycle 2: %v", err)
	}
}

func TestWhereOnAFreshStateShowsTheStartingTable(t *testing.T) {
	r := newRig(t)
	v, err := Where(r.eng.Config, r.store)
	if err != nil {
		t.Fatal(err)
	}
	if v.Phase != Start || v.Next == nil || *v.Next != UpgradeDev || v.Transition != nil {
		t.Fatalf("view %+v", v)
	}
	got := fmt.Sprintf("%v", v.Boxes)
	want := "[{thurst thurst.inria.fr production 27} {thermals thermals.inria.fr development 27}]"
	if got != want {
		t.Fatalf("boxes %s, want %s", got, want)
	}
	b := r.step(UpgradeDev, "b")
	b.applyErr, b.failures = errors.New("thermals: exit 1"), 1
	r.eng.Next(context.Background())
	v, _ = Where(r.eng.Config, r.store)
	if v.Transition == nil || v.Transition.Status != state.Failed || v.Transition.Step != "upgrade-dev/b" ||
		v.Transition.FailedStep != "upgrade-dev/b" || v.Transition.StepIndex != 2 || len(v.Transition.Steps) != 3 {
		t.Fatalf("transition %+v", v.Transition)
	}
}

func TestOutputKeepsABoundedTail(t *testing.T) {
	o := newOutput(discard{}, nil)
	w := o.writer("thurst")
	for i := range 1000 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	fmt.Fprint(w, "no newline")
	tail := o.takeTail()
	if len(tail) != tailLines || tail[len(tail)-1] != "thurst: no newline" || tail[0] != "thurst: line 981" {
		t.Fatalf("tail %d lines: first %q last %q", len(tail), tail[0], tail[len(tail)-1])
	}
}

func TestStopBeforeStopsAtTheNamedStep(t *testing.T) {
	r := newRig(t)
	r.eng.StopBefore = "upgrade-dev/nope"
	if _, err := r.eng.Next(context.Background()); !errors.Is(err, ErrNoSuchStep) {
		t.Fatalf("unknown step: %v", err)
	}
	if a, _ := r.store.Last(); a != nil {
		t.Fatalf("an attempt was recorded for a refused --stop-before: %+v", a)
	}
	if m, _ := r.store.Meta(); m.Cycle != 0 {
		t.Fatalf("a refused next began a cycle: %+v", m)
	}
	r.eng.StopBefore = "upgrade-dev/c"
	a, err := r.eng.Next(context.Background())
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("next: %v", err)
	}
	if got, want := r.statuses(a), "interrupted a=done/1 b=done/1 c=pending/0"; got != want {
		t.Fatalf("attempt %q, want %q", got, want)
	}
	r.eng.StopBefore = ""
	if _, err := r.eng.Resume(context.Background()); err != nil || r.phase() != DevUpgraded {
		t.Fatalf("resume: %v, phase %s", err, r.phase())
	}
}

func TestARefusedHostKeyIsNotRetried(t *testing.T) {
	r := newRig(t)
	b := r.step(UpgradeDev, "b")
	b.retry = true
	b.applyErr, b.failures = fmt.Errorf("thermals: %w: %w", boxes.ErrUnreachable, boxes.ErrHostKeyChanged), 5
	a, err := r.eng.Next(context.Background())
	if !errors.Is(err, boxes.ErrHostKeyChanged) {
		t.Fatalf("next: %v", err)
	}
	if n := strings.Count(r.w.journal(), "fail:upgrade-dev/b"); n != 1 {
		t.Fatalf("b tried %d times with a refused host key, want 1", n)
	}
	if a.Steps[1].Status != state.StepRunning {
		t.Fatalf("b is %s, want running (outcome unknown)", a.Steps[1].Status)
	}
}

// Issue 10, item 1: a link planted at the attempt's log file (or at the
// logs folder) is refused before any step runs, and its target is never
// appended to; since issue 23, before the attempt is recorded.
func TestALinkedLogFileIsRefusedNotWrittenThrough(t *testing.T) {
	for _, at := range []string{"file", "folder"} {
		t.Run(at, func(t *testing.T) {
			r := newRig(t)
			logs := r.store.Path() + ".logs"
			victim := filepath.Join(t.TempDir(), "victim")
			if err := os.WriteFile(victim, []byte("keep\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if at == "file" {
				if err := os.Mkdir(logs, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(victim, filepath.Join(logs, "0001-upgrade-dev.log")); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := os.Symlink(filepath.Dir(victim), logs); err != nil {
					t.Fatal(err)
				}
			}
			a, err := r.eng.Next(context.Background())
			if !errors.Is(err, state.ErrNotAFile) {
				t.Fatalf("next with a linked log %s: %v, want ErrNotAFile", at, err)
			}
			if r.w.journal() != "" {
				t.Errorf("steps ran: %s", r.w.journal())
			}
			// Issue 23: refused before the state is written.
			if last, err := r.store.Last(); a != nil || last != nil || err != nil {
				t.Errorf("attempt %+v, recorded %+v, %v; want none", a, last, err)
			}
			if data, _ := os.ReadFile(victim); string(data) != "keep\n" {
				t.Errorf("victim now holds %q", data)
			}
			if entries, _ := os.ReadDir(filepath.Dir(victim)); len(entries) != 1 {
				t.Errorf("files created beside the victim: %v", entries)
			}
		})
	}
}

// Issue 10, item 6: a refused connection is "refused" (nothing ran), not
// "outcome unknown".
func TestARefusedConnectionIsNotAnUnknownOutcome(t *testing.T) {
	r := newRig(t)
	b := r.step(UpgradeDev, "b")
	b.retry = true
	b.applyErr = fmt.Errorf("thermals: ssh: %w: dial 127.0.0.2:22: %w", boxes.ErrUnreachable, syscall.ECONNREFUSED)
	b.failures = 10
	a, err := r.eng.Next(context.Background())
	if !errors.Is(err, boxes.ErrUnreachable) {
		t.Fatalf("next: %v", err)
	}
	out := r.out.String()
	if strings.Contains(out, "outcome unknown") || strings.Contains(out, " unknown after") {
		t.Errorf("a refused connection reported as an unknown outcome:\n%s", out)
	}
	if !strings.Contains(out, "refused (") || !strings.Contains(out, "trying again in") {
		t.Errorf("output does not say refused:\n%s", out)
	}
	if a.Steps[1].Status != state.StepRunning {
		t.Errorf("b is %s, want running (resume tries again)", a.Steps[1].Status)
	}
}
