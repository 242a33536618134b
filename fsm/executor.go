package fsm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"boxswap/boxes"
	"boxswap/state"
	"boxswap/steps"
)

// ErrNotConfirmed is returned when a step's Apply succeeded but its Check,
// run right after, does not say done: the exit status said yes, the box
// says otherwise.
var ErrNotConfirmed = errors.New("applied, but not confirmed")

// ErrLifecycle is returned when a step record would make a move its
// lifecycle does not have: a bug, or a state file changed under the run.
var ErrLifecycle = errors.New("step lifecycle")

// The executor moves one step through its lifecycle, one state transaction
// per move:
//
//	pending → running → done | failed | unknown
//	done    → undoing → undone | undo-failed
//
// A check that finds the step done (or fails, or cannot reach the box)
// before anything was applied ends it in one move, without running: a
// check changes nothing. A step failed, unknown or undone is run forward
// again as a pending one (resume); one running, failed or undo-failed is
// undone as a done one (rollback). Two ends are not statuses of their own,
// so that a state file reads as before: unknown stays running with its
// error (resume checks it first, as it does a step found running after a
// crash: the same case), undo-failed stays undoing with its error
// (rollback undoes it again).
var lifecycle = map[state.StepStatus][]state.StepStatus{
	state.Pending:     {state.StepRunning, state.StepDone, state.StepFailed},
	state.StepRunning: {state.StepRunning, state.StepDone, state.StepFailed, state.Undoing},
	state.StepFailed:  {state.StepRunning, state.StepDone, state.StepFailed, state.Undoing},
	state.Undone:      {state.StepRunning, state.StepDone, state.StepFailed},
	state.StepDone:    {state.Undoing},
	state.Undoing:     {state.Undoing, state.Undone},
}

// direction is what Do runs of a step: Apply (forward) or Undo (rollback).
type direction bool

const (
	forward  direction = false
	backward direction = true
)

// executor runs the steps of one attempt, forward or backward, recording
// each in the state before and after it acts. The engine decides which
// steps run, in what order, and when to halt; the executor, how one runs.
type executor struct {
	store   state.Backend
	att     *state.Attempt
	out     *output
	env     *steps.Env
	stop    <-chan struct{}
	retries int
	backoff time.Duration
}

// stepRun is one Do: what has been recorded of it so far.
type stepRun struct {
	rec     *state.StepRecord
	info    StepInfo
	began   time.Time
	running bool // recorded running (or undoing) in this Do
}

// result is how one Do ended.
type result struct {
	outcome Outcome
	why     string // what Check saw last
	err     error
}

// Do runs step i of the attempt, s, in direction dir, and records its end.
// The error is the step's (ErrStopped, a remote failure, ErrNotConfirmed…)
// or the state's when a record could not be written.
func (x *executor) Do(ctx context.Context, i int, s steps.Step, dir direction) error {
	r := &stepRun{rec: &x.att.Steps[i], began: time.Now()}
	r.info = StepInfo{Index: i + 1, Total: len(x.att.Steps), ID: r.rec.ID, Box: r.rec.Box, Text: r.rec.Text, Undo: bool(dir)}
	x.out.stepStart(r.info)
	var res result
	var err error
	if dir == backward {
		res, err = x.undo(ctx, r, s)
	} else {
		res, err = x.apply(ctx, r, s)
	}
	if err != nil { // a record could not be written
		x.out.takeTail()
		return err
	}
	tail := x.out.takeTail()
	x.out.stepDone(r.info, res.outcome, time.Since(r.began), res.err)
	if err := x.end(r, dir, res, tail); err != nil && res.err == nil {
		return err
	}
	if res.err == nil || errors.Is(res.err, ErrStopped) || errors.Is(res.err, ErrRollbackStopped) {
		return res.err
	}
	return &StepError{Step: r.rec.ID, Box: r.rec.Box, Err: res.err}
}

// apply runs the forward lifecycle: check, record running, apply, check
// again; a step whose outcome is unknown and that is safe to repeat is
// tried again, after a backoff, up to retries times.
func (x *executor) apply(ctx context.Context, r *stepRun, s steps.Step) (result, error) {
	d := s.Describe()
	for try := 0; ; try++ {
		res, err := x.once(ctx, r, s, d)
		if err != nil || res.err == nil || !d.Retry || try >= x.retries || ctx.Err() != nil || !transient(res.err) {
			return res, err
		}
		if werr := x.wait(ctx, try, res.err); werr != nil {
			return result{outcome: OutcomeStopped, err: werr}, nil
		}
	}
}

// once is one try: check, then (unless done) record running, apply, and
// confirm with a check.
func (x *executor) once(ctx context.Context, r *stepRun, s steps.Step, d steps.Description) (result, error) {
	done, why, err := s.Check(ctx, x.env)
	switch {
	case err != nil:
		return failure(ctx, why, err), nil
	case done:
		x.out.say("    already done: %s", why)
		return result{outcome: OutcomeSkipped, why: why}, nil
	}
	if !r.running {
		// Recorded before the first Apply, not before Check: a step found
		// done costs one write, not two.
		err := x.move(r.rec, state.StepRunning, func(rec *state.StepRecord) {
			rec.Attempts, rec.Started, rec.Error = rec.Attempts+1, r.began, ""
		})
		if err != nil {
			return result{}, err
		}
		r.running = true
	}
	if err := s.Apply(ctx, x.env); err != nil {
		return failure(ctx, "", err), nil
	}
	if d.NoCheckAfter != "" {
		return result{outcome: OutcomeDone}, nil
	}
	return x.confirm(ctx, s), nil
}

