package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"boxswap/boxes"
	"boxswap/boxes/sshtest"
	"boxswap/fsm"
	"boxswap/state"
	"boxswap/steps"
)

// noisyBox answers "true" and fails every other command with a long,
// multi-line error output, as a package manager does.
func noisyBox(cmd string, stdout, stderr io.Writer) (int, bool) {
	if cmd == "true" {
		return 0, false
	}
	for i := range 30 {
		fmt.Fprintf(stderr, "E: dpkg was interrupted while configuring package %d of %s\n", i, strings.Repeat("python3-notebook ", 15))
	}
	return 100, true
}

// Issue 20, item 3: a failed next prints two lines on stderr, the error
// and the hint, each at most 200 characters: the step, the box, what
// boxswap was doing and why, never a command the box was sent nor its
// whole output, which boxswap log shows.
func TestFailedNextPrintsTwoShortLines(t *testing.T) {
	p := newPair(t, sshtest.Handler(noisyBox))
	cfg := p.config(t, "/nbhosting", "/x/sitesettings.py")
	db := filepath.Join(p.dir, "boxswap.db")
	code, stdout, stderr := runCLI(t, "-c", cfg, "--state", db, "--yes", "next")
	if code == exitOK {
		t.Fatalf("next succeeded against failing boxes:\n%s", stdout)
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "boxswap: upgrade-dev/") || !strings.HasPrefix(lines[1], "hint: ") {
		t.Fatalf("stderr is not an error line and a hint line:\n%s", stderr)
	}
	for _, l := range lines {
		if n := utf8.RuneCountInString(l); n > maxScreenLine {
			t.Errorf("a line of %d characters: %s", n, l)
		}
	}
	if !strings.Contains(lines[0], "thurst") || !strings.Contains(lines[0], "reading whether") || !strings.Contains(lines[0], "E: dpkg was interrupted") {
		t.Errorf("the error line does not name the box, what boxswap was doing and why: %s", lines[0])
	}
	for _, s := range []*sshtest.Server{p.thurst, p.thermals} {
		for _, c := range s.Commands() {
			if len(c) > 8 && strings.Contains(stderr, c) {
				t.Errorf("stderr quotes the command %q:\n%s", c, stderr)
			}
		}
	}
	// The rest is the record's: boxswap log shows the step's output.
	_, log, _ := runCLI(t, "-c", cfg, "--state", db, "log")
	if !strings.Contains(log, "last output of upgrade-dev/") || !strings.Contains(log, "E: dpkg was interrupted while configuring package 29 of") {
		t.Errorf("boxswap log does not show the failed step's output:\n%s", log)
	}
	st, err := state.Open(db).Last()
	if err != nil || st == nil || !strings.Contains(st.Error, "; command: systemctl is-") && !strings.Contains(st.Error, "E: dpkg was interrupted") {
		t.Errorf("the attempt's record lacks the detail: %+v %v", st, err)
	}
}

// What report prints of a step's failure, for each way a box fails it: two
// lines of at most 200 characters, the step, the box and the cause named,
// the command and the transport's words left to the record (--json's
// detail).
func TestReportOfStepFailures(t *testing.T) {
	probe := "d='/var/lib/boxswap/run/boxswap-upgrade-dev-apt-full-upgrade'; tok=$(cat \"$d/token\" 2>/dev/null); pid=; boot=; " + strings.Repeat("x", 600)
	refused := fmt.Errorf("thermals: ssh: %w: dial 198.18.0.3:22: connect: %w", boxes.ErrUnreachable, syscall.ECONNREFUSED)
	lost := fmt.Errorf("thermals: ssh: %w: connection lost while the command ran (EOF): check on the box whether the command ran before going on", boxes.ErrOutcomeUnknown)
	tail := []string{strings.Repeat("E: Sub-process /usr/bin/dpkg returned an error code (1) ", 7)}
	for name, err := range map[string]error{
		"refused":   &steps.RemoteError{Box: "thermals", Doing: "checking on the detached apt-get full-upgrade", Cmd: probe, Err: refused},
		"link lost": &steps.RemoteError{Box: "thermals", Doing: "checking on the detached apt-get full-upgrade", Cmd: probe, Err: lost},
		"exit":      &steps.ExitError{Box: "thermals", Command: "apt-get full-upgrade", Cmd: probe, Code: 100, Tail: tail},
		"joined":    errors.Join(&steps.ExitError{Box: "thermals", Command: "apt-get full-upgrade", Cmd: probe, Code: 100, Tail: tail}, errors.New(strings.Repeat("and then ", 40))),
	} {
		err = &fsm.StepError{Step: "upgrade-dev/apt-full-upgrade", Box: "thermals", Err: err}
		var out, errb strings.Builder
		report(err, true, &out, &errb)
		lines := strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[1], "hint: ") {
			t.Errorf("%s: not two lines:\n%s", name, errb.String())
			continue
		}
		for _, l := range lines {
			if utf8.RuneCountInString(l) > maxScreenLine || strings.Contains(l, "$(") || strings.Contains(l, "boxswap/run") {
				t.Errorf("%s: %q", name, l)
			}
		}
		if !strings.HasPrefix(lines[0], "boxswap: upgrade-dev/apt-full-upgrade: thermals") {
			t.Errorf("%s: the step and the box are not named first: %s", name, lines[0])
		}
		if !strings.Contains(out.String(), `"detail": `) || !strings.Contains(out.String(), "boxswap/run") {
			t.Errorf("%s: --json has no detail with the command:\n%s", name, out.String())
		}
	}
}

// Every hint classify gives fits its line.
func TestHintsFitOneLine(t *testing.T) {
	for _, err := range []error{
		&usageError{"x"}, fsm.ErrNoSuchStep, &boxes.LoadError{}, &state.LockedError{OtherHost: true}, state.ErrLockLost, state.ErrLocked,
		state.ErrNoState, state.ErrNoAnswer, state.ErrNotAFile, state.ErrUnusable, state.ErrUnsafeDir, fsm.ErrUnknownPhase,
		steps.ErrNotApproved, steps.ErrRefused, steps.ErrPrecondition, steps.ErrHalted, fsm.ErrStopped,
		fmt.Errorf("%w: %w", boxes.ErrUnreachable, syscall.ECONNREFUSED), boxes.ErrUnreachable, boxes.ErrOutcomeUnknown,
		fsm.ErrPending, fsm.ErrNothingToResume, fsm.ErrCycleDone, &fsm.PlanChangedError{}, fsm.ErrConfigChanged, fsm.ErrRollbackStopped,
		errors.New("anything else"),
	} {
		_, kind, hint := classify(err)
		if l := "hint: " + hint; utf8.RuneCountInString(l) > maxScreenLine || strings.Contains(hint, "\n") {
			t.Errorf("%s: a hint of %d characters: %s", kind, utf8.RuneCountInString(l), hint)
		}
	}
}
