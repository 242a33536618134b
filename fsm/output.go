package fsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"boxswap/boxes"
)

// tailLines is how many lines of output a step record keeps; the full
// output goes to the attempt's log file.
const tailLines = 20

// StepInfo names a step as a Reporter shows it.
type StepInfo struct {
	Index, Total int // 1-based position in the transition, and its length
	ID           string
	Box          string // "" for the operator (a gate)
	Text         string
	Undo         bool // the step is being undone (rollback)
}

// Step outcomes given to Reporter.StepDone.
const (
	OutcomeDone    = "done"    // applied, or undone for a rollback
	OutcomeSkipped = "skipped" // its check said it was already done
	OutcomeFailed  = "failed"  // it returned an error
	OutcomeUnknown = "unknown" // the connection dropped or it was interrupted: resume checks it
	// Nothing reached the box (so nothing ran): the connection was refused,
	// or the box did not answer; resume tries again.
	OutcomeRefused     = "refused"
	OutcomeUnreachable = "unreachable"
	// OutcomeStopped: the operator's stop ended the step's wait.
	OutcomeStopped = "stopped"
)

// outcomeOf names how a step that returned err ended, for the operator.
func outcomeOf(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return OutcomeDone
	case errors.Is(err, ErrStopped):
		return OutcomeStopped
	case errors.Is(err, boxes.ErrOutcomeUnknown) || ctx.Err() != nil:
		return OutcomeUnknown
	case errors.Is(err, boxes.ErrUnreachable) && errors.Is(err, syscall.ECONNREFUSED):
		return OutcomeRefused
	case errors.Is(err, boxes.ErrUnreachable):
		return OutcomeUnreachable
	}
	return OutcomeFailed
}

// Reporter shows the operator what the engine does, as it happens. The
// engine calls it from the goroutine running the transition, except Line
// and Partial, which a step may call from the goroutines copying remote
// output: implementations must be safe for concurrent use. A Reporter
// must never block the engine for long: it writes to a terminal or a pipe.
type Reporter interface {
	// StepStart: a step (or its undo) begins.
	StepStart(s StepInfo)
	// StepDone: it ended, with an Outcome*, after took; err is nil unless failed.
	StepDone(s StepInfo, outcome string, took time.Duration, err error)
	// Line is one complete line of a box's remote output.
	Line(box, text string)
	// Partial is a line a box is still rewriting (a progress bar drawn
	// with \r): the latest text replaces the previous one.
	Partial(box, text string)
	// Progress says what a long step waits for and for how long; it
	// replaces the previous progress of the same step.
	Progress(text string)
	// Say is a line from the engine itself (start, end, a retry, a warning).
	Say(text string)
}

// NewPlain returns the Reporter for a pipe, a file, NO_COLOR or --plain:
// one line per event, each with the time of day and the box name, no
// escape codes. now, when nil, is time.Now (tests pass a fixed clock).
func NewPlain(w io.Writer, now func() time.Time) Reporter {
	if now == nil {
		now = time.Now
	}
	return &plain{w: w, now: now}
}

type plain struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

func (p *plain) printf(format string, args ...any) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s "+format+"\n", append([]any{p.now().Format("15:04:05")}, args...)...)
}

func (p *plain) StepStart(s StepInfo) {
	verb := ""
	if s.Undo {
		verb = "undo "
	}
	p.printf("%s[%d/%d] %s %s", verb, s.Index, s.Total, boxLabel(s.Box), s.Text)
}

func (p *plain) StepDone(s StepInfo, outcome string, took time.Duration, err error) {
	if err != nil {
		p.printf("[%d/%d] %s %s after %s: %v", s.Index, s.Total, boxLabel(s.Box), outcome, Round(took), err)
		return
	}
	p.printf("[%d/%d] %s %s in %s", s.Index, s.Total, boxLabel(s.Box), outcome, Round(took))
}

func (p *plain) Line(box, text string)  { p.printf("%s| %s", box, text) }
func (p *plain) Partial(string, string) {} // the complete line follows
func (p *plain) Progress(text string)   { p.printf("    %s", text) }
func (p *plain) Say(text string)        { p.printf("%s", text) }