// confirm runs Check after a successful Apply: the step is done only if
// Check now says so.
func (x *executor) confirm(ctx context.Context, s steps.Step) result {
	done, why, err := s.Check(ctx, x.env)
	switch {
	case err != nil:
		return failure(ctx, why, fmt.Errorf("applied, but the check after it could not run: %w", err))
	case !done:
		return failure(ctx, why, fmt.Errorf("%w: the step's commands succeeded, but check says: %s", ErrNotConfirmed, why))
	}
	return result{outcome: OutcomeDone, why: why}
}

func failure(ctx context.Context, why string, err error) result {
	return result{outcome: outcomeOf(ctx, err), why: why, err: err}
}

// wait says why a try is repeated and waits for the backoff; it returns
// an error wrapping ErrStopped when the operator stops meanwhile.
func (x *executor) wait(ctx context.Context, try int, err error) error {
	if stopped(x.stop) {
		return fmt.Errorf("%w: not trying again: %w", ErrStopped, err)
	}
	wait := x.backoff << try
	switch o := outcomeOf(ctx, err); o {
	case OutcomeUnknown:
		x.out.say("    outcome unknown (%v); checking again in %s", err, wait)
	default: // refused, unreachable: nothing ran
		x.out.say("    %s (%v); trying again in %s", o, err, wait)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-x.stop: // nil without a Stop: never ready
	case <-t.C:
	}
	if stopped(x.stop) {
		return fmt.Errorf("%w while waiting to try again: %w", ErrStopped, err)
	}
	return nil
}

// undo records the step undoing, then runs its Undo.
func (x *executor) undo(ctx context.Context, r *stepRun, s steps.Step) (result, error) {
	err := x.move(r.rec, state.Undoing, func(rec *state.StepRecord) { rec.Started, rec.Error = time.Now(), "" })
	if err != nil {
		return result{}, err
	}
	r.running = true
	err = s.Undo(ctx, x.env)
	if errors.Is(err, steps.ErrIrreversible) {
		err = fmt.Errorf("%w: %s: %w", ErrRollbackStopped, r.rec.ID, err)
	}
	if err != nil {
		return result{outcome: OutcomeFailed, err: err}, nil
	}
	return result{outcome: OutcomeDone}, nil
}

// end records how the Do ended, with the output's tail: one move.
func (x *executor) end(r *stepRun, dir direction, res result, tail []string) error {
	to, exit := endStatus(r.rec.Status, dir, res)
	return x.move(r.rec, to, func(rec *state.StepRecord) {
		rec.Tail = tail
		if dir == backward {
			if res.err != nil {
				rec.Error = "undo: " + steps.Detail(res.err)
			} else {
				rec.Ended = time.Now()
			}
			return
		}
		rec.Why = res.why
		if !r.running {
			rec.Attempts, rec.Started = rec.Attempts+1, r.began
		}
		if res.err != nil {
			rec.Error = steps.Detail(res.err)
		}
		if to == state.StepDone || to == state.StepFailed { // not unknown
			rec.Ended = time.Now()
		}
		if exit != nil {
			rec.Exit = exit
		}
	})
}

// endStatus is the status a Do that ended with res records, from status:
// an unknown outcome keeps it (running, or what a check found), an undo
// that failed stays undoing. exit is the remote exit code, when known.
func endStatus(status state.StepStatus, dir direction, res result) (state.StepStatus, *int) {
	if dir == backward {
		if res.err != nil {
			return state.Undoing, nil
		}
		return state.Undone, nil
	}
	switch res.outcome {
	case OutcomeDone, OutcomeSkipped:
		zero := 0
		return state.StepDone, &zero
	case OutcomeFailed:
		if code, ok := exitCode(res.err); ok {
			return state.StepFailed, &code
		}
		return state.StepFailed, nil
	}
	return status, nil // unknown, refused, unreachable, stopped: resume checks it
}

// move records the step's move to status to, with fill's other changes, in
// one transaction; the attempt in memory follows. A move the lifecycle
// does not have is refused (ErrLifecycle) and nothing is written.
func (x *executor) move(rec *state.StepRecord, to state.StepStatus, fill func(*state.StepRecord)) error {
	change := func(r *state.StepRecord) error {
		if r.Status != to && !slices.Contains(lifecycle[r.Status], to) {
			return fmt.Errorf("%w: %s cannot go from %s to %s", ErrLifecycle, r.ID, r.Status, to)
		}
		fill(r)
		r.Status = to
		return nil
	}
	if err := x.store.UpdateStep(x.att.ID, rec.ID, change); err != nil {
		return err
	}
	fill(rec)
	rec.Status = to
	return nil
}

// stopped reports whether stop is closed; a nil stop never is.
func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
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
