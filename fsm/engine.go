package fsm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"boxswap/boxes"
	"boxswap/state"
	"boxswap/steps"
)

// Engine runs transitions step by step, recording each step in the state
// before and after it runs, so that a run stopped anywhere resumes.
type Engine struct {
	Config *boxes.Config
	Store  state.Backend
	// Boxes returns the Runner of a box by name.
	Boxes func(name string) (boxes.Runner, error)
	// Report is told each step's start and end, the boxes' output and the
	// engine's lines (see Reporter); nil discards them (the attempt's log
	// file has them all).
	Report Reporter
	// Notify, when set, is told when a transition starts, ends, fails and
	// when a gate asks for approval. Its error is printed as a warning and
	// recorded in the history: a notification never stops a transition.
	Notify func(ctx context.Context, n Notice) error
	// Approve asks the operator at a gate (see steps.Env).
	Approve func(ctx context.Context, gate, prompt string) (string, error)
	// Force lists the guards the operator overrode; each use is recorded.
	Force map[steps.Guard]bool
	// Who is user@host, Command the verb: both go into the history.
	Who, Command string
	// Stop, once closed, makes the engine stop at the next safe point
	// (between steps) and record the transition as interrupted.
	Stop <-chan struct{}
	// StopBefore names a step to stop before (interrupted), so the operator
	// can look at the boxes, e.g. just before the cut-over window.
	StopBefore string
	// Retries and Backoff bound the retries of a step declared safe to
	// repeat whose outcome is unknown (a dropped connection).
	Retries int
	Backoff time.Duration
	// LogDir holds the full output of each attempt; default STATE.logs.
	LogDir string
	// Plan builds a transition's steps; nil means Steps.
	Plan func(cfg *boxes.Config, meta state.Meta, event Event) ([]steps.Step, error)
	// Wrap, when set, decorates the steps of every transition planned, and
	// may refuse the plan. The lab's rehearsal binary sets it to inject
	// faults (internal/fault); the shipped boxswap leaves it nil.
	Wrap func([]steps.Step) ([]steps.Step, error)
}

// Next starts the next transition of the cycle and runs it to the end.
func (e *Engine) Next(ctx context.Context) (*state.Attempt, error) {
	last, err := e.Store.Last()
	if err != nil {
		return nil, err
	}
	if last != nil && pending(last.Status) {
		return last, fmt.Errorf("%w: %s is %s at step %s; run boxswap resume to go on, or boxswap rollback to undo it",
			ErrPending, last.Event, last.Status, currentStep(last))
	}
	// Everything that can refuse is checked before the state is written:
	// a refused next leaves no trace.
	meta, err := e.cycle(false)
	if err != nil {
		return nil, err
	}
	t, ok := NextEvent(meta.Phase)
	if !ok {
		return nil, fmt.Errorf("%w: both boxes are on f%d; to upgrade again, set upgrade.from: %d and a higher upgrade.to in %s, then run boxswap next",
			ErrCycleDone, meta.To, meta.To, e.Config.File)
	}
	planned, err := e.plan(meta, t.Event)
	if err != nil {
		return nil, err
	}
	if err := e.checkStopBefore(t.Event, planned); err != nil {
		return nil, err
	}
	next := uint64(1)
	if last != nil {
		next = last.ID + 1
	}
	if err := e.checkLog(next, t.Event); err != nil {
		return nil, err
	}
	if meta, err = e.cycle(true); err != nil {
		return nil, err
	}
	att := &state.Attempt{
		Cycle: meta.Cycle, Event: t.Event, From: t.From, To: t.To,
		Status: state.Running, Command: e.Command, Started: time.Now(),
	}
	for _, s := range planned {
		att.Steps = append(att.Steps, stepRecord(s, 0))
	}
	if e.Config.Source != "" {
		att.Configs = []string{e.Config.Source}
	}
	id, err := e.Store.Begin(att)
	if err != nil {
		return nil, err
	}
	att.ID = id
	return e.run(ctx, att, planned)
}

