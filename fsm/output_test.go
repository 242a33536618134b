package fsm

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// The events a run reports, in order: a box's output line by line, its
// redrawn progress bar as the last text drawn, its escape codes removed.
func TestReportedEventsGolden(t *testing.T) {
	r := newRig(t)
	var buf strings.Builder
	r.eng.Report = &lineReporter{w: &buf}
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
		t.Errorf("reported events hold escape codes or carriage returns:\n%q", got)
	}
	checkGolden(t, "events-next.golden", durationRe.ReplaceAllString(got, "DUR"))
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

// lineReporter writes each event as a line (the CLI's plain reporter, less
// the time of day): what the engine tests read.
type lineReporter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineReporter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format+"\n", args...)
}

func (l *lineReporter) StepStart(s StepInfo) {
	verb := ""
	if s.Undo {
		verb = "undo "
	}
	l.printf("%s[%d/%d] %s %s", verb, s.Index, s.Total, steps.BoxLabel(s.Box), s.Text)
}

func (l *lineReporter) StepDone(s StepInfo, outcome Outcome, took time.Duration, err error) {
	if err != nil {
		l.printf("[%d/%d] %s %s after %s: %v", s.Index, s.Total, steps.BoxLabel(s.Box), outcome, took, err)
		return
	}
	l.printf("[%d/%d] %s %s in %s", s.Index, s.Total, steps.BoxLabel(s.Box), outcome, took)
}

func (l *lineReporter) Line(box, text string)    { l.printf("%s| %s", box, text) }
func (l *lineReporter) Partial(box, text string) { l.printf("%s~ %s", box, text) }
func (l *lineReporter) Progress(text string)     { l.printf("    %s", text) }
func (l *lineReporter) Say(text string)          { l.printf("%s", text) }
