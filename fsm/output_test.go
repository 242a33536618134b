package fsm

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"boxswap/internal/golden"
	"boxswap/state"
	"boxswap/steps"
)

// golden compares got with testdata/NAME, or rewrites it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), got, "go test ./fsm -run "+t.Name()+" -update rewrites it")
}

// durations differ from run to run; the golden files hold DUR.
var durationRe = regexp.MustCompile(`\b[0-9.]+(ns|µs|ms|s|m[0-9.]+s)\b`)

func fixedClock() time.Time { return time.Date(2026, 3, 14, 9, 26, 53, 0, time.Local) }

// The plain renderer: one line per event with the time of day and the box,
// no escape code anywhere, a box's own escape codes removed.
func TestPlainOutputGolden(t *testing.T) {
	r := newRig(t)
	var buf strings.Builder
	r.eng.Report = NewPlain(&buf, fixedClock)
	b := r.step(UpgradeDev, "b")
	b.onApply = func(env *steps.Env) error {
		fmt.Fprint(env.Output("thermals"), "Downloading 10%\rDownloading 55%\rDownloading 100%\n\x1b[1mbold\x1b[0m text\n")
		env.Progress("waiting for %s to come back on f%d: %s of %s", "thermals", 29, 80*time.Second, time.Hour)
		return nil
	}
	r.w.applied["upgrade-dev/c"] = true
	if _, err := r.eng.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := buf.String()
	if strings.Contains(got, "\x1b") || strings.Contains(got, "\r") {
		t.Errorf("plain output holds escape codes or carriage returns:\n%q", got)
	}
	checkGolden(t, "plain-next.golden", durationRe.ReplaceAllString(got, "DUR"))
}

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
	term := NewTerminal(w, func() int { return 60 })
	defer term.Close()
	now := fixedClock()
	term.mu.Lock()
	term.now = func() time.Time { return now }
	term.mu.Unlock()

	reboot := StepInfo{Index: 7, Total: 12, ID: "upgrade-dev/reboot", Box: "thermals", Text: "reboot into f29"}
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
	term.StepDone(reboot, OutcomeDone, 83*time.Second, nil)
	fail := StepInfo{Index: 8, Total: 12, Box: "thermals", Text: "check /etc/os-release"}
	term.StepStart(fail)
	term.StepDone(fail, OutcomeFailed, 200*time.Millisecond, errors.New("thermals: VERSION_ID is 27, not 29"))
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
	term := NewTerminal(w, nil)
	term.StepStart(StepInfo{Index: 1, Total: 2, Text: "ask the operator: go?"})
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

// Notify hears start, gate and end, and a failing webhook is a warning in
// the output and the history, never a failed transition.
func TestNotifyStartGateEndAndFailure(t *testing.T) {
	r := newRig(t)
	var mu sync.Mutex
	var got []string
	r.eng.Approve = func(context.Context, string, string) (string, error) { return "tester@here", nil }
	r.eng.Notify = func(_ context.Context, n Notice) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprintf("%s:%s:%s:%s", n.Kind, n.Event, n.Status, n.Step))
		if n.Who != "tester@here" || n.Attempt == 0 || n.Time.IsZero() {
			t.Errorf("notice %+v", n)
		}
		if n.Kind == NoticeGate && n.Prompt != "the dev box works?" {
			t.Errorf("gate prompt %q", n.Prompt)
		}
		return errors.New("POST http://127.0.0.1:1/: connection refused")
	}
	r.step(UpgradeDev, "b").onApply = func(env *steps.Env) error {
		_, err := env.Approve(context.Background(), "upgrade-dev/b", "the dev box works?")
		return err
	}
	if _, err := r.eng.Next(context.Background()); err != nil {
		t.Fatalf("a failing webhook stopped the transition: %v", err)
	}
	c := r.step(Redirect, "c")
	c.applyErr, c.failures = errors.New("thurst: exit 1"), 1
	if _, err := r.eng.Next(context.Background()); err == nil {
		t.Fatal("redirect did not fail")
	}
	want := "start:upgrade-dev:running: gate:upgrade-dev:running:upgrade-dev/b end:upgrade-dev:done: " +
		"start:redirect:running: failure:redirect:failed:redirect/c"
	if s := strings.Join(got, " "); s != want {
		t.Errorf("notices\n%s\nwant\n%s", s, want)
	}
	if !strings.Contains(r.out.String(), "warning: gate notification of upgrade-dev: POST http://127.0.0.1:1/: connection refused (the transition goes on)") {
		t.Errorf("no warning in the output:\n%s", r.out.String())
	}
	h, err := r.store.History()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range h {
		if e.Kind == "notify-failed" {
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d notify-failed events in the history, want 5: %+v", n, h)
	}
	if a, _ := r.store.Last(); a.Status != state.Failed {
		t.Errorf("last attempt %+v", a)
	}
}
