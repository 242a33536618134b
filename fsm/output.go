package fsm

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	"boxswap/internal/text"
	"boxswap/state"
	"boxswap/steps"
)

// tailLines is how many lines of output a step record keeps; the full
// output goes to the attempt's log file.
const tailLines = state.MaxTail

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
	o.logf("%s[%d/%d] %s %s", verb, s.Index, s.Total, steps.BoxLabel(s.Box), s.Text)
}

func (o *output) stepDone(s StepInfo, outcome Outcome, took time.Duration, err error) {
	o.rep.StepDone(s, outcome, took, err)
	if err != nil {
		o.logf("[%d/%d] %s after %s: %v", s.Index, s.Total, outcome, text.Round(took), err)
	} else {
		o.logf("[%d/%d] %s in %s", s.Index, s.Total, outcome, text.Round(took))
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
