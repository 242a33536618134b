package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"boxswap/boxes"
	"boxswap/internal/text"
)

// Bounds on what a step keeps of a command's output: the tail names the
// failure in errors. Only commands whose stdout is parsed (os-release,
// rsync stats, pip freeze, the settings file) keep it, and one printing
// more than maxStdout is an error, never a silently truncated parse; the
// others (dnf, install.sh, rsync, hooks) stream through with only the tail
// kept, however much they print.
const (
	tailLines   = 20
	tailBytes   = 16 << 10
	maxStdout   = 8 << 20
	maxLineShow = text.MaxLineShow
	// shortLine is how much of the output's last line an operator's
	// message quotes (its middle goes first); the record keeps maxLineShow.
	shortLine = 60
)

// ExitError is returned when a remote command ran to completion with a
// non-zero exit status. The engine records Code as the step's exit code.
// Its message is for the operator: the box, what boxswap was doing in
// words, the status and the output's last line, cut short; Detail adds the
// whole line and the command, for the step's record.
type ExitError struct {
	Box     string
	Command string // what boxswap was doing, in words: "reading /etc/os-release"
	Cmd     string // the command line (the record's, never the operator's line)
	Code    int
	Tail    []string // last lines of stdout and stderr, interleaved
}

func (e *ExitError) Error() string { return e.message(shortLine) }

// Detail is Error with the output's whole last line and the command.
func (e *ExitError) Detail() string {
	msg := e.message(maxLineShow)
	if e.Cmd != "" {
		msg += CommandMark + e.Cmd
	}
	return msg
}

// CommandMark starts the remote command in a record's error (Detail):
// what a short view of the record cuts at.
const CommandMark = "; command: "

func (e *ExitError) message(width int) string {
	msg := fmt.Sprintf("%s: %s: exit %d", e.Box, e.Command, e.Code)
	if last := lastLine(e.Tail); last != "" {
		msg += ": " + text.OneLine(last, width)
	}
	return msg
}

// RemoteError is a remote command that did not report an exit status: the
// box could not be reached (it wraps boxes.ErrUnreachable), the link
// dropped while it ran (boxes.ErrOutcomeUnknown), or its output could not
// be kept. Its message names the box, the cause in words and what boxswap
// was doing: "thermals refused the connection (sshd down?) while checking
// on the detached apt-get full-upgrade"; Detail adds the transport's own
// words and the command, for the step's record.
type RemoteError struct {
	Box   string
	Doing string // in words: "checking on the detached apt-get full-upgrade"
	Cmd   string // the command line, for the record
	Err   error
}

func (e *RemoteError) Error() string {
	if c := boxes.Cause(e.Err); c != "" {
		return e.Box + " " + c + " while " + e.Doing
	}
	return e.Box + ": " + e.Doing + ": " + e.Err.Error()
}

func (e *RemoteError) Unwrap() error { return e.Err }

// Detail is Error with the error's own text and the command.
func (e *RemoteError) Detail() string {
	msg := e.Error()
	if boxes.Cause(e.Err) != "" {
		msg += " (" + e.Err.Error() + ")"
	}
	if e.Cmd != "" {
		msg += CommandMark + e.Cmd
	}
	return msg
}

// detailed is an error whose record keeps more than the operator's line:
// the whole list, the status output, the advice that does not fit.
type detailed struct {
	err  error
	more string
}

func (e *detailed) Error() string  { return e.err.Error() }
func (e *detailed) Unwrap() error  { return e.err }
func (e *detailed) Detail() string { return Detail(e.err) + " [" + e.more + "]" }

// withDetail is err with more kept for the record (Detail).
func withDetail(err error, more string) error { return &detailed{err: err, more: more} }

// Detail is err's message for the step's record and boxswap log: the
// message with what an ExitError or a RemoteError in it leaves out of the
// operator's line (the command, the transport's words, the output's whole
// last line) put back.
func Detail(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	var d interface {
		error
		Detail() string
	}
	if errors.As(err, &d) {
		msg = strings.Replace(msg, d.Error(), d.Detail(), 1)
	}
	return msg
}

// result is what a finished remote command left.
type result struct {
	Exit   int
	Stdout string
	Tail   []string
}

// execute runs cmd on box, streaming stdout and stderr to env.Output(box)
// (stdout is withheld when quiet: the settings file holds secrets) while
// keeping stdout, for parsing, and a tail of both. err is non-nil only when
// the command did not report an exit status (Runner errors, wrapped
// unchanged so errors.Is finds boxes.ErrOutcomeUnknown / ErrUnreachable) or
// its stdout overflowed maxStdout; a non-zero exit is in result.Exit.
func execute(ctx context.Context, env *Env, box, label, cmd string, quiet bool) (result, error) {
	return exec1(ctx, env, box, label, cmd, quiet, true)
}