// Resume goes on with a transition that was interrupted or failed: steps
// recorded done are skipped; a step found running is checked first.
func (e *Engine) Resume(ctx context.Context) (*state.Attempt, error) {
	att, err := e.Store.Last()
	if err != nil {
		return nil, err
	}
	if att == nil || !pending(att.Status) {
		// No attempt is returned: the last one is over, and a summary of it
		// would read as this run's.
		what := "no transition has run"
		if att != nil {
			what = fmt.Sprintf("the last transition, %s (attempt %d), is %s", att.Event, att.ID, att.Status)
		}
		return nil, fmt.Errorf("%w: %s", ErrNothingToResume, what)
	}
	if att.Status == state.RollingBack {
		return att, fmt.Errorf("%w: a rollback of %s was interrupted; run boxswap rollback to finish it", ErrPending, att.Event)
	}
	planned, err := e.replan(att)
	if err != nil {
		return att, err
	}
	if err := e.checkStopBefore(att.Event, planned); err != nil {
		return att, err
	}
	if err := e.checkLog(att.ID, att.Event); err != nil {
		return att, err
	}
	if err := e.Store.UpdateAttempt(att.ID, func(a *state.Attempt) error {
		a.Status, a.Command, a.Error, a.FailedStep = state.Running, e.Command, "", ""
		return nil
	}); err != nil {
		return att, err
	}
	e.record("resume", fmt.Sprintf("%s resumed at step %s", att.Event, currentStep(att)))
	att.Status = state.Running
	return e.run(ctx, att, planned)
}

func (e *Engine) run(ctx context.Context, att *state.Attempt, planned []steps.Step) (*state.Attempt, error) {
	x, out, closeLog, err := e.executor(ctx, att)
	if err != nil {
		return e.halt(att, state.Interrupted, currentStep(att), err)
	}
	defer closeLog()
	// The operator's stop ends the waits (connection attempts, reboot
	// waits, backoffs) of the step running, not its work.
	ctx = boxes.WithStop(ctx, e.Stop)
	out.say("%s: %d steps (attempt %d, %s)", att.Event, len(planned), att.ID, e.Command)
	e.notify(ctx, out, att, NoticeStart, "", nil)
	for i, s := range planned {
		if att.Steps[i].Status == state.StepDone {
			continue
		}
		if stopped(e.Stop) {
			return e.haltNotify(ctx, out, att, state.Interrupted, att.Steps[i].ID, ErrStopped)
		}
		if e.StopBefore != "" && s.ID() == e.StopBefore {
			return e.haltNotify(ctx, out, att, state.Interrupted, s.ID(),
				fmt.Errorf("%w before %s, as asked with --stop-before; boxswap resume goes on from there", ErrStopped, s.ID()))
		}
		if err := x.Do(ctx, i, s, forward); err != nil {
			status := state.Failed
			if ctx.Err() != nil || errors.Is(err, ErrStopped) {
				status = state.Interrupted
			}
			if to := s.Describe().RevertTo; to != "" && att.Steps[i].Status == state.StepFailed {
				return e.revert(ctx, x, out, att, planned, i, to, err)
			}
			return e.haltNotify(ctx, out, att, status, s.ID(), err)
		}
	}
	phase, err := fire(att.From, att.Event)
	if err != nil {
		return e.haltNotify(ctx, out, att, state.Failed, "", err)
	}
	if err := e.Store.SetPhase(att.ID, phase); err != nil {
		return att, err
	}
	out.say("%s: done; phase is now %s", att.Event, phase)
	att.Status = state.Done
	e.notify(ctx, out, att, NoticeEnd, "", nil)
	return e.Store.Attempt(att.ID)
}

// Rollback undoes, in reverse order, the steps of a transition that did not
// finish. It stops before a step that cannot be undone and says so.
func (e *Engine) Rollback(ctx context.Context) (*state.Attempt, error) {
	att, err := e.Store.Last()
	if err != nil {
		return nil, err
	}
	if att == nil || !pending(att.Status) {
		what := "no transition has run"
		if att != nil {
			what = fmt.Sprintf("the last transition, %s, is %s", att.Event, att.Status)
		}
		return nil, fmt.Errorf("%w: %s; a finished transition is not undone, the next one moves on", ErrNothingToRollBack, what)
	}
	// Undone as planned when they ran: boxes.yaml may have changed since.
	planned, err := e.asPlanned(att)
	if err != nil {
		return att, err
	}
	if err := e.checkLog(att.ID, att.Event); err != nil {
		return att, err
	}
	if err := e.Store.UpdateAttempt(att.ID, func(a *state.Attempt) error {
		a.Status, a.Command = state.RollingBack, e.Command
		return nil
	}); err != nil {
		return att, err
	}
	e.record("rollback", fmt.Sprintf("rollback of %s begins", att.Event))
	return e.undo(ctx, att, planned)
}

