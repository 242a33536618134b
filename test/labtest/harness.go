package labtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"boxswap/boxes"
	"boxswap/fsm"
	"boxswap/state"
	"boxswap/test/lab/lab"
)

// Harness is one lab and a boxswap binary pointed at it.
type Harness struct {
	T      testing.TB
	Lab    *lab.Lab
	Bin    string
	Config string // the lab's boxes.yaml
	State  string // the state file boxswap uses
	// Env is added to every boxswap run (e.g. BOXSWAP_FAULT=...).
	Env []string
	// ImplicitState leaves --state out of every run, so boxswap finds its
	// state file beside boxes.yaml (State) by itself, as an operator's
	// would.
	ImplicitState bool
}

// New starts a lab for t (failing in CI, skipping elsewhere when it cannot
// run) and takes it down when t ends.
func New(t testing.TB, opts lab.Options) *Harness {
	t.Helper()
	Require(t)
	bin := Boxswap(t)
	if opts.Files == 0 {
		opts.Files, opts.FileSize = 40, 512
	}
	if opts.RebootDelay == 0 {
		opts.RebootDelay = 300 * time.Millisecond
	}
	if opts.BootTimeout == 0 && opts.Kind != lab.KindSystemd {
		opts.BootTimeout = 30 * time.Second
	}
	LockMachine(t)
	l, err := lab.Up(context.Background(), t.TempDir(), opts)
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
		KeepLogsOnFailure(t, l)
	})
	return &Harness{T: t, Lab: l, Bin: bin, Config: l.Config(), State: filepath.Join(l.Dir, "boxswap.db")}
}

// KeepLogsOnFailure keeps the lab's logs of a failed t (lab.KeepLogs: its
// folder goes with t) and says where.
func KeepLogsOnFailure(t testing.TB, l *lab.Lab) {
	if !t.Failed() {
		return
	}
	d, err := l.KeepLogs(t.Name())
	if err != nil {
		t.Logf("lab logs: %v", err)
	}
	t.Logf("lab logs of this failed test kept in %s", d)
}

// Real says the lab's boxes are real (systemd-nspawn) machines.
func (h *Harness) Real() bool { return h.Lab.Info.Kind == lab.KindSystemd }

// releasePrefix is how the boxes' app writes a release before its number:
// "f" on the namespace lab's stand-ins, nothing on real boxes (VERSION_ID).
func (h *Harness) releasePrefix() string {
	if h.Real() {
		return ""
	}
	return "f"
}

// Result is how one boxswap run ended.
type Result struct {
	Args           []string
	Code           int // exit code; -1 when killed by a signal
	Signal         syscall.Signal
	Stdout, Stderr string
	Took           time.Duration
}

// Killed says the run ended by SIGKILL.
func (r Result) Killed() bool { return r.Signal == syscall.SIGKILL }

func (r Result) String() string {
	return "boxswap " + strings.Join(r.Args, " ") + ": exit " + strconv.Itoa(r.Code) + sigText(r.Signal) +
		"\n--- stdout\n" + tail(r.Stdout, 40) + "--- stderr\n" + tail(r.Stderr, 20)
}

// Proc is a boxswap run in progress.
type Proc struct {
	Cmd            *exec.Cmd
	args           []string
	stdout, stderr *syncBuffer
	start          time.Time
	done           chan struct{}
	res            Result
}

// Start starts boxswap with the global flags pointing at the lab, env
// added to h.Env, and args.
func (h *Harness) Start(env []string, args ...string) *Proc {
	h.T.Helper()
	full := []string{"-c", h.Config}
	if !h.ImplicitState {
		full = append(full, "--state", h.State)
	}
	full = append(full, args...)
	// On real boxes boxswap runs on the operator's side: in the lab's
	// network namespace (ip netns exec, which execs it: the PID is its).
	cmd := h.Lab.Command(h.Bin, full...)
	cmd.Env = append(append(os.Environ(), h.Env...), env...)
	p := &Proc{Cmd: cmd, args: args, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	cmd.Stdin = nil
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		h.T.Fatalf("start boxswap: %v", err)
	}
	go func() {
		err := cmd.Wait()
		p.res = Result{Args: args, Stdout: p.stdout.String(), Stderr: p.stderr.String(), Took: time.Since(p.start)}
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			p.res.Code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				p.res.Signal = ws.Signal()
			}
		default:
			p.res.Code = -1
			p.res.Stderr += "\n(wait: " + err.Error() + ")"
		}
		close(p.done)
	}()
	return p
}

// Wait waits for the run to end.
func (p *Proc) Wait() Result { <-p.done; return p.res }

// Done is closed when the run has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Signal sends sig to the run (SIGKILL: a crash of the operator's side).
func (p *Proc) Signal(sig syscall.Signal) error { return p.Cmd.Process.Signal(sig) }

