package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"boxswap/boxes"
)

// maxMessage is how long a step's own message may be: the CLI's line is
// "boxswap: " and "STEP on BOX: " before it in at most 200 characters
// (a step ID runs to about 40), so that nothing of it is cut.
const maxMessage = 200 - len("boxswap: ") - len("upgrade-dev/apt-full-upgrade/thermals: ")

// failure is how a box fails a step's command: the first `after` commands
// answer exit 0 with no output, then every command gets reply.
type failure struct {
	name  string
	reply reply
	cause string // what the message must say of the cause
}

func failures() []failure {
	var long strings.Builder
	for i := range 30 {
		fmt.Fprintf(&long, "E: Sub-process /usr/bin/dpkg returned an error code (1) while unpacking package number %d of %s\n", i, strings.Repeat("libpython3.13-stdlib ", 10))
	}
	return []failure{
		{"unreachable", reply{err: fmt.Errorf("thermals: ssh: %w: dial 198.18.0.3:22: connect: %w: is the box up, and does sshd listen on port 22?",
			boxes.ErrUnreachable, syscall.ECONNREFUSED)}, "refused the connection (sshd down?) while "},
		{"cut link", reply{err: fmt.Errorf("thermals: ssh: %w: connection lost while the command ran (no answer to 3 keepalives sent every 15s): check on the box whether the command ran before going on",
			boxes.ErrOutcomeUnknown)}, "stopped answering (connection lost) while "},
		{"exit with a long tail", reply{out: long.String(), errout: long.String(), exit: 100}, ""},
		{"overflowing stdout", reply{out: strings.Repeat("x", maxStdout+1)}, ""},
		{"unparsable answer", reply{out: "token=\nstarted=12 x\nwhat is this\nrc=zero\nunit \x01\n", exit: 0}, ""},
	}
}

// Issue 20, item 3: a step's failure is one line for the operator — the
// box, what boxswap was doing in words, the cause — never the remote
// command (a status probe's shell script, a package list, pip's output),
// which goes to the step's record (Detail). Every kind's Check, Apply and
// Undo is failed at its first, second, third and fourth command, each way
// a box fails.
func TestFailureMessagesAreOneLineInWords(t *testing.T) {
	seen := map[string]int{}
	for _, f := range failures() {
		for after := range 4 {
			for name, s := range kindsOn("plain", "thurst", "thermals") {
				if f.name == "overflowing stdout" && after > 1 {
					continue // the same paths as after 0 and 1, 8 MiB each
				}
				for what, err := range failAt(s, f.reply, after) {
					if err == nil {
						continue
					}
					seen[f.name]++
					checkMessage(t, fmt.Sprintf("%s %s, %s after %d", name, what, f.name, after), err, f)
				}
			}
		}
	}
	for _, f := range failures() {
		if seen[f.name] < 40 {
			t.Errorf("%s: only %d failures seen", f.name, seen[f.name])
		}
	}
}

// failAt runs s's Check, Apply and Undo against boxes that fail every
// command from the after-th one on, and returns their errors.
func failAt(s Step, r reply, after int) map[string]error {
	errs := map[string]error{}
	for what, call := range map[string]func(context.Context, *Env) error{
		"check": func(ctx context.Context, env *Env) error { _, _, err := s.Check(ctx, env); return err },
		"apply": s.Apply,
		"undo":  s.Undo,
	} {
		n := 0
		script := func(string) reply {
			n++
			if n <= after {
				return reply{}
			}
			return r
		}
		runner := &fakeRunner{script: script}
		te := newEnv(map[string]boxes.Runner{"thurst": runner, "thermals": runner})
		te.facts.Set("thurst/head", strings.Repeat("ab", 20))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs[what] = call(ctx, te.Env)
		cancel()
	}
	return errs
}

// remoteScript are bits of the shell scripts steps send: none may reach
// the operator's line.
var remoteScript = []string{"$(", "2>/dev/null", "; then", "\"$d", "|| true", "&&", "set -e", "printf '"}

func checkMessage(t *testing.T, what string, err error, f failure) {
	t.Helper()
	msg := err.Error()
	switch {
	case strings.ContainsAny(msg, "\n\r"):
		t.Errorf("%s: message has a line break: %q", what, msg)
	case utf8.RuneCountInString(msg) > maxMessage:
		t.Errorf("%s: message of %d characters (at most %d): %s", what, utf8.RuneCountInString(msg), maxMessage, msg)
	case !strings.Contains(msg, "thurst") && !strings.Contains(msg, "thermals"):
		t.Errorf("%s: message names no box: %s", what, msg)
	case strings.Contains(msg, "running a remote command"):
		t.Errorf("%s: a command without a label in words: %s", what, msg)
	}
	for _, bit := range remoteScript {
		if strings.Contains(msg, bit) {
			t.Errorf("%s: message quotes a remote script (%q): %s", what, bit, msg)
		}
	}
	var re *RemoteError
	var ee *ExitError
	switch {
	case f.cause != "" && errors.Is(err, f.reply.err):
		if errors.As(err, &re) && !strings.Contains(msg, f.cause) {
			t.Errorf("%s: message does not say %q: %s", what, f.cause, msg)
		}
		if !strings.Contains(Detail(err), "dial 198.18.0.3:22") && !strings.Contains(Detail(err), "keepalives") {
			t.Errorf("%s: the record loses the transport's words: %s", what, Detail(err))
		}
	case errors.As(err, &ee):
		if !strings.Contains(msg, fmt.Sprintf("exit %d", ee.Code)) {
			t.Errorf("%s: message does not give the exit status: %s", what, msg)
		}
		if ee.Cmd != "" && !strings.Contains(Detail(err), ee.Cmd) {
			t.Errorf("%s: the record loses the command: %s", what, Detail(err))
		}
	}
}

// The status probe of a detached command, cut by a lost link (seen on
// thermals during apt-get full-upgrade, issue 20): its message says what
// boxswap was doing, not the 690 characters of the probe's script, which
// the record keeps.
func TestDetachedProbeLostLinkInWords(t *testing.T) {
	s := AptUpgrade("upgrade-dev/apt-full-upgrade", "thermals", 13, "trixie", nil)
	d := s.(*txStep).d
	refused := fmt.Errorf("thermals: ssh: %w: dial 198.18.0.3:22: connect: %w", boxes.ErrUnreachable, syscall.ECONNREFUSED)
	f := &fakeRunner{script: func(cmd string) reply {
		if cmd == d.queryCmd() {
			return reply{err: refused}
		}
		return reply{out: "VERSION_ID=12\n"}
	}}
	te := newEnv(map[string]boxes.Runner{"thermals": f})
	err := s.Apply(context.Background(), te.Env)
	want := "thermals refused the connection (sshd down?) while checking on the detached apt-get full-upgrade"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	if !errors.Is(err, boxes.ErrUnreachable) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%v does not wrap the transport's error", err)
	}
	if d := Detail(err); !strings.HasPrefix(d, want+" (thermals: ssh: box unreachable: dial") || !strings.HasSuffix(d, "; command: "+s.(*txStep).d.queryCmd()) {
		t.Errorf("Detail = %q, want the transport's words and the probe's script", d)
	}
}
