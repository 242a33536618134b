package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"boxswap/boxes"
	"boxswap/fsm"
	"boxswap/state"
	"boxswap/steps"
	"boxswap/test/lab/lab"
)

// upLab starts a lab under dir and raises max_delete in its boxes.yaml:
// the lab fills thermals with other data than thurst, which the first
// pre-sync replaces wholesale (the real development box holds last
// cycle's backup, mostly equal).
func upLab(ctx context.Context, dir string, o lab.Options) (*lab.Lab, error) {
	if o.Kind != lab.KindSystemd {
		if err := lab.Supported(); err != nil {
			return nil, err
		}
	}
	_ = os.RemoveAll(dir)
	l, err := lab.Up(ctx, dir, o)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(l.Config())
	if err == nil {
		b = []byte(strings.Replace(string(b), "max_delete: 1000", "max_delete: 1000000", 1))
		err = os.WriteFile(l.Config(), b, 0o644)
	}
	if err != nil {
		l.Down()
		return nil, err
	}
	return l, nil
}

// engine builds an fsm.Engine like the CLI's next/resume do (one SSH
// connection per box, retries), approving every gate.
func engine(cfgPath, statePath string, out io.Writer) (*fsm.Engine, func(), error) {
	cfg, err := boxes.Load(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	d := boxes.NewDialer(cfg)
	e := &fsm.Engine{
		Config: cfg, Store: state.Open(statePath), Boxes: d.Runner, Report: &lines{w: out},
		Approve: func(context.Context, string, string) (string, error) { return "bench", nil },
		Who:     "bench", Command: "bench", Retries: 2, Backoff: time.Second,
	}
	return e, func() { d.Close() }, nil
}

// lines is the bench's fsm.Reporter: one line per event, as the CLI's
// plain lines without the time. Its output is a log, not a figure.
type lines struct {
	mu sync.Mutex // Line comes from the goroutines copying remote output
	w  io.Writer
}

func (l *lines) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format+"\n", args...)
}

func (l *lines) StepStart(s fsm.StepInfo) {
	l.printf("[%d/%d] %s %s", s.Index, s.Total, steps.BoxLabel(s.Box), s.Text)
}

func (l *lines) StepDone(s fsm.StepInfo, o fsm.Outcome, took time.Duration, err error) {
	l.printf("[%d/%d] %s %s in %s (%v)", s.Index, s.Total, steps.BoxLabel(s.Box), o, took, err)
}

func (l *lines) Line(box, text string)  { l.printf("%s| %s", box, text) }
func (l *lines) Partial(string, string) {}
func (l *lines) Progress(text string)   { l.printf("    %s", text) }
func (l *lines) Say(text string)        { l.printf("%s", text) }

// planOf makes Engine.Plan return the same steps whatever the event: the
// bench's own plans run on a scratch state.
func planOf(s []steps.Step) func(*boxes.Config, state.Meta, fsm.Event) ([]steps.Step, error) {
	return func(*boxes.Config, state.Meta, fsm.Event) ([]steps.Step, error) { return s, nil }
}

// timed runs this binary (or another) as a child and returns its wall time
// and peak RSS in KiB.
func timed(ctx context.Context, stdout io.Writer, name string, args ...string) (time.Duration, int64, error) {
	c := exec.CommandContext(ctx, name, args...)
	c.Stdout, c.Stderr = stdout, os.Stderr
	t0 := time.Now()
	err := c.Run()
	d := time.Since(t0)
	var rss int64
	if c.ProcessState != nil {
		if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = ru.Maxrss
		}
	}
	if err != nil {
		return d, rss, fmt.Errorf("%s %s: %w", filepath.Base(name), strings.Join(args, " "), err)
	}
	return d, rss, nil
}

func self() string {
	exe, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return exe
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func sec(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

// sshArgs are OpenSSH client options reaching a lab box as the operator.
func sshArgs(l *lab.Lab, box string, extra ...string) []string {
	b := l.Info.Boxes[box]
	a := []string{"-i", l.Info.Identity, "-o", "UserKnownHostsFile=" + l.Info.KnownHosts,
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", fmt.Sprint(b.Port)}
	a = append(a, extra...)
	return append(a, "root@"+b.Host)
}

// machine describes this machine for the report.
func machine() string {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	out, _ := exec.Command("nproc").Output()
	return fmt.Sprintf("%s CPUs: %s; load average %s", strings.TrimSpace(string(out)), model, load)
}
