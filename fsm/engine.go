package fsm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"boxswap/boxes"
	"boxswap/internal/safefile"
	"boxswap/state"
	"boxswap/steps"
)

// Engine runs transitions step by step, recording each step in the state
// before and after it runs, so that a run stopped anywhere resumes.
type Engine struct {
	Config *boxes.Config
	Store  *state.Store
	// Boxes returns the Runner of a box by name.
	Boxes func(name string) (boxes.Runner, error)
	// Out receives progress lines and the boxes' output; nil discards.
	// Report, when set, is used instead (a terminal's live lines).
	Out    io.Writer
	Report Reporter
	// Notify, when set, is told when a transition starts, ends, fails and
	// when a gate asks for approval. Its error is printed as a warning and
	// recorded in the history: a notification never stops a transition.
	Notify func(ctx context.Context, n Notice) error
	// Approve asks the operator at a gate (see steps.Env).
	Approve func(ctx context.Context, gate, prompt string) (string, error)
	// Force lists the guards the operator overrode; each use is recorded.
	Force map[string]bool
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
	Plan func(cfg *boxes.Config, meta state.Meta, event string) ([]steps.Step, error)
	// Wrap, when set, decorates the steps of every transition planned, and
	// may refuse the plan. The lab's rehearsal binary sets it to inject
	// faults (internal/fault); the shipped boxswap leaves it nil.
	Wrap func([]steps.Step) ([]steps.Step, error)
}

func (e *Engine) plan(meta state.Meta, event string) ([]steps.Step, error) {
	return e.planWith(e.Config, meta, event)
}

func (e *Engine) planWith(cfg *boxes.Config, meta state.Meta, event string) ([]steps.Step, error) {
	plan := Steps
	if e.Plan != nil {
		plan = e.Plan
	}
	planned, err := plan(cfg, meta, event)
	if err != nil || e.Wrap == nil {
		return planned, err
	}
	return e.Wrap(planned)
}

// Planned returns the next transition and its steps, as next would run them.
func (e *Engine) Planned() (Transition, []steps.Step, error) {
	meta, err := e.cycle(false)
	if err != nil {
		return Transition{}, nil, err
	}
	t, ok := NextEvent(meta.Phase)
	if !ok {
		return Transition{}, nil, fmt.Errorf("%w: both boxes are on f%d; to upgrade again, set upgrade.from: %d and upgrade.to in %s",
			ErrCycleDone, meta.To, meta.To, e.Config.File)
	}
	st, err := e.plan(meta, t.Event)
	return t, st, err
}

