package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"boxswap/boxes/sshtest"
	"boxswap/state"
)

// readOnly lets only harmless commands reach this machine's shell: the
// boxes of these tests are this machine. os-release says Fedora 27, so a
// transition stops at its first release check, before changing anything.
func readOnly(cmd string, stdout, stderr io.Writer) (int, bool) {
	switch cmd {
	case "true":
		return 0, false
	case "cat /etc/os-release":
		fmt.Fprint(stdout, "NAME=Fedora\nVERSION_ID=27\n")
		return 0, true
	}
	fmt.Fprintf(stderr, "test box: refusing %q\n", cmd)
	return 99, true
}

// next --yes at dev-upgraded: the gate is approved and recorded, the
// preflight reaches both boxes, and the release check stops the transition
// (thermals is not on f29); the summary and the state say so.
func TestNextStopsAtFailedStep(t *testing.T) {
	p := newPair(t, sshtest.Handler(readOnly))
	cfg := p.config(t, "/nbhosting", "/x/sitesettings.py")
	db := filepath.Join(p.dir, "boxswap.db")
	if err := state.Open(db).Init(state.Meta{Phase: "dev-upgraded", Cycle: 1, From: 27, To: 29}); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runCLI(t, "-c", cfg, "--yes", "next")
	if code != exitRefused {
		t.Fatalf("next: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"approved with --yes by " + state.Me(),
		"redirect (attempt 1): failed\n",
		"phase is still dev-upgraded\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	for _, line := range []string{"done +redirect/approve +operator +1", "done +redirect/preflight/reach/thurst +thurst +1", "failed +redirect/preflight/release/thermals +thermals +1", "pending +redirect/take-address/thermals +thermals +0"} {
		if !regexpFind(line, stdout) {
			t.Errorf("summary lacks %q:\n%s", line, stdout)
		}
	}
	if !strings.Contains(stderr, "thermals") || !strings.Contains(stderr, "hint: ") {
		t.Errorf("stderr does not name the box and a hint:\n%s", stderr)
	}
	for _, s := range []*sshtest.Server{p.thurst, p.thermals} {
		for _, c := range s.Commands() {
			if c != "true" && c != "cat /etc/os-release" {
				t.Errorf("a box was asked to run %q", c)
			}
		}
	}
	if _, err := os.Stat(state.LockPath(db)); !os.IsNotExist(err) {
		t.Errorf("the lock file is left behind: %v", err)
	}

	code, stdout, _ = runCLI(t, "-c", cfg, "where", "--json")
	var v struct {
		Phase      string
		Transition struct {
			Event, Status string
			FailedStep    string `json:"failed_step"`
		}
	}
	if err := json.Unmarshal([]byte(stdout), &v); err != nil || code != 0 {
		t.Fatalf("where: %d %v\n%s", code, err, stdout)
	}
	if v.Phase != "dev-upgraded" || v.Transition.Event != "redirect" || v.Transition.Status != "failed" || v.Transition.FailedStep != "redirect/preflight/release/thermals" {
		t.Errorf("where: %+v", v)
	}

	code, stdout, _ = runCLI(t, "-c", cfg, "log", "--json")
	var l logJSON
	if err := json.Unmarshal([]byte(stdout), &l); err != nil || code != 0 {
		t.Fatalf("log: %d %v\n%s", code, err, stdout)
	}
	if len(l.Approvals) != 1 || l.Approvals[0].Gate != "redirect/approve" || l.Approvals[0].Who != state.Me() {
		t.Errorf("approvals: %+v", l.Approvals)
	}
	if len(l.Attempts) != 1 || l.Attempts[0].Command != "next" {
		t.Errorf("attempts: %+v", l.Attempts)
	}

	// plan, online, checks the same transition: the gate and the reach
	// steps are done, the release check is not; nothing is written. The
	// test boxes refuse the other checks' commands, so plan says it could
	// not check everything.
	code, stdout, stderr = runCLI(t, "-c", cfg, "plan", "--json")
	if code != exitFailure || !strings.Contains(stderr, "checks could not run") {
		t.Fatalf("plan: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var pl planJSON
	if err := json.Unmarshal([]byte(stdout), &pl); err != nil {
		t.Fatal(err)
	}
	if pl.Error == nil || pl.Error.Code != exitFailure {
		t.Errorf("plan: error member %+v", pl.Error)
	}
	if pl.Pending == nil || pl.Pending.Status != "failed" {
		t.Errorf("plan: pending %+v", pl.Pending)
	}
	checks := map[string]*planCheck{}
	for _, s := range pl.Steps {
		checks[s.ID] = s.Check
	}
	if c := checks["redirect/approve"]; c == nil || !c.Done || !strings.Contains(c.Why, state.Me()) {
		t.Errorf("gate check: %+v", c)
	}
	if c := checks["redirect/preflight/reach/thermals"]; c == nil || !c.Done {
		t.Errorf("reach check: %+v", c)
	}
	if c := checks["redirect/preflight/release/thermals"]; c == nil || c.Done {
		t.Errorf("release check: %+v", c)
	}
	after, err := state.Open(db).Attempts()
	if err != nil || len(after) != 1 || after[0].Status != "failed" {
		t.Errorf("plan changed the state: %+v %v", after, err)
	}
}

func regexpFind(pattern, s string) bool {
	return regexp.MustCompile(pattern).MatchString(s)
}

// notifyWriter collects what is written and closes seen once it holds want.
type notifyWriter struct {
	mu   sync.Mutex
	b    strings.Builder
	want string
	seen chan struct{}
	once sync.Once
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if strings.Contains(w.b.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *notifyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// A first SIGINT while a step runs lets the step finish, then stops before
// the next one: the attempt is interrupted, exit 130, resume goes on.
func TestFirstSignalStopsBetweenSteps(t *testing.T) {
	stderr := &notifyWriter{want: "stopping at the next safe point", seen: make(chan struct{})}
	var once sync.Once
	interrupt := func(cmd string, stdout, errw io.Writer) (int, bool) {
		if cmd != "true" {
			return readOnly(cmd, stdout, errw)
		}
		// The operator presses Ctrl-C while thurst's first step runs.
		once.Do(func() {
			if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
				t.Error(err)
			}
			select {
			case <-stderr.seen:
			case <-time.After(time.Minute):
				t.Error("boxswap did not acknowledge SIGINT")
			}
		})
		return 0, true
	}
	p := newPair(t, sshtest.Handler(interrupt))
	cfg := p.config(t, "/nbhosting", "/x/sitesettings.py")
	db := filepath.Join(p.dir, "boxswap.db")
	if err := state.Open(db).Init(state.Meta{Phase: "dev-upgraded", Cycle: 1, From: 27, To: 29}); err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	code := run(context.Background(), []string{"-c", cfg, "--yes", "next"}, strings.NewReader(""), &stdout, stderr)
	if code != exitInterrupted {
		t.Fatalf("next: exit %d, want %d\n%s\n%s", code, exitInterrupted, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, line := range []string{
		`redirect \(attempt 1\): interrupted`,
		`done +redirect/preflight/reach/thurst +thurst +1`,
		`pending +redirect/preflight/reach/thermals +thermals +0`,
		`stopped at redirect/preflight/reach/thermals; phase is still dev-upgraded; boxswap resume goes on`,
	} {
		if !regexpFind(line, out) {
			t.Errorf("stdout lacks %q:\n%s", line, out)
		}
	}
	if got := p.thermals.Commands(); len(got) != 0 {
		t.Errorf("thermals ran %q after the stop", got)
	}
	if !strings.Contains(stderr.String(), "hint: boxswap where shows where it stopped; boxswap resume goes on") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}
