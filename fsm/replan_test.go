package fsm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"boxswap/boxes"
	"boxswap/state"
	"boxswap/steps"
)

// installStep is a step whose command comes from boxes.yaml (app.install):
// it shows which plan ran and which undid it.
type installStep struct {
	w       *world
	id, cmd string
	fail    *int // Apply fails while > 0
}

func (s *installStep) ID() string { return s.id }
func (s *installStep) Describe() steps.Description {
	return steps.Description{Box: "thermals", Text: "install", Commands: []string{s.cmd}, Undo: []string{"undo " + s.cmd},
		NoCheckAfter: "a command without a check: its exit status is all there is"}
}
func (s *installStep) Check(context.Context, *steps.Env) (bool, string, error) { return false, "", nil }
func (s *installStep) Apply(context.Context, *steps.Env) error {
	if *s.fail > 0 {
		*s.fail--
		s.w.did("fail:" + s.cmd)
		return errors.New("exit 1")
	}
	s.w.did("apply:" + s.cmd)
	return nil
}
func (s *installStep) Undo(context.Context, *steps.Env) error {
	s.w.did("undo:" + s.cmd)
	return nil
}

// replanRig is an engine over the shipped boxes.yaml whose upgrade-dev is
// three steps: first (install), second (install + " --second") and a hook
// step that fails once.
type replanRig struct {
	eng  *Engine
	w    *world
	file string
	fail int
}

func newReplanRig(t *testing.T) *replanRig {
	t.Helper()
	r := &replanRig{w: &world{applied: map[string]bool{}}, fail: 1}
	r.file = filepath.Join(t.TempDir(), "boxes.yaml")
	data, err := os.ReadFile(filepath.Join("..", "boxes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r.setInstall(t, string(data), "cd /root/nbhosting && ./install.sh")
	r.eng = &Engine{
		Store: state.Open(filepath.Join(t.TempDir(), "boxswap.db")), Who: "tester@here", Command: "next",
		Boxes: func(string) (boxes.Runner, error) { return nil, errors.New("no boxes here") },
		Plan: func(cfg *boxes.Config, meta state.Meta, event Event) ([]steps.Step, error) {
			return []steps.Step{
				&installStep{w: r.w, id: string(event) + "/first", cmd: cfg.App.Install, fail: new(int)},
				&installStep{w: r.w, id: string(event) + "/second", cmd: cfg.App.Install + " --second", fail: &r.fail},
			}, nil
		},
	}
	r.reload(t)
	return r
}

// setInstall writes boxes.yaml with app.install set to install.
func (r *replanRig) setInstall(t *testing.T, text, install string) {
	t.Helper()
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "  install: ") {
			lines[i] = "  install: " + install
		}
	}
	if err := os.WriteFile(r.file, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (r *replanRig) reload(t *testing.T) {
	t.Helper()
	cfg, err := boxes.Load(r.file)
	if err != nil {
		t.Fatal(err)
	}
	if r.eng != nil {
		r.eng.Config = cfg
	}
}

func (r *replanRig) edit(t *testing.T, install string) {
	t.Helper()
	data, err := os.ReadFile(r.file)
	if err != nil {
		t.Fatal(err)
	}
	r.setInstall(t, string(data), install)
	r.reload(t)
}

// Issue 10, item 4: boxes.yaml changed mid-transition. A change that does
// not touch the pending transition's commands lets resume go on; one that
// does is shown, step by step, and nothing runs; resume --replan records
// the new plan (history, who, the file) and runs it for the steps not done.
func TestAChangedBoxesYamlMidTransition(t *testing.T) {
	r := newReplanRig(t)
	if _, err := r.eng.Next(context.Background()); err == nil {
		t.Fatal("the second step did not fail")
	}
	// A change elsewhere (another event's hook): the commands are the same.
	data, _ := os.ReadFile(r.file)
	if err := os.WriteFile(r.file, []byte(strings.Replace(string(data), "hooks: {}", "hooks:\n  epilogue:\n    after:\n      - {name: bye, on: production, run: 'true'}", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	r.reload(t)
	r.fail = 1
	if _, err := r.eng.Resume(context.Background()); err == nil || errors.Is(err, ErrConfigChanged) {
		t.Fatalf("resume with an unrelated change: %v, want the step's own failure", err)
	}

	// The install command changes: resume shows it and runs nothing.
	r.edit(t, "cd /root/nbhosting && ./install.sh --fixed")
	before := r.w.journal()
	_, err := r.eng.Resume(context.Background())
	var pc *PlanChangedError
	if !errors.As(err, &pc) || len(pc.Diff) != 2 || !strings.Contains(pc.Diff[0], "~ upgrade-dev/first (done)") ||
		!strings.Contains(pc.Diff[1], "~ upgrade-dev/second (failed)") || !strings.Contains(pc.Diff[1], "--fixed --second") {
		t.Fatalf("resume with changed commands: %v", err)
	}
	if r.w.journal() != before {
		t.Errorf("steps ran: %s", strings.TrimPrefix(r.w.journal(), before))
	}

	// The done first step would run otherwise too: a re-plan is refused,
	// since it already ran as recorded.
	if _, err := r.eng.Replan(); !errors.Is(err, ErrConfigChanged) || !strings.Contains(err.Error(), "upgrade-dev/first already ran as recorded") {
		t.Fatalf("replan over a changed done step: %v", err)
	}

	// Rollback undoes the done step with the commands recorded when it
	// ran, not the file's new ones.
	r.fail = 0
	if _, err := r.eng.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	if j := r.w.journal(); !strings.HasSuffix(j, "undo:cd /root/nbhosting && ./install.sh") {
		t.Errorf("rollback undid %q, want the recorded command", j)
	}
}

// Issue 10, item 4: resume --replan (Engine.Replan) when only steps not
// done yet change: recorded, then run with the new commands; the done
// step keeps its record and its undo.
func TestReplanTakesTheNewCommandsForTheStepsNotDone(t *testing.T) {
	r := newReplanRig(t)
	// Only the second step's command may change: make it depend on a
	// value the first does not read.
	r.eng.Plan = func(cfg *boxes.Config, meta state.Meta, event Event) ([]steps.Step, error) {
		return []steps.Step{
			&installStep{w: r.w, id: string(event) + "/first", cmd: "first", fail: new(int)},
			&installStep{w: r.w, id: string(event) + "/second", cmd: cfg.App.Install, fail: &r.fail},
		}, nil
	}
	if _, err := r.eng.Next(context.Background()); err == nil {
		t.Fatal("the second step did not fail")
	}
	r.edit(t, "./install.sh --fixed")
	diff, err := r.eng.Replan()
	if err != nil || len(diff) != 1 || !strings.Contains(diff[0], "upgrade-dev/second") {
		t.Fatalf("replan: %q, %v", diff, err)
	}
	a, err := r.eng.Resume(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(r.w.journal(), "apply:./install.sh --fixed") || strings.Count(r.w.journal(), "apply:first") != 1 {
		t.Errorf("journal %q: want the new command, and first not run again", r.w.journal())
	}
	if len(a.Configs) != 2 || a.Steps[0].Plan != 0 || a.Steps[1].Plan != 1 {
		t.Errorf("recorded plans: %d configs, steps in plans %d and %d", len(a.Configs), a.Steps[0].Plan, a.Steps[1].Plan)
	}
	hist, err := r.eng.Store.History()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range hist {
		if e.Kind == "replan" && strings.Contains(e.Detail, "tester@here") && strings.Contains(e.Detail, "upgrade-dev/second") {
			found = true
		}
	}
	if !found {
		t.Errorf("no replan event in the history: %+v", hist)
	}
}
