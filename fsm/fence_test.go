package fsm

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"boxswap/boxes"
	"boxswap/internal/etcdtest"
	"boxswap/state"
	"boxswap/state/etcdstate"
	"boxswap/steps"
)

// localRunner runs commands with sh on this machine: a box that is the
// test's own temporary folder.
type localRunner struct{ sent *int }

func (r localRunner) Run(ctx context.Context, cmd string, stdout, stderr io.Writer) (int, error) {
	*r.sent++
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Stdout, c.Stderr = stdout, stderr
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, err
}

// touchStep creates a file on the box; before, when set, runs in Apply
// after the step was recorded running and before the command is sent.
type touchStep struct {
	id, path string
	before   func()
}

func (s *touchStep) ID() string { return s.id }
func (s *touchStep) Describe() steps.Description {
	return steps.Description{Box: "thermals", Text: "touch " + s.path, Commands: []string{"touch " + s.path}}
}
func (s *touchStep) Check(ctx context.Context, env *steps.Env) (bool, string, error) {
	_, err := os.Stat(s.path)
	return err == nil, "file", nil
}
func (s *touchStep) Apply(ctx context.Context, env *steps.Env) error {
	if s.before != nil {
		s.before()
	}
	r, err := env.Boxes("thermals")
	if err != nil {
		return err
	}
	_, err = r.Run(ctx, "touch "+s.path, io.Discard, io.Discard)
	return err
}
func (s *touchStep) Undo(ctx context.Context, env *steps.Env) error { return os.Remove(s.path) }

// Issue 15: an operator whose etcd lease ended between recording a step
// running and sending its command sends nothing: the command is fenced,
// the step stays running, and the next holder's resume checks it first.
func TestALostLeaseSendsNothingMore(t *testing.T) {
	c := etcdtest.Start(t, 1)
	dir := t.TempDir()
	open := func() *etcdstate.Store {
		s, err := etcdstate.Open(etcdstate.Options{Endpoints: c.Endpoints(), Prefix: "/boxswap/fence", TTL: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	first := open()
	if err := first.Create(); err != nil {
		t.Fatal(err)
	}
	if err := first.Init(state.Meta{Phase: Start, Cycle: 1, From: 27, To: 29}); err != nil {
		t.Fatal(err)
	}
	lock, err := first.Lock(state.CurrentHolder("boxswap next"))
	if err != nil {
		t.Fatal(err)
	}
	cli := c.Client()
	a := &touchStep{id: "upgrade-dev/a", path: filepath.Join(dir, "a")}
	b := &touchStep{id: "upgrade-dev/b", path: filepath.Join(dir, "b"), before: func() {
		lease := lock.(interface{ Lease() clientv3.LeaseID }).Lease()
		if _, err := cli.Revoke(context.Background(), lease); err != nil {
			t.Error(err)
		}
	}}
	sent := 0
	plan := []steps.Step{a, b}
	eng := func(store state.Backend) *Engine {
		return &Engine{Config: testConfig(), Store: store, Report: &lineReporter{w: io.Discard}, Who: "t@here", Command: "next",
			Boxes: func(string) (boxes.Runner, error) { return localRunner{sent: &sent}, nil }, Backoff: time.Millisecond,
			LogDir: filepath.Join(dir, "logs"),
			Plan:   func(*boxes.Config, state.Meta, Event) ([]steps.Step, error) { return plan, nil }}
	}
	_, err = eng(first).Next(context.Background())
	if !errors.Is(err, state.ErrLockLost) {
		t.Fatalf("Next after the lease ended = %v, want ErrLockLost", err)
	}
	if _, err := os.Stat(b.path); err == nil || sent != 1 {
		t.Fatalf("the stale operator sent %d commands and b's file exists (%v): want only a's", sent, err)
	}
	second := open()
	if _, err := second.Lock(state.CurrentHolder("boxswap resume")); err != nil {
		t.Fatal(err)
	}
	att, err := second.Last()
	if err != nil || att.Steps[1].Status != state.StepRunning {
		t.Fatalf("b as the stale operator left it: %+v, %v; want running", att, err)
	}
	b.before = nil
	att, err = eng(second).Resume(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if att.Status != state.Done || att.Steps[1].Status != state.StepDone {
		t.Errorf("resume by the new holder: %s, b %s", att.Status, att.Steps[1].Status)
	}
	if _, err := os.Stat(b.path); err != nil {
		t.Errorf("b not applied by the new holder: %v", err)
	}
}
