package fsm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"boxswap/boxes"
	"boxswap/internal/safefile"
	"boxswap/state"
	"boxswap/steps"
)

// output opens the attempt's log file beside the state. The folder and the
// file are opened without following a link, and created private (0700,
// 0600): a link or a FIFO planted there is refused (state.ErrNotAFile),
// never written through. Any other failure to open it only loses the full
// log: the state keeps each step's tail.
func (e *Engine) output(att *state.Attempt) (*output, func(), error) {
	dir, name := e.logPath(att.ID, att.Event)
	var log io.Writer
	closeLog := func() {}
	err := safefile.MkdirPrivate(dir)
	var f *os.File
	if err == nil {
		f, err = safefile.OpenIn(dir, name, os.O_WRONLY|os.O_APPEND)
	}
	if errors.Is(err, safefile.ErrNotRegular) {
		return nil, nil, fmt.Errorf("%w: attempt log: %w", state.ErrNotAFile, err)
	}
	if errors.Is(err, safefile.ErrUnsafeFile) {
		return nil, nil, fmt.Errorf("attempt log %w", safefile.Renewable(err))
	}
	if err == nil {
		// Buffered: a box printing a gigabyte costs one write per 64 KiB,
		// not two per line. Flushed at the end of each step.
		bw := bufio.NewWriterSize(f, 64<<10)
		log = bw
		closeLog = func() { bw.Flush(); f.Close() }
	}
	return newOutput(e.reporter(), log), closeLog, nil
}

// logPath is the folder and the name of attempt id's log file.
func (e *Engine) logPath(id uint64, event Event) (dir, name string) {
	dir = e.LogDir
	if dir == "" {
		dir = e.Store.Path() + ".logs"
	}
	return dir, fmt.Sprintf("%04d-%s.log", id, event)
}

// checkLog refuses, before the state is written, an attempt log that
// output would refuse: something other than a regular file, or one with
// another name (a hard link), owner or a mode others may write. output
// checks again as it opens it.
func (e *Engine) checkLog(id uint64, event Event) error {
	dir, name := e.logPath(id, event)
	if fi, err := os.Lstat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("%w: attempt log: %w", state.ErrNotAFile, &safefile.NotRegularError{Path: dir, What: safefile.Kind(fi.Mode())})
	}
	fi, err := safefile.Lstat(filepath.Join(dir, name))
	switch {
	case errors.Is(err, safefile.ErrNotRegular):
		return fmt.Errorf("%w: attempt log: %w", state.ErrNotAFile, err)
	case err != nil || fi == nil:
		return nil // a folder it cannot read only loses the full log
	}
	if err := safefile.Mine(filepath.Join(dir, name), fi); err != nil {
		return fmt.Errorf("attempt log %w", safefile.Renewable(err))
	}
	return nil
}

func (e *Engine) env(ctx context.Context, att *state.Attempt, out *output) *steps.Env {
	return &steps.Env{
		Boxes:  e.fenced(),
		Output: out.writer,
		Facts:  &facts{store: e.Store, prefix: factsPrefix(att.Cycle), attempt: att.ID, step: func() string { return currentStep(att) }},
		Approve: func(ctx context.Context, gate, prompt string) (string, error) {
			n := e.notice(att, NoticeGate)
			n.Step, n.Prompt = gate, prompt
			e.send(ctx, out, n)
			if e.Approve == nil {
				return "", fmt.Errorf("%w: %s: no way to ask; run with --yes", steps.ErrNotApproved, gate)
			}
			who, err := e.Approve(ctx, gate, prompt)
			if err != nil {
				return "", err
			}
			if err := e.Store.Approve(state.Approval{Attempt: att.ID, Gate: gate, Who: who, When: time.Now()}); err != nil {
				return "", err
			}
			e.record("approval", fmt.Sprintf("%s approved by %s", gate, who))
			return who, nil
		},
		Progress: out.progress,
		Force:    e.forced(),
	}
}

// forced returns the overrides and records each in the history, once per run.
func (e *Engine) forced() map[steps.Guard]bool {
	for k, v := range e.Force {
		if v {
			e.record("override", fmt.Sprintf("guard %s overridden by %s", k, e.Who))
		}
	}
	return e.Force
}

// fenced is e.Boxes, each command preceded by a check that this process
// still holds the operator lock when the state can lose it (etcd): an
// operator suspended past its lease sends nothing more to the boxes.
func (e *Engine) fenced() func(string) (boxes.Runner, error) {
	f, ok := e.Store.(state.Fencer)
	if !ok || e.Boxes == nil {
		return e.Boxes
	}
	return func(name string) (boxes.Runner, error) {
		r, err := e.Boxes(name)
		if err != nil {
			return nil, err
		}
		return fencedRunner{r: r, f: f}, nil
	}
}

type fencedRunner struct {
	r boxes.Runner
	f state.Fencer
}

func (fr fencedRunner) Run(ctx context.Context, cmd string, stdout, stderr io.Writer) (int, error) {
	if err := fr.f.Fence(); err != nil {
		return -1, fmt.Errorf("not sent: %w", err)
	}
	return fr.r.Run(ctx, cmd, stdout, stderr)
}
