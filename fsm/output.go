package fsm

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"
)

// tailLines is how many lines of output a step record keeps; the full
// output goes to the attempt's log file.
const tailLines = 20

// output fans one step's remote output out to the operator (each line
// prefixed with the time and the box name), to the attempt's log file, and
// into a bounded tail kept for the state. Memory stays bounded however much
// a box prints.
type output struct {
	mu   sync.Mutex
	term io.Writer
	log  io.Writer
	tail []string
	part map[string][]byte // per box: a line not yet ended
}

func newOutput(term, log io.Writer) *output {
	return &output{term: term, log: log, part: map[string][]byte{}}
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
		w.o.line(w.box, string(bytes.TrimRight(buf[:i], "\r")))
		buf = buf[i+1:]
	}
	// A line longer than 64 KiB is cut rather than held forever.
	if len(buf) > 64<<10 {
		w.o.line(w.box, string(buf))
		buf = nil
	}
	w.o.part[w.box] = append([]byte(nil), buf...)
	return len(p), nil
}

func (o *output) line(box, s string) {
	if o.term != nil {
		fmt.Fprintf(o.term, "%s %s| %s\n", time.Now().Format("15:04:05"), box, s)
	}
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
	for box, b := range o.part {
		if len(b) > 0 {
			o.line(box, string(b))
		}
		delete(o.part, box)
	}
	t := o.tail
	o.tail = nil
	return t
}

// say prints an engine line (not remote output) to the operator and the log.
func (o *output) say(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if o.term != nil {
		fmt.Fprintf(o.term, "%s %s\n", time.Now().Format("15:04:05"), msg)
	}
	if o.log != nil {
		fmt.Fprintf(o.log, "%s %s\n", time.Now().Format(time.RFC3339), msg)
	}
}