// Round shortens a duration for people: milliseconds under a second,
// tenths under a minute, seconds above.
func Round(d time.Duration) time.Duration {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < time.Minute:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// output fans one step's remote output out to the Reporter (line by line),
// to the attempt's log file, and into a bounded tail kept for the state.
// Memory stays bounded however much a box prints.
type output struct {
	mu   sync.Mutex
	rep  Reporter
	log  io.Writer
	tail []string
	part map[string][]byte // per box: a line not yet ended
}

func newOutput(rep Reporter, log io.Writer) *output {
	return &output{rep: rep, log: log, part: map[string][]byte{}}
}

// writer returns the writer steps use for box.
func (o *output) writer(box string) io.Writer { return boxWriter{o, box} }

type boxWriter struct {
	o   *output
	box string
}

func (w boxWriter) Write(p []byte) (int, error) {
	w.o.mu.Lock()
	defer w.o.mu.Unlock()
	buf := append(w.o.part[w.box], p...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		w.o.line(w.box, lastRedraw(string(buf[:i])))
		buf = buf[i+1:]
	}
	// A line longer than 64 KiB is cut rather than held forever.
	if len(buf) > 64<<10 {
		w.o.line(w.box, lastRedraw(string(buf)))
		buf = nil
	}
	if bytes.IndexByte(buf, '\r') >= 0 {
		if s := lastRedraw(string(buf)); s != "" {
			w.o.rep.Partial(w.box, clean(s))
		}
	}
	w.o.part[w.box] = append([]byte(nil), buf...)
	return len(p), nil
}

// lastRedraw is what a terminal would show of a line redrawn with \r
// (dnf's download progress): the text after the last \r that is not empty.
func lastRedraw(s string) string {
	s = strings.TrimRight(s, "\r")
	if i := strings.LastIndexByte(s, '\r'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// ansiSeq matches the escape sequences a remote command may print (colors,
// cursor moves): they are removed so that they can neither garble the
// operator's terminal nor reach a plain log.
var ansiSeq = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-_])`)

// clean removes escape sequences and turns other control characters but
// tabs into spaces.
func clean(s string) string {
	s = ansiSeq.ReplaceAllString(s, "")
	return strings.Map(func(r rune) rune {
		if r != '\t' && (r < 0x20 || r == 0x7f) {
			return ' '
		}
		return r
	}, s)
}

func (o *output) line(box, s string) {
	s = clean(s)
	o.rep.Line(box, s)
	if o.log != nil {
		fmt.Fprintf(o.log, "%s %s| %s\n", time.Now().Format(time.RFC3339), box, s)
	}
	o.tail = append(o.tail, box+": "+s)
	if len(o.tail) > tailLines {
		o.tail = append(o.tail[:0], o.tail[len(o.tail)-tailLines:]...)
	}
}

// takeTail flushes unended lines and returns and resets the tail.
func (o *output) takeTail() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	defer o.flush()
	for box, b := range o.part {
		if len(b) > 0 {
			o.line(box, lastRedraw(string(b)))
		}
		delete(o.part, box)
	}
	t := o.tail
	o.tail = nil
	return t
}

// say prints an engine line (not remote output) to the operator and the log.
func (o *output) say(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	o.rep.Say(msg)
	o.logf("%s", msg)
}

func (o *output) logf(format string, args ...any) {
	if o.log == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.log, "%s %s\n", time.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

func (o *output) stepStart(s StepInfo) {
	o.rep.StepStart(s)
	verb := ""
	if s.Undo {
		verb = "undo "
	}
	o.logf("%s[%d/%d] %s %s", verb, s.Index, s.Total, boxLabel(s.Box), s.Text)
}

func (o *output) stepDone(s StepInfo, outcome string, took time.Duration, err error) {
	o.rep.StepDone(s, outcome, took, err)
	if err != nil {
		o.logf("[%d/%d] %s after %s: %v", s.Index, s.Total, outcome, Round(took), err)
	} else {
		o.logf("[%d/%d] %s in %s", s.Index, s.Total, outcome, Round(took))
	}
}

func (o *output) progress(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	o.rep.Progress(msg)
	o.logf("    %s", msg)
}

// flush pushes the log file's buffer out, so the log is whole at each
// step's end (and a crash loses at most the running step's last lines).
func (o *output) flush() {
	if f, ok := o.log.(interface{ Flush() error }); ok {
		_ = f.Flush() // the log is a copy; the state holds the record
	}
}

func boxLabel(box string) string {
	if box == "" {
		return "operator"
	}
	return box
}
