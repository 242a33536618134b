package steps

import (
	"context"
	"errors"
	"strings"
	"testing"

	"boxswap/boxes"
)

func TestRunExitError(t *testing.T) {
	f := &fakeRunner{script: func(string) reply {
		return reply{out: "starting\n", errout: "Job for nbhosting-addr.service failed.\n", exit: 1}
	}}
	te := newEnv(map[string]boxes.Runner{"thermals": f})
	_, err := run(context.Background(), te.Env, "thermals", "enabling nbhosting-addr", "systemctl enable --now nbhosting-addr", false)
	want := "thermals: enabling nbhosting-addr: exit 1: Job for nbhosting-addr.service failed."
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	// The command is the record's, not the operator's line.
	if d := Detail(err); d != want+"; command: systemctl enable --now nbhosting-addr" {
		t.Errorf("Detail = %q", d)
	}
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 1 || len(ee.Tail) != 2 {
		t.Fatalf("ExitError = %#v", ee)
	}
	if got := te.out["thermals"].String(); got != "starting\nJob for nbhosting-addr.service failed.\n" {
		t.Errorf("output = %q", got)
	}
}

func TestRunRunnerErrorsKeepTheirKind(t *testing.T) {
	for _, sentinel := range []error{boxes.ErrOutcomeUnknown, boxes.ErrUnreachable} {
		f := &fakeRunner{script: func(string) reply { return reply{err: errors.Join(sentinel, errors.New("eof"))} }}
		te := newEnv(map[string]boxes.Runner{"thurst": f})
		_, err := run(context.Background(), te.Env, "thurst", "checking that it answers", "true", false)
		if !errors.Is(err, sentinel) || !strings.HasPrefix(err.Error(), "thurst ") || !strings.HasSuffix(err.Error(), " while checking that it answers") {
			t.Errorf("err = %v, want it to wrap %v behind the box and what boxswap was doing", err, sentinel)
		}
		if d := Detail(err); !strings.Contains(d, "eof") || !strings.HasSuffix(d, "; command: true") {
			t.Errorf("Detail = %q, want the runner's words and the command", d)
		}
		var ee *ExitError
		if errors.As(err, &ee) {
			t.Errorf("a runner error is not an exit error: %v", err)
		}
	}
}

func TestRunUnknownBox(t *testing.T) {
	te := newEnv(nil)
	if _, err := run(context.Background(), te.Env, "nowhere", "", "true", false); err == nil || !strings.HasPrefix(err.Error(), "nowhere: ") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunQuietWithholdsStdout(t *testing.T) {
	f := &fakeRunner{script: func(string) reply { return reply{out: "SECRET_KEY = 'x'\n", errout: "warning\n"} }}
	te := newEnv(map[string]boxes.Runner{"b": f})
	res, err := run(context.Background(), te.Env, "b", "", "cat -- f", true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "SECRET_KEY = 'x'\n" {
		t.Errorf("stdout = %q", res.Stdout)
	}
	if got := te.out["b"].String(); got != "warning\n" || strings.Contains(strings.Join(res.Tail, ""), "SECRET") {
		t.Errorf("output %q / tail %q leaks stdout", got, res.Tail)
	}
}

func TestRunStdoutOverflowIsAnError(t *testing.T) {
	big := strings.Repeat("x", maxStdout/2)
	f := &fakeRunner{script: func(string) reply { return reply{out: big + big + "y"} }}
	te := newEnv(map[string]boxes.Runner{"b": f})
	te.Output = nil
	if _, err := run(context.Background(), te.Env, "b", "", "cat big", false); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("err = %v", err)
	}
}

func TestTailOf(t *testing.T) {
	got := tailOf("a\n\n  b  \r\nc\n", 2)
	if !equalStrings(got, []string{"b", "c"}) {
		t.Errorf("tail = %q", got)
	}
	if l := tailOf(strings.Repeat("z", 1000), 1)[0]; len(l) > maxLineShow+4 {
		t.Errorf("long line kept whole: %d", len(l))
	}
}

func TestStreamKeepsNoStdoutAndNeverOverflows(t *testing.T) {
	big := strings.Repeat("downloading x\n", maxStdout/7)
	f := &fakeRunner{script: func(string) reply { return reply{out: big, errout: "done\n"} }}
	te := newEnv(map[string]boxes.Runner{"b": f})
	te.Output = nil
	res, err := stream(context.Background(), te.Env, "b", "", "dnf upgrade --refresh -y", false)
	if err != nil {
		t.Fatalf("err = %v", err)
	}
	if res.Stdout != "" || lastLine(res.Tail) != "done" || len(res.Tail) != tailLines {
		t.Errorf("stdout kept %d bytes; tail %q", len(res.Stdout), res.Tail)
	}
	// A command whose stdout is parsed still fails rather than be cut.
	if _, err := run(context.Background(), te.Env, "b", "", "pip3 freeze", false); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("parsed overflow: err = %v", err)
	}
}

func TestChattyStepsDoNotFailOnOutput(t *testing.T) {
	big := strings.Repeat("y", maxStdout+1)
	f := &fakeRunner{script: func(string) reply { return reply{out: big} }}
	te := newEnv(map[string]boxes.Runner{"b": f})
	te.Output = nil
	for _, s := range []Step{
		AptUpdate("au", "b", 0),
		Command("c", "b", "install", "./install.sh", "", ""),
	} {
		if err := s.Apply(context.Background(), te.Env); err != nil {
			t.Errorf("%s: %v", s.ID(), err)
		}
	}
}