// cycle returns the machine's meta, starting a cycle when the state is
// fresh or a finished cycle is followed by a new upgrade in boxes.yaml. It
// writes only when write is set.
func (e *Engine) cycle(write bool) (state.Meta, error) {
	meta, err := ReadMeta(e.Store)
	if err != nil {
		return meta, err
	}
	up := e.Config.Upgrade
	begin := func(n int) (state.Meta, error) {
		m := state.Meta{Schema: state.SchemaVersion, Phase: Start, Cycle: n, From: up.From, To: up.To, Changed: time.Now()}
		if write {
			if err := e.Store.Init(m); err != nil {
				return meta, err
			}
			e.record("cycle", fmt.Sprintf("cycle %d begins: f%d to f%d", n, up.From, up.To))
		}
		return m, nil
	}
	switch {
	case meta.Cycle == 0:
		return begin(1)
	case meta.From == up.From && meta.To == up.To:
		return meta, nil
	case meta.Phase == Done && up.From == meta.To:
		return begin(meta.Cycle + 1)
	case meta.Phase == Done:
		return meta, fmt.Errorf("%w: cycle %d took the boxes to f%d, but %s asks for f%d to f%d; a new cycle must start from f%d",
			ErrConfigChanged, meta.Cycle, meta.To, e.Config.File, up.From, up.To, meta.To)
	default:
		return meta, fmt.Errorf("%w: the cycle in progress upgrades f%d to f%d, but %s now says f%d to f%d; put upgrade.from/to back until the cycle is done",
			ErrConfigChanged, meta.From, meta.To, e.Config.File, up.From, up.To)
	}
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

// checkStopBefore refuses a --stop-before that names no step of the
// transition: it would silently never stop.
func (e *Engine) checkStopBefore(event string, planned []steps.Step) error {
	if e.StopBefore == "" {
		return nil
	}
	for _, s := range planned {
		if s.ID() == e.StopBefore {
			return nil
		}
	}
	return fmt.Errorf("%w: --stop-before %s: %s has no such step; boxswap plan lists its steps", ErrNoSuchStep, e.StopBefore, event)
}

// stepRecord is what the state records of a planned step; plan indexes
// the attempt's Configs.
func stepRecord(s steps.Step, plan int) state.StepRecord {
	d := s.Describe()
	return state.StepRecord{
		ID: s.ID(), Box: d.Box, Text: d.Text, Commands: d.Commands, Undo: d.Undo,
		Irreversible: d.Irreversible, Plan: plan, Status: state.Pending,
	}
}

// replan rebuilds an attempt's steps from boxes.yaml and checks they are
// the ones recorded, commands included: resuming with other steps would
// skip or repeat work. When they differ the error shows the difference
// and points at resume --replan.
func (e *Engine) replan(att *state.Attempt) ([]steps.Step, error) {
	planned, diff, err := e.planNow(att)
	if err != nil {
		return nil, err
	}
	if len(diff) > 0 {
		return nil, &PlanChangedError{Event: att.Event, File: e.Config.File, Diff: diff}
	}
	return planned, nil
}

// planNow plans att's transition from boxes.yaml as it is now, and says
// how that differs from the record.
func (e *Engine) planNow(att *state.Attempt) ([]steps.Step, []string, error) {
	meta, err := e.cycle(false)
	if err != nil {
		return nil, nil, err
	}
	planned, err := e.plan(meta, att.Event)
	if err != nil {
		return nil, nil, err
	}
	return planned, planDiff(att, planned), nil
}

// PlanChangedError is ErrConfigChanged for a pending transition whose steps
// boxes.yaml now plans otherwise; Diff says how, one line per step.
type PlanChangedError struct {
	Event, File string
	Diff        []string
}

func (e *PlanChangedError) Error() string {
	return fmt.Sprintf("%v: %s now plans the pending %s otherwise:\n%s", ErrConfigChanged, e.File, e.Event, strings.Join(e.Diff, "\n"))
}

func (e *PlanChangedError) Is(target error) bool { return target == ErrConfigChanged }

// planDiff lists how planned differs from the steps recorded in att: a
// step added (+), removed (-), or whose commands or undo changed (~).
func planDiff(att *state.Attempt, planned []steps.Step) []string {
	var diff []string
	now := map[string]state.StepRecord{}
	for _, s := range planned {
		now[s.ID()] = stepRecord(s, 0)
	}
	was := map[string]bool{}
	for _, r := range att.Steps {
		was[r.ID] = true
		n, ok := now[r.ID]
		switch {
		case !ok:
			diff = append(diff, fmt.Sprintf("  - %s (%s): no longer planned", r.ID, r.Status))
		case !slices.Equal(n.Commands, r.Commands):
			diff = append(diff, fmt.Sprintf("  ~ %s (%s): runs %q, recorded %q", r.ID, r.Status, n.Commands, r.Commands))
		case !slices.Equal(n.Undo, r.Undo) && r.Undo != nil:
			diff = append(diff, fmt.Sprintf("  ~ %s (%s): undo %q, recorded %q", r.ID, r.Status, n.Undo, r.Undo))
		}
	}
	for i, s := range planned {
		if !was[s.ID()] {
			diff = append(diff, fmt.Sprintf("  + %s: new, step %d", s.ID(), i+1))
		}
	}
	if len(diff) == 0 {
		for i, s := range planned {
			if i < len(att.Steps) && s.ID() != att.Steps[i].ID {
				diff = append(diff, fmt.Sprintf("  ~ step %d is now %s, recorded %s", i+1, s.ID(), att.Steps[i].ID))
			}
		}
	}
	return diff
}

// Replan re-plans the pending transition from boxes.yaml as it is now, and
// records it (the new boxes.yaml, the difference, who): steps not done yet
// take the new plan; done steps keep their record and are undone, if ever,
// as recorded. A done step the new plan would run otherwise, or no longer
// runs, is refused: roll back first (with the recorded commands), then
// next plans afresh. It returns the difference, empty when there is none.
func (e *Engine) Replan() ([]string, error) {
	att, err := e.Store.Last()
	if err != nil {
		return nil, err
	}
	if att == nil || !pending(att.Status) || att.Status == state.RollingBack {
		return nil, fmt.Errorf("%w: no transition is pending to re-plan", ErrNothingToResume)
	}
	planned, diff, err := e.planNow(att)
	if err != nil {
		return nil, err
	}
	if len(diff) == 0 {
		return nil, nil
	}
	now := map[string]state.StepRecord{}
	for _, s := range planned {
		now[s.ID()] = stepRecord(s, 0)
	}
	var refused []string
	for _, r := range att.Steps {
		n, ok := now[r.ID]
		if r.Status == state.Done && (!ok || !slices.Equal(n.Commands, r.Commands) || r.Undo != nil && !slices.Equal(n.Undo, r.Undo)) {
			refused = append(refused, r.ID)
		}
	}
	if len(refused) > 0 {
		return diff, fmt.Errorf("%w: %s: %s already ran as recorded, and the new plan would run it otherwise or not at all; "+
			"boxswap rollback undoes the done steps with their recorded commands, then boxswap next plans afresh:\n%s",
			ErrConfigChanged, att.Event, strings.Join(refused, ", "), strings.Join(diff, "\n"))
	}
	err = e.Store.UpdateAttempt(att.ID, func(a *state.Attempt) error {
		old := map[string]state.StepRecord{}
		for _, r := range a.Steps {
			old[r.ID] = r
		}
		plan := len(a.Configs)
		a.Configs = append(a.Configs, e.Config.Source)
		a.Steps = a.Steps[:0]
		for _, s := range planned {
			r, ok := old[s.ID()]
			if !ok || r.Status != state.Done {
				n := stepRecord(s, plan)
				if ok { // keep what was seen of it: resume checks it first
					n.Status, n.Attempts, n.Started, n.Error, n.Why, n.Tail = r.Status, r.Attempts, r.Started, r.Error, r.Why, r.Tail
				}
				r = n
			}
			a.Steps = append(a.Steps, r)
		}
		return nil
	})
	if err != nil {
		return diff, err
	}
	e.record("replan", fmt.Sprintf("%s (attempt %d) re-planned from %s by %s:\n%s", att.Event, att.ID, e.Config.File, e.Who, strings.Join(diff, "\n")))
	return diff, nil
}

// asPlanned returns the steps to undo for att: each done step as it was
// planned when it ran (from the boxes.yaml recorded with it), never as the
// file plans it now. Without a recorded boxes.yaml (an attempt recorded
// before they were), the plan of today's file must match the record.
func (e *Engine) asPlanned(att *state.Attempt) ([]steps.Step, error) {
	if len(att.Configs) == 0 {
		return e.replan(att)
	}
	meta, err := e.cycle(false)
	if err != nil {
		return nil, err
	}
	byPlan := map[int]map[string]steps.Step{}
	out := make([]steps.Step, len(att.Steps))
	for i, r := range att.Steps {
		if r.Plan < 0 || r.Plan >= len(att.Configs) {
			return nil, fmt.Errorf("%w: attempt %d: step %s names plan %d of %d", state.ErrCorrupt, att.ID, r.ID, r.Plan, len(att.Configs))
		}
		ids, ok := byPlan[r.Plan]
		if !ok {
			cfg, err := boxes.LoadBytes(e.Config.File, []byte(att.Configs[r.Plan]))
			if err != nil {
				return nil, fmt.Errorf("the boxes.yaml recorded with attempt %d no longer loads: %w", att.ID, err)
			}
			planned, err := e.planWith(cfg, meta, att.Event)
			if err != nil {
				return nil, err
			}
			ids = map[string]steps.Step{}
			for _, s := range planned {
				ids[s.ID()] = s
			}
			byPlan[r.Plan] = ids
		}
		if out[i], ok = ids[r.ID]; !ok {
			return nil, fmt.Errorf("%w: the boxes.yaml recorded with attempt %d does not plan %s", ErrConfigChanged, att.ID, r.ID)
		}
	}
	return out, nil
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
		if att.Steps[i].Status == state.Done {
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
				ErrRollbackStopped, rec.ID, boxLabel(rec.Box), rec.Text)
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
func (e *Engine) halt(att *state.Attempt, status, stepID string, err error) (*state.Attempt, error) {
	uerr := e.Store.UpdateAttempt(att.ID, func(a *state.Attempt) error {
		a.Status, a.FailedStep, a.Error = status, stepID, err.Error()
		if status != state.RollingBack {
			a.Ended = time.Now()
		}
		return nil
	})
	e.record(status, fmt.Sprintf("%s %s at %s: %v", att.Event, status, stepID, err))
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

// output opens the attempt's log file beside the state. The folder and the
// file are opened without following a link, and created private (0700,
// 0600): a link or a FIFO planted there is refused (state.ErrNotAFile),
// never written through. Any other failure to open it only loses the full
// log: the state keeps each step's tail.
func (e *Engine) output(att *state.Attempt) (*output, func(), error) {
	dir := e.LogDir
	if dir == "" {
		dir = e.Store.Path() + ".logs"
	}
	var log io.Writer
	closeLog := func() {}
	name := fmt.Sprintf("%04d-%s.log", att.ID, att.Event)
	err := safefile.MkdirPrivate(dir)
	var f *os.File
	if err == nil {
		f, err = safefile.OpenIn(dir, name, os.O_WRONLY|os.O_APPEND)
	}
	if errors.Is(err, safefile.ErrNotRegular) {
		return nil, nil, fmt.Errorf("%w: attempt log: %w", state.ErrNotAFile, err)
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

func (e *Engine) env(ctx context.Context, att *state.Attempt, out *output) *steps.Env {
	return &steps.Env{
		Boxes:  e.Boxes,
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
func (e *Engine) forced() map[string]bool {
	for k, v := range e.Force {
		if v {
			e.record("override", fmt.Sprintf("guard %s overridden by %s", k, e.Who))
		}
	}
	return e.Force
}

// facts scopes the step facts to the cycle and writes them through to the
// state at once, so a crash right after a step learnt something keeps it.
type facts struct {
	store   *state.Store
	prefix  string
	attempt uint64
	step    func() string
}

func (f *facts) Get(key string) (string, bool) {
	v, ok, err := f.store.Fact(f.prefix + key)
	return v, ok && err == nil
}

func (f *facts) Set(key, value string) error {
	if err := f.store.SetFact(f.prefix+key, value); err != nil {
		return err
	}
	return f.store.UpdateStep(f.attempt, f.step(), func(r *state.StepRecord) error {
		if r.Facts == nil {
			r.Facts = map[string]string{}
		}
		r.Facts[key] = value
		return nil
	})
}

func (f *facts) Delete(key string) error { return f.store.DeleteFact(f.prefix + key) }

// factsPrefix scopes facts to a cycle: a second cycle must not see the
// boot id or pip list of the first.
func factsPrefix(cycle int) string { return fmt.Sprintf("c%d/", cycle) }

// ReadOnlyFacts reads the facts of cycle from store and keeps what is set
// in memory: for running checks (plan) without changing the record.
func ReadOnlyFacts(store *state.Store, cycle int) steps.Facts {
	return &readFacts{store: store, prefix: factsPrefix(cycle), set: map[string]*string{}}
}

type readFacts struct {
	store  *state.Store
	prefix string
	mu     sync.Mutex
	set    map[string]*string // nil value: deleted
}

func (f *readFacts) Get(key string) (string, bool) {
	f.mu.Lock()
	v, ok := f.set[key]
	f.mu.Unlock()
	if ok {
		if v == nil {
			return "", false
		}
		return *v, true
	}
	s, ok, err := f.store.Fact(f.prefix + key)
	return s, ok && err == nil
}

func (f *readFacts) Set(key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set[key] = &value
	return nil
}

func (f *readFacts) Delete(key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set[key] = nil
	return nil
}

// pending reports whether an attempt in this status still needs resume or rollback.
func pending(status string) bool {
	switch status {
	case state.Running, state.Interrupted, state.Failed, state.RollingBack:
		return true
	}
	return false
}

// currentStep is the first step not done (or the last one).
func currentStep(a *state.Attempt) string {
	for _, s := range a.Steps {
		if s.Status != state.Done {
			return s.ID
		}
	}
	if len(a.Steps) == 0 {
		return ""
	}
	return a.Steps[len(a.Steps)-1].ID
}

// transient reports whether waiting may help: a dropped connection or a box
// that did not answer, but not a refused host key, which stays refused.
func transient(err error) bool {
	if errors.Is(err, boxes.ErrUnknownHostKey) || errors.Is(err, boxes.ErrHostKeyChanged) {
		return false
	}
	return unknown(err)
}

func unknown(err error) bool {
	return errors.Is(err, boxes.ErrOutcomeUnknown) || errors.Is(err, boxes.ErrUnreachable)
}

func boxLabel(box string) string {
	if box == "" {
		return "operator"
	}
	return box
}