// Run runs boxswap to the end with extra env.
func (h *Harness) RunEnv(env []string, args ...string) Result {
	h.T.Helper()
	return h.Start(env, args...).Wait()
}

// Run runs boxswap to the end.
func (h *Harness) Run(args ...string) Result {
	h.T.Helper()
	return h.RunEnv(nil, args...)
}

// MustRun runs boxswap and fails the test unless it exits 0.
func (h *Harness) MustRun(args ...string) Result {
	h.T.Helper()
	r := h.Run(args...)
	if r.Code != 0 {
		h.T.Fatalf("%s", r)
	}
	return r
}

// View is the part of `boxswap where --json` the tests read.
type View struct {
	Phase      string  `json:"phase"`
	Next       *string `json:"next"`
	Cycle      int     `json:"cycle"`
	From       int     `json:"from"`
	To         int     `json:"to"`
	Transition *struct {
		ID         uint64       `json:"id"`
		Event      string       `json:"event"`
		Status     state.Status `json:"status"`
		Step       string       `json:"step"`
		FailedStep string       `json:"failed_step"`
		Error      string       `json:"error"`
		Steps      []struct {
			ID       string           `json:"id"`
			Status   state.StepStatus `json:"status"`
			Attempts int              `json:"attempts"`
		} `json:"steps"`
	} `json:"transition"`
	Boxes []struct {
		Name     string `json:"name"`
		Function string `json:"function"`
		Release  int    `json:"release"`
	} `json:"boxes"`
	Lock *state.Holder `json:"lock"`
}

// Pending says a transition waits for resume or rollback.
func (v View) Pending() bool {
	return v.Transition != nil && v.Transition.Status != state.Done && v.Transition.Status != state.RolledBack
}

// Where runs `boxswap where --json`.
func (h *Harness) Where() View {
	h.T.Helper()
	v, r, err := h.TryWhere()
	if err != nil {
		h.T.Fatalf("where --json: %s", r)
	}
	return v
}

// TryWhere runs `boxswap where --json` without failing the test, for
// polling while another run goes on: the caller decides what a failed
// where means and can stop that run first.
func (h *Harness) TryWhere() (View, Result, error) {
	h.T.Helper()
	r := h.Run("--json", "where")
	var v View
	if r.Code != 0 {
		return v, r, errors.New("where --json: exit " + strconv.Itoa(r.Code))
	}
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil {
		return v, r, fmt.Errorf("where --json: %w", err)
	}
	return v, r, nil
}

// Log is the part of `boxswap log --json` the tests read.
type Log struct {
	History  []state.Event   `json:"history"`
	Attempts []state.Attempt `json:"attempts"`
}

// Log runs `boxswap log --json`.
func (h *Harness) Log() Log {
	h.T.Helper()
	r := h.Run("--json", "log")
	var l Log
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &l) != nil {
		h.T.Fatalf("log --json: %s", r)
	}
	return l
}

// LastAttempt is the last transition attempt in the log.
func (h *Harness) LastAttempt() state.Attempt {
	h.T.Helper()
	l := h.Log()
	if len(l.Attempts) == 0 {
		h.T.Fatal("log: no attempt recorded")
	}
	return l.Attempts[len(l.Attempts)-1]
}

// Sh runs cmd on box as root and fails the test unless it exits 0. It
// returns the output trimmed of surrounding space.
func (h *Harness) Sh(box, cmd string) string {
	h.T.Helper()
	return strings.TrimSpace(h.ShRaw(box, cmd))
}

// ShRaw is Sh returning the output as it is, for comparing files byte for
// byte (a trailing newline gained or lost shows).
func (h *Harness) ShRaw(box, cmd string) string {
	h.T.Helper()
	out, code, err := h.Lab.Run(box, cmd)
	if err != nil || code != 0 {
		h.T.Fatalf("%s: %s: exit %d %v: %s", box, cmd, code, err, out)
	}
	return out
}

// Exists says whether path exists on box, as the box sees it.
func (h *Harness) Exists(box, path string) bool {
	h.T.Helper()
	out, code, err := h.Lab.Run(box, "test -e "+boxes.Quote(path))
	if err != nil || code > 1 {
		h.T.Fatalf("%s: test -e %s: exit %d %v: %s", box, path, code, err, out)
	}
	return code == 0
}

// EditConfig rewrites the lab's boxes.yaml.
func (h *Harness) EditConfig(edit func(string) string) {
	h.T.Helper()
	raw, err := os.ReadFile(h.Config)
	if err != nil {
		h.T.Fatal(err)
	}
	if err := os.WriteFile(h.Config, []byte(edit(string(raw))), 0o644); err != nil {
		h.T.Fatal(err)
	}
}

// Disk is the path of rel on box's disk (its overlay upper dir).
func (h *Harness) Disk(box, rel string) string {
	return filepath.Join(h.Lab.Info.Boxes[box].Disk, rel)
}

