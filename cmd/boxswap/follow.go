package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"boxswap/state"
	"boxswap/steps"
)

// followEvery is how often log --follow reads the state: often enough to
// see each step start, rarely enough to cost nothing.
const followEvery = 500 * time.Millisecond

// followLine is one thing log --follow saw change; under --json it is
// printed as one object per line.
type followLine struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"` // history, attempt, step
	Attempt uint64    `json:"attempt,omitempty"`
	Event   string    `json:"event,omitempty"`
	Step    string    `json:"step,omitempty"`
	Index   int       `json:"index,omitempty"`
	Total   int       `json:"total,omitempty"`
	Box     string    `json:"box,omitempty"`
	Status  string    `json:"status"`
	Tries   int       `json:"tries,omitempty"`
	Took    string    `json:"took,omitempty"`
	Error   string    `json:"error,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	Who     string    `json:"who,omitempty"`
}

type followPrinter func(followLine)

func newFollowPrinter(g *globalOptions, wide bool) followPrinter {
	if g.JSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetEscapeHTML(false)
		return func(l followLine) { _ = enc.Encode(l) }
	}
	return func(l followLine) { printFollowLine(g.stdout, l, wide) }
}

// printFollowLine prints one line of log --follow, wrapped to 80 columns
// (text.Width) unless wide.
func printFollowLine(w io.Writer, l followLine, wide bool) {
	at := l.Time.Local().Format("15:04:05")
	var b strings.Builder
	switch l.Kind {
	case "history":
		fmt.Fprintf(&b, "%s %s: %s (%s)", at, l.Status, l.Detail, l.Who)
	case "attempt":
		fmt.Fprintf(&b, "%s %s (attempt %d): %s", at, l.Event, l.Attempt, l.Status)
		if l.Error != "" {
			fmt.Fprintf(&b, ": %s", oneLine(l.Error, wide))
		}
	case "step":
		fmt.Fprintf(&b, "%s [%d/%d] %s %s: %s", at, l.Index, l.Total, steps.BoxLabel(l.Box), l.Step, l.Status)
		switch {
		case l.Status == string(state.StepRunning) && l.Tries > 1:
			fmt.Fprintf(&b, " (try %d)", l.Tries)
		case l.Took != "":
			fmt.Fprintf(&b, " in %s", l.Took)
		}
		if l.Error != "" {
			fmt.Fprintf(&b, ": %s", oneLine(l.Error, wide))
		}
	default:
		return
	}
	paragraph(w, wide)(b.String(), "", "         ")
}

// follow polls store (or, on a store that can watch, waits for a change)
// until the transition it follows ends or ctx is done
// (Ctrl-C: not an error). seen is what was already printed. It follows the
// last attempt if it is running, else waits for a new one.
func follow(ctx context.Context, store state.Backend, seen logJSON, print followPrinter, every time.Duration) error {
	f := &follower{print: print, steps: map[string]string{}, attempts: map[uint64]state.Status{}}
	for _, e := range seen.History {
		f.seq = max(f.seq, e.Seq)
	}
	for _, a := range seen.Attempts {
		f.attempts[a.ID] = a.Status
		for _, s := range a.Steps {
			f.steps[stepKey(a.ID, s.ID)] = stepState(s)
		}
	}
	if n := len(seen.Attempts); n > 0 && active(seen.Attempts[n-1].Status) {
		f.following = seen.Attempts[n-1].ID
	}
	if f.following == 0 {
		print(followLine{Time: time.Now(), Kind: "history", Status: "waiting", Detail: "no transition is running; waiting for boxswap next, resume or rollback"})
	}
	tk := time.NewTicker(every)
	defer tk.Stop()
	var changed <-chan struct{}
	if w, ok := store.(state.Watcher); ok {
		// A watch tells at once; the ticker, slowed down, stays as a
		// safety net should the watch end.
		tk.Reset(10 * every)
		changed = w.Changed(ctx)
	}
	for {
		done, err := f.poll(store)
		if err != nil && !errors.Is(err, state.ErrBusy) {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
		case _, ok := <-changed:
			if !ok {
				changed = nil // the watch ended: poll
				tk.Reset(every)
			}
		}
	}
}

type follower struct {
	print     followPrinter
	seq       uint64
	steps     map[string]string // attempt/step -> status/tries
	attempts  map[uint64]state.Status
	following uint64 // the attempt followed; 0 while waiting for one
}

// active reports an attempt a command is working on now.
func active(status state.Status) bool { return status == state.Running || status == state.RollingBack }

func stepKey(id uint64, step string) string { return fmt.Sprintf("%d/%s", id, step) }

func stepState(s state.StepRecord) string { return fmt.Sprintf("%s/%d", s.Status, s.Attempts) }

// poll prints what changed since the last poll and reports whether the
// followed transition has ended.
func (f *follower) poll(store state.Backend) (bool, error) {
	attempts, err := store.Attempts()
	if err != nil {
		return false, err
	}
	history, err := store.History()
	if err != nil {
		return false, err
	}
	for _, a := range attempts {
		if _, known := f.attempts[a.ID]; !known && f.following == 0 {
			f.following = a.ID
		}
		if a.ID != f.following {
			continue
		}
		changed := f.attempts[a.ID] != a.Status
		if changed && active(a.Status) {
			f.attempts[a.ID] = a.Status
			f.print(followLine{Time: a.Started, Kind: "attempt", Attempt: a.ID, Event: string(a.Event), Status: string(a.Status)})
		}
		for i, s := range a.Steps {
			k := stepKey(a.ID, s.ID)
			if st := stepState(s); f.steps[k] != st {
				f.steps[k] = st
				if s.Status == state.Pending {
					continue
				}
				at := s.Started
				if !s.Ended.IsZero() {
					at = s.Ended
				}
				took := ""
				if s.Status != state.StepRunning && s.Status != state.Undoing {
					if d := duration(s.Started, s.Ended); d != "-" {
						took = d
					}
				}
				f.print(followLine{Time: at, Kind: "step", Attempt: a.ID, Event: string(a.Event), Step: s.ID, Index: i + 1, Total: len(a.Steps),
					Box: s.Box, Status: string(s.Status), Tries: s.Attempts, Took: took, Error: s.Error})
			}
		}
		if f.attempts[a.ID] != a.Status {
			f.attempts[a.ID] = a.Status
			at := a.Started
			if !a.Ended.IsZero() {
				at = a.Ended
			}
			f.print(followLine{Time: at, Kind: "attempt", Attempt: a.ID, Event: string(a.Event), Status: string(a.Status), Error: a.Error})
		}
	}
	for _, e := range history {
		if e.Seq > f.seq {
			f.seq = e.Seq
			f.print(followLine{Time: e.Time, Kind: "history", Status: e.Kind, Detail: e.Detail, Who: e.Who})
		}
	}
	if f.following == 0 {
		return false, nil
	}
	for _, a := range attempts {
		if a.ID == f.following {
			return !active(a.Status), nil
		}
	}
	return false, nil
}
