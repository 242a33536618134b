package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"boxswap/fsm"
	"boxswap/internal/text"
	"boxswap/steps"
)

// plain is the fsm.Reporter for a pipe, a file, NO_COLOR or --plain: one
// line per event, each with the time of day and the box name, no escape
// codes.
type plain struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// newPlain returns a plain reporter writing to w. now, when nil, is
// time.Now (tests pass a fixed clock).
func newPlain(w io.Writer, now func() time.Time) *plain {
	if now == nil {
		now = time.Now
	}
	return &plain{w: w, now: now}
}

func (p *plain) printf(format string, args ...any) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s "+format+"\n", append([]any{p.now().Format("15:04:05")}, args...)...)
}

func (p *plain) StepStart(s fsm.StepInfo) {
	verb := ""
	if s.Undo {
		verb = "undo "
	}
	p.printf("%s[%d/%d] %s %s", verb, s.Index, s.Total, steps.BoxLabel(s.Box), s.Text)
}

func (p *plain) StepDone(s fsm.StepInfo, outcome fsm.Outcome, took time.Duration, err error) {
	if err != nil {
		p.printf("[%d/%d] %s %s after %s: %s", s.Index, s.Total, steps.BoxLabel(s.Box), outcome, text.Round(took), text.OneLine(err.Error(), maxScreenLine))
		return
	}
	p.printf("[%d/%d] %s %s in %s", s.Index, s.Total, steps.BoxLabel(s.Box), outcome, text.Round(took))
}

func (p *plain) Line(box, text string)  { p.printf("%s| %s", box, text) }
func (p *plain) Partial(string, string) {} // the complete line follows
func (p *plain) Progress(text string)   { p.printf("    %s", text) }
func (p *plain) Say(text string)        { p.printf("%s", text) }

// Hold does nothing: plain lines never draw over a prompt.
func (p *plain) Hold() {}

// Close does nothing: plain lines leave nothing to clear.
func (p *plain) Close() {}