// exec1 is execute; keep says whether stdout is kept for parsing. Without
// it memory stays bounded (the tail) whatever the command prints.
func exec1(ctx context.Context, env *Env, box, label, cmd string, quiet, keep bool) (result, error) {
	if label == "" {
		label = "running a remote command" // never the command: it goes to the record
	}
	if env == nil || env.Boxes == nil {
		return result{}, fmt.Errorf("%s: %s: no way to reach boxes (internal error)", box, label)
	}
	r, err := env.Boxes(box)
	if err != nil {
		return result{}, fmt.Errorf("%s: %w", box, err)
	}
	var out io.Writer = io.Discard
	if env.Output != nil {
		if w := env.Output(box); w != nil {
			out = w
		}
	}
	c := &capture{out: out, keep: keep}
	stdout := &stdoutWriter{c: c, quiet: quiet}
	stderr := &stderrWriter{c: c}
	exit, err := r.Run(ctx, cmd, stdout, stderr)
	res := result{Exit: exit, Stdout: c.stdout.String(), Tail: c.lines()}
	if err != nil {
		return res, &RemoteError{Box: box, Doing: label, Cmd: cmd, Err: err}
	}
	if c.overflow {
		return res, &RemoteError{Box: box, Doing: label, Cmd: cmd,
			Err: fmt.Errorf("more than %d bytes of output; look at it on the box", maxStdout)}
	}
	return res, nil
}

// run is execute where a non-zero exit is an *ExitError.
func run(ctx context.Context, env *Env, box, label, cmd string, quiet bool) (result, error) {
	return run1(ctx, env, box, label, cmd, quiet, true)
}

// stream is run for a command whose stdout nobody parses (dnf, install.sh,
// rsync, hooks, mv): its output streams to env.Output and only the tail is
// kept, so a command printing gigabytes neither fails nor grows memory.
// result.Stdout is empty.
func stream(ctx context.Context, env *Env, box, label, cmd string, quiet bool) (result, error) {
	return run1(ctx, env, box, label, cmd, quiet, false)
}

func run1(ctx context.Context, env *Env, box, label, cmd string, quiet, keep bool) (result, error) {
	res, err := exec1(ctx, env, box, label, cmd, quiet, keep)
	if err != nil {
		return res, err
	}
	if res.Exit != 0 {
		if label == "" {
			label = "running a remote command"
		}
		return res, &ExitError{Box: box, Command: label, Cmd: cmd, Code: res.Exit, Tail: res.Tail}
	}
	return res, nil
}

// capture serialises the Runner's two writers (they may be called from
// different goroutines) into the output and the kept copies.
type capture struct {
	mu       sync.Mutex
	out      io.Writer
	keep     bool // stdout is kept (bounded) for parsing
	stdout   bytes.Buffer
	overflow bool
	tail     []byte
}

func (c *capture) keepTail(p []byte) {
	c.tail = append(c.tail, p...)
	if n := len(c.tail); n > tailBytes {
		c.tail = append(c.tail[:0], c.tail[n-tailBytes:]...)
	}
}

func (c *capture) lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return tailOf(string(c.tail), tailLines)
}

type stdoutWriter struct {
	c     *capture
	quiet bool
}

func (w *stdoutWriter) Write(p []byte) (int, error) {
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.keep:
	case c.stdout.Len()+len(p) > maxStdout:
		c.overflow = true
	default:
		c.stdout.Write(p)
	}
	if !w.quiet {
		c.keepTail(p)
		// A broken output must not fail the remote command.
		_, _ = c.out.Write(p)
	}
	return len(p), nil
}

type stderrWriter struct{ c *capture }

func (w *stderrWriter) Write(p []byte) (int, error) {
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keepTail(p)
	_, _ = c.out.Write(p)
	return len(p), nil
}

// tailOf returns the last n non-blank lines of s, each cut to a readable
// length (text.Tail).
func tailOf(s string, n int) []string { return text.Tail(s, n) }

func lastLine(lines []string) string { return text.LastLine(lines) }

// exitCode returns the exit status of an *ExitError in err, or -1.
func exitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return -1
}

// base holds what every kind shares.
type base struct {
	id   string
	desc Description
}

func (b *base) ID() string            { return b.id }
func (b *base) Describe() Description { return b.desc }

func progress(env *Env, format string, args ...any) {
	if env != nil && env.Progress != nil {
		env.Progress(format, args...)
	}
}

func force(env *Env, g Guard) bool {
	return env != nil && env.Force[g]
}

// facts returns env.Facts, or an error saying none are available.
func facts(env *Env) (Facts, error) {
	if env == nil || env.Facts == nil {
		return nil, errors.New("no fact store (internal error)")
	}
	return env.Facts, nil
}

func quote(s string) string { return boxes.Quote(s) }

// quoteAll quotes each word.
func quoteAll(words []string) string { return boxes.QuoteAll(words) }
