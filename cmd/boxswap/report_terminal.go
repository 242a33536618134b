package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"boxswap/fsm"
	"boxswap/internal/text"
	"boxswap/steps"
)

// ANSI sequences the terminal renderer uses; nothing else is assumed of
// the terminal (no cursor save/restore, no scrolling regions).
const (
	ansiReset = "\x1b[0m"
	ansiBold  = "\x1b[1m"
	ansiDim   = "\x1b[2m"
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiCyan  = "\x1b[36m"
	ansiUp    = "\x1b[1A"
	ansiClear = "\x1b[J" // from the cursor to the end of the screen
)

// terminal is the fsm.Reporter for a person at a terminal: finished steps,
// remote output (box name first) and engine lines scroll by, while the
// last lines of the screen show the step running now with its box and
// elapsed time, what a long wait is waiting for, and a progress bar a box
// is redrawing. Close it before printing anything else.
type terminal struct {
	mu    sync.Mutex
	w     io.Writer
	width func() int
	now   func() time.Time

	cur      *fsm.StepInfo
	started  time.Time
	progress string
	partial  string
	drawn    int  // lines of the live area now on the screen
	held     bool // a prompt is shown: draw nothing until the next event

	stop chan struct{}
	done chan struct{}
}

// tick is how often the elapsed time of the running step is redrawn.
const tick = 500 * time.Millisecond

// newTerminal returns a terminal writing to w. width reports the
// terminal's columns (nil: 80); live lines are cut to fit, so that they
// never wrap and can be redrawn in place.
func newTerminal(w io.Writer, width func() int) *terminal {
	if width == nil {
		width = func() int { return 80 }
	}
	t := &terminal{w: w, width: width, now: time.Now, stop: make(chan struct{}), done: make(chan struct{})}
	go t.loop()
	return t
}

func (t *terminal) loop() {
	defer close(t.done)
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tk.C:
			t.mu.Lock()
			if t.cur != nil && !t.held {
				t.redraw()
			}
			t.mu.Unlock()
		}
	}
}

// Close stops redrawing and clears the live lines. It is safe to call twice.
func (t *terminal) Close() {
	t.mu.Lock()
	select {
	case <-t.stop:
		t.mu.Unlock()
		return
	default:
	}
	close(t.stop)
	t.clear()
	t.cur = nil
	t.mu.Unlock()
	<-t.done
}

// Hold clears the live lines and draws nothing until the next step event:
// for a question typed on the same terminal (a gate).
func (t *terminal) Hold() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clear()
	t.held = true
}

func (t *terminal) StepStart(s fsm.StepInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.held = false
	t.cur, t.started, t.progress, t.partial = &s, t.now(), "", ""
	t.redraw()
}

func (t *terminal) StepDone(s fsm.StepInfo, outcome fsm.Outcome, took time.Duration, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.held = false
	t.cur, t.progress, t.partial = nil, "", ""
	mark, color := "✓", ansiGreen
	switch outcome {
	case fsm.OutcomeSkipped:
		mark, color = "=", ansiDim
	case fsm.OutcomeFailed:
		mark, color = "✗", ansiRed
	case fsm.OutcomeUnknown, fsm.OutcomeRefused, fsm.OutcomeUnreachable, fsm.OutcomeStopped:
		mark, color = "?", ansiRed
	}
	verb := ""
	if s.Undo {
		verb = "undo "
	}
	line := fmt.Sprintf("%s%s%s %s[%d/%d] %s%s%s %s  %s%s%s", color, mark, ansiReset, verb, s.Index, s.Total,
		ansiCyan, steps.BoxLabel(s.Box), ansiReset, s.Text, ansiDim, text.Round(took), ansiReset)
	if outcome == fsm.OutcomeSkipped {
		line += ansiDim + " (already done)" + ansiReset
	}
	if err != nil {
		line += "\n  " + ansiRed + string(outcome) + ": " + ansiReset + text.OneLine(err.Error(), maxScreenLine)
	}
	t.print(line)
}

func (t *terminal) Line(box, text string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if strings.HasPrefix(t.partial, box+"|") {
		t.partial = ""
	}
	t.print("  " + ansiCyan + box + ansiReset + "| " + text)
}

func (t *terminal) Partial(box, text string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = box + "| " + text
	t.redraw()
}

func (t *terminal) Progress(text string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.progress = text
	if t.cur == nil {
		t.print("    " + text)
		return
	}
	t.redraw()
}

func (t *terminal) Say(text string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.print(ansiBold + text + ansiReset)
}

// print writes permanent lines above the live area.
func (t *terminal) print(s string) {
	t.clear()
	io.WriteString(t.w, s+"\n")
	t.draw()
}

func (t *terminal) redraw() {
	if t.held {
		return
	}
	t.clear()
	t.draw()
}

// clear erases the live area and leaves the cursor where it began.
func (t *terminal) clear() {
	if t.drawn == 0 {
		return
	}
	s := "\r" + strings.Repeat(ansiUp, t.drawn-1) + ansiClear
	io.WriteString(t.w, s)
	t.drawn = 0
}

// draw writes the live area; the cursor stays at the end of its last line.
func (t *terminal) draw() {
	if t.cur == nil || t.held {
		return
	}
	s := t.cur
	w := t.width() - 1
	if w < 20 {
		w = 20
	}
	verb := ""
	if s.Undo {
		verb = "undo "
	}
	lines := []string{
		fit(w, seg{ansiBold, fmt.Sprintf("▶ %s[%d/%d] ", verb, s.Index, s.Total)}, seg{ansiCyan, steps.BoxLabel(s.Box)},
			seg{"", " " + s.Text + "  "}, seg{ansiDim, t.now().Sub(t.started).Round(time.Second).String()}),
	}
	if t.progress != "" {
		lines = append(lines, fit(w, seg{"", "    " + t.progress}))
	}
	if t.partial != "" {
		lines = append(lines, fit(w, seg{ansiDim, "    " + t.partial}))
	}
	io.WriteString(t.w, strings.Join(lines, "\n"))
	t.drawn = len(lines)
}

type seg struct{ style, text string }

// fit joins styled segments, cutting the visible text to width columns
// (one per rune: the renderer's own text is narrow) so the line never wraps.
func fit(width int, segs ...seg) string {
	var b strings.Builder
	left := width
	for _, s := range segs {
		if left <= 0 {
			break
		}
		text := strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return ' ' // a box's escape codes must not move the cursor
			}
			return r
		}, s.text)
		if n := utf8.RuneCountInString(text); n > left {
			text = string([]rune(text)[:left-1]) + "…"
		}
		left -= utf8.RuneCountInString(text)
		if s.style != "" {
			b.WriteString(s.style + text + ansiReset)
		} else {
			b.WriteString(text)
		}
	}
	return b.String()
}