// Boots counts the boots of box since the lab came up (its supervisor's
// log), so a reboot done twice shows.
func (h *Harness) Boots(box string) int {
	log := "supervisor.log"
	if h.Real() {
		log = "sd-supervise.log"
	}
	raw, _ := os.ReadFile(filepath.Join(h.Lab.Dir, box, log))
	return strings.Count(string(raw), "supervisor "+box+": booting")
}

// InstallRuns counts the runs of install.sh on box (its install.log).
func (h *Harness) InstallRuns(box string) int {
	raw, _ := os.ReadFile(h.Disk(box, "root/nbhosting/install.log"))
	return strings.Count(string(raw), "\n")
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func sigText(s syscall.Signal) string {
	if s == 0 {
		return ""
	}
	return " (" + s.String() + ")"
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"…"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n") + "\n"
}

// PlannedStep is one step of `boxswap plan --json`.
type PlannedStep struct {
	ID           string `json:"id"`
	Box          string `json:"box"`
	Irreversible bool   `json:"irreversible"`
	Retry        bool   `json:"retry"`
}

// Plan returns the next transition's event and steps (plan --offline --json).
func (h *Harness) Plan() (string, []PlannedStep) {
	h.T.Helper()
	r := h.Run("--json", "plan", "--offline")
	var p struct {
		Transition struct {
			Event string `json:"event"`
		} `json:"transition"`
		Steps []PlannedStep `json:"steps"`
	}
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &p) != nil {
		h.T.Fatalf("plan --json: %s", r)
	}
	return p.Transition.Event, p.Steps
}

// WaitRunning polls where --json until step is recorded running, and
// reports whether it was seen before p ended or within passed.
func (h *Harness) WaitRunning(p *Proc, step string, within time.Duration) bool {
	h.T.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-p.Done():
			return false
		default:
		}
		if v, _, err := h.TryWhere(); err == nil && v.Transition != nil {
			for _, s := range v.Transition.Steps {
				if s.ID == step && s.Status == state.StepRunning {
					return true
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// Continue runs the verb that goes on from where the state stands: resume
// when a transition is pending, next otherwise.
func (h *Harness) Continue(env []string, extra ...string) Result {
	h.T.Helper()
	verb := "next"
	if h.Where().Pending() {
		verb = "resume"
	}
	return h.RunEnv(env, append([]string{"--yes", verb}, extra...)...)
}

// SameRelease makes the lab's cycle one without a release change: its
// upgrade.to is set to the boxes' own release, which it returns. The
// cycle's upgrade-dev and upgrade-prod then only check the boxes, make the
// devel branch and run install.sh: no package transaction, no reboot.
func (h *Harness) SameRelease() int {
	h.T.Helper()
	rel := h.Lab.Info.From
	if !h.Real() {
		rel = lab.Release
	}
	h.EditConfig(func(s string) string {
		return regexp.MustCompile(`(?m)^  to: [0-9]+$`).ReplaceAllString(s, fmt.Sprintf("  to: %d", rel))
	})
	return rel
}

// MovesOnly makes the lab's cycle one without a release change (upgrade.to
// set to the boxes' own release) and seeds the state at its phase
// dev-upgraded: the next `boxswap next` is redirect, then upgrade-prod
// (finding nothing to upgrade) and switch-back. For the tests of the
// moves, which need real boxes but not the minutes an upgrade costs. Call
// it before the first boxswap run.
func (h *Harness) MovesOnly() {
	h.T.Helper()
	rel := h.SameRelease()
	m := state.Meta{Phase: fsm.DevUpgraded, Cycle: 1, From: rel, To: rel}
	if err := state.Open(h.State).Init(m); err != nil {
		h.T.Fatalf("seed the state at dev-upgraded: %v", err)
	}
}

// Output is what the run wrote so far, stdout then stderr.
func (p *Proc) Output() string { return p.stdout.String() + p.stderr.String() }

// WaitOutput waits until the run has written text (stdout or stderr), the
// sign that it reached a point: it fails the test, saying what it waited
// for, when p ends first or within passes.
func (h *Harness) WaitOutput(p *Proc, text string, within time.Duration) {
	h.T.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(p.Output(), text) {
		select {
		case <-p.Done():
			h.T.Fatalf("boxswap ended before writing %q: %s", text, p.Wait())
		default:
		}
		if time.Now().After(deadline) {
			_ = p.Cmd.Process.Kill()
			h.T.Fatalf("boxswap did not write %q within %s: %s", text, within, p.Wait())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Running is the step the view records running, "" when none is.
func (v View) Running() string {
	if v.Transition == nil {
		return ""
	}
	for _, s := range v.Transition.Steps {
		if s.Status == state.StepRunning {
			return s.ID
		}
	}
	return ""
}
