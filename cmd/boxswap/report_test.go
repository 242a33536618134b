package main

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"boxswap/fsm"
)

func fixedClock() time.Time { return time.Date(2026, 3, 14, 9, 26, 53, 0, time.Local) }

// The plain reporter: one line per event with the time of day and the box,
// no escape code anywhere. The events are those fsm's
// TestReportedEventsGolden pins for a run of three steps.
func TestPlainGolden(t *testing.T) {
	var buf strings.Builder
	p := newPlain(&buf, fixedClock)
	step := func(i int, text string) fsm.StepInfo {
		return fsm.StepInfo{Index: i, Total: 3, ID: "upgrade-dev/" + text[len(text)-1:], Box: "thermals", Text: text}
	}
	a, b, c := step(1, "fake upgrade-dev/a"), step(2, "fake upgrade-dev/b"), step(3, "fake upgrade-dev/c")
	p.Say("upgrade-dev: 3 steps (attempt 1, next)")
	p.StepStart(a)
	p.Line("thermals", "applied upgrade-dev/a")
	p.StepDone(a, fsm.OutcomeDone, 3*time.Millisecond, nil)
	p.StepStart(b)
	p.Line("thermals", "applied upgrade-dev/b")
	p.Partial("thermals", "Downloading 55%")
	p.Line("thermals", "Downloading 100%")
	p.Line("thermals", "bold text")
	p.Progress("waiting for thermals to come back on f29: 1m20s of 1h0m0s")
	p.StepDone(b, fsm.OutcomeDone, 83*time.Second, nil)
	p.StepStart(c)
	p.Say("    already done: seen")
	p.StepDone(c, fsm.OutcomeSkipped, 150*time.Millisecond, nil)
	p.Say("upgrade-dev: done; phase is now dev-upgraded")
	got := buf.String()
	if strings.Contains(got, "\x1b") || strings.Contains(got, "\r") {
		t.Errorf("plain output holds escape codes or carriage returns:\n%q", got)
	}
	checkGolden(t, "plain-next.golden", durationRe.ReplaceAllString(got, "DUR"))
}

// durations differ from run to run; the golden files hold DUR.
var durationRe = regexp.MustCompile(`\b[0-9.]+(ns|µs|ms|s|m[0-9.]+s)\b`)

// screen is a tiny terminal: it applies what Terminal writes (text, \n,
// \r, cursor up, clear to end of screen, colors ignored) to a grid of lines,
// so tests see what the operator sees rather than the bytes.
type screen struct {
	lines []string
	row   int
	col   int
}

var csiRe = regexp.MustCompile(`^\x1b\[([0-9;]*)([A-Za-z])`)

func (s *screen) write(b string) {
	for len(b) > 0 {
		if m := csiRe.FindStringSubmatch(b); m != nil {
			switch m[2] {
			case "A":
				if s.row > 0 {
					s.row--
				}
			case "J":
				s.lines = s.lines[:s.row+1]
				s.lines[s.row] = string([]rune(s.lines[s.row])[:s.col])
			case "m":
			default:
				panic("unexpected escape " + m[0])
			}
			b = b[len(m[0]):]
			continue
		}
		r := []rune(b)[0]
		b = b[len(string(r)):]
		for len(s.lines) <= s.row {
			s.lines = append(s.lines, "")
		}
		switch r {
		case '\n':
			s.row++
			s.col = 0
			for len(s.lines) <= s.row {
				s.lines = append(s.lines, "")
			}
		case '\r':
			s.col = 0
		default:
			line := []rune(s.lines[s.row])
			for len(line) < s.col {
				line = append(line, ' ')
			}
			if s.col < len(line) {
				line[s.col] = r
			} else {
				line = append(line, r)
			}
			s.lines[s.row] = string(line)
			s.col++
		}
	}
}

func (s *screen) String() string { return strings.Join(s.lines, "\n") }

type screenWriter struct {
	mu  sync.Mutex
	s   screen
	raw strings.Builder
}

func (w *screenWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.raw.Write(p)
	w.s.write(string(p))
	return len(p), nil
}

func (w *screenWriter) screen() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.s.String()
}

// The terminal renderer keeps the running step on the last lines, with
// the wait it reports and a box's progress bar, and output scrolls above.
func TestTerminalLiveLines(t *testing.T) {
	w := &screenWriter{}
	term := newTerminal(w, func() int { return 60 })
	defer term.Close()
	now := fixedClock()
	term.mu.Lock()
	term.now = func() time.Time { return now }
	term.mu.Unlock()

	reboot := fsm.StepInfo{Index: 7, Total: 12, ID: "upgrade-dev/reboot", Box: "thermals", Text: "reboot into f29"}
	term.Say("upgrade-dev: 12 steps (attempt 1, next)")
	term.StepStart(reboot)
	term.Line("thermals", "Running transaction test")
	term.Partial("thermals", "Downloading 55%")
	term.mu.Lock()
	now = now.Add(80 * time.Second)
	term.mu.Unlock()
	term.Progress("waiting for thermals to come back on f29: 1m20s of 1h0m0s")
	want := strings.Join([]string{
		"upgrade-dev: 12 steps (attempt 1, next)",
		"  thermals| Running transaction test",
		"▶ [7/12] thermals reboot into f29  1m20s",
		"    waiting for thermals to come back on f29: 1m20s of 1h0…",
		"    thermals| Downloading 55%",
	}, "\n")
	if got := w.screen(); got != want {
		t.Errorf("screen while waiting:\n%s\nwant:\n%s", got, want)
	}
	// The complete line replaces the progress bar; the step ends.
	term.Line("thermals", "Downloading 100%")
	term.StepDone(reboot, fsm.OutcomeDone, 83*time.Second, nil)
	fail := fsm.StepInfo{Index: 8, Total: 12, Box: "thermals", Text: "check /etc/os-release"}
	term.StepStart(fail)
	term.StepDone(fail, fsm.OutcomeFailed, 200*time.Millisecond, errors.New("thermals: VERSION_ID is 27, not 29"))
	term.Close()
	want = strings.Join([]string{
		"upgrade-dev: 12 steps (attempt 1, next)",
		"  thermals| Running transaction test",
		"  thermals| Downloading 100%",
		"✓ [7/12] thermals reboot into f29  1m23s",
		"✗ [8/12] thermals check /etc/os-release  200ms",
		"  failed: thermals: VERSION_ID is 27, not 29",
		"",
	}, "\n")
	if got := w.screen(); got != want {
		t.Errorf("screen at the end:\n%s\nwant:\n%s", got, want)
	}
	if !strings.Contains(w.raw.String(), ansiGreen+"✓") || !strings.Contains(w.raw.String(), ansiCyan+"thermals") {
		t.Errorf("no colors in %q", w.raw.String())
	}
}

// Hold clears the live lines for a prompt and nothing is drawn over it
// until the next step event.
func TestTerminalHold(t *testing.T) {
	w := &screenWriter{}
	term := newTerminal(w, nil)
	term.StepStart(fsm.StepInfo{Index: 1, Total: 2, Text: "ask the operator: go?"})
	term.Hold()
	fmt.Fprint(w, "go? — type yes to go on: ")
	term.mu.Lock()
	term.redraw() // what the ticker would do
	term.mu.Unlock()
	if got := w.screen(); got != "go? — type yes to go on: " {
		t.Errorf("screen at the prompt: %q", got)
	}
	term.Close()
}