// undo runs the rollback of att: its steps' undo, in reverse.
func (e *Engine) undo(ctx context.Context, att *state.Attempt, planned []steps.Step) (*state.Attempt, error) {
	x, out, closeLog, err := e.executor(ctx, att)
	if err != nil {
		return e.halt(att, state.RollingBack, currentStep(att), err)
	}
	defer closeLog()
	ctx = boxes.WithStop(ctx, e.Stop)
	e.notify(ctx, out, att, NoticeStart, "", nil)
	for i := len(planned) - 1; i >= 0; i-- {
		rec := att.Steps[i]
		if rec.Status == state.Pending || rec.Status == state.Undone {
			continue
		}
		if rec.Irreversible {
			err := fmt.Errorf("%w: %s (%s) cannot be undone: %s; the steps after it are undone; run boxswap resume to go forward",
				ErrRollbackStopped, rec.ID, steps.BoxLabel(rec.Box), rec.Text)
			return e.haltNotify(ctx, out, att, state.Failed, rec.ID, err)
		}
		if stopped(e.Stop) {
			return e.haltNotify(ctx, out, att, state.RollingBack, rec.ID, ErrStopped)
		}
		if err := x.Do(ctx, i, planned[i], backward); err != nil {
			return e.haltNotify(ctx, out, att, state.RollingBack, rec.ID, err)
		}
	}
	if err := e.Store.UpdateAttempt(att.ID, func(a *state.Attempt) error {
		a.Status, a.Ended, a.Error, a.FailedStep = state.RolledBack, time.Now(), "", ""
		return nil
	}); err != nil {
		return att, err
	}
	e.record("rolled-back", fmt.Sprintf("%s rolled back; phase stays %s", att.Event, att.From))
	out.say("%s: rolled back; phase is still %s", att.Event, att.From)
	att.Status = state.RolledBack
	e.notify(ctx, out, att, NoticeEnd, "", nil)
	return e.Store.Attempt(att.ID)
}

// executor opens the attempt's log and returns the executor of its steps.
func (e *Engine) executor(ctx context.Context, att *state.Attempt) (*executor, *output, func(), error) {
	out, closeLog, err := e.output(att)
	if err != nil {
		return nil, nil, nil, err
	}
	x := &executor{store: e.Store, att: att, out: out, env: e.env(ctx, att, out), stop: e.Stop, retries: e.Retries, backoff: e.Backoff}
	return x, out, closeLog, nil
}

// halt records why the attempt stopped and returns err.
func (e *Engine) halt(att *state.Attempt, status state.Status, stepID string, err error) (*state.Attempt, error) {
	detail := steps.Detail(err)
	if se, ok := err.(*StepError); ok && se.Step == stepID {
		detail = steps.Detail(se.Err) // the record names the step already
	}
	uerr := e.Store.UpdateAttempt(att.ID, func(a *state.Attempt) error {
		a.Status, a.FailedStep, a.Error = status, stepID, detail
		if status != state.RollingBack {
			a.Ended = time.Now()
		}
		return nil
	})
	e.record(string(status), fmt.Sprintf("%s %s at %s: %s", att.Event, status, stepID, detail))
	if a, gerr := e.Store.Attempt(att.ID); gerr == nil {
		att = a
	}
	if uerr != nil {
		return att, errors.Join(err, uerr)
	}
	return att, err
}

func (e *Engine) record(kind, detail string) {
	// History is a journal for people; failing to write it must not stop
	// an upgrade half way, and the attempt record holds the same facts.
	_ = e.Store.Record(state.Event{Time: time.Now(), Who: e.Who, Kind: kind, Detail: detail})
}
