package fsm

import (
	"context"
	"errors"
	"syscall"
	"time"

	"boxswap/boxes"
)

// StepInfo names a step as a Reporter shows it.
type StepInfo struct {
	Index, Total int // 1-based position in the transition, and its length
	ID           string
	Box          string // "" for the operator (a gate)
	Text         string
	Undo         bool // the step is being undone (rollback)
}

// Outcome is how a step (or its undo) ended, as Reporter.StepDone tells it.
type Outcome string

// Step outcomes given to Reporter.StepDone.
const (
	OutcomeDone    Outcome = "done"    // applied, or undone for a rollback
	OutcomeSkipped Outcome = "skipped" // its check said it was already done
	OutcomeFailed  Outcome = "failed"  // it returned an error
	OutcomeUnknown Outcome = "unknown" // the connection dropped or it was interrupted: resume checks it
	// Nothing reached the box (so nothing ran): the connection was refused,
	// or the box did not answer; resume tries again.
	OutcomeRefused     Outcome = "refused"
	OutcomeUnreachable Outcome = "unreachable"
	// OutcomeStopped: the operator's stop ended the step's wait.
	OutcomeStopped Outcome = "stopped"
)

// outcomeOf names how a step that returned err ended, for the operator.
func outcomeOf(ctx context.Context, err error) Outcome {
	switch {
	case err == nil:
		return OutcomeDone
	case errors.Is(err, ErrStopped):
		return OutcomeStopped
	case errors.Is(err, boxes.ErrOutcomeUnknown) || ctx.Err() != nil:
		return OutcomeUnknown
	case errors.Is(err, boxes.ErrUnreachable) && errors.Is(err, syscall.ECONNREFUSED):
		return OutcomeRefused
	case errors.Is(err, boxes.ErrUnreachable):
		return OutcomeUnreachable
	}
	return OutcomeFailed
}

// Reporter is told what the engine does, as it happens: the events of a
// run, typed. fsm renders nothing itself; the CLI's reporters (plain lines,
// a terminal's live lines) live in cmd/boxswap. The engine calls it from
// the goroutine running the transition, except Line and Partial, which a
// step may call from the goroutines copying remote output: implementations
// must be safe for concurrent use. A Reporter must never block the engine
// for long: it writes to a terminal or a pipe.
type Reporter interface {
	// StepStart: a step (or its undo) begins.
	StepStart(s StepInfo)
	// StepDone: it ended, with an outcome, after took; err is nil unless failed.
	StepDone(s StepInfo, outcome Outcome, took time.Duration, err error)
	// Line is one complete line of a box's remote output, escape codes
	// and control characters (but tabs) removed.
	Line(box, text string)
	// Partial is a line a box is still rewriting (a progress bar drawn
	// with \r): the latest text replaces the previous one.
	Partial(box, text string)
	// Progress says what a long step waits for and for how long; it
	// replaces the previous progress of the same step.
	Progress(text string)
	// Say is a line from the engine itself (start, end, a retry, a warning).
	Say(text string)
}

// discard is the Reporter of an Engine given none: the attempt's log
// file still gets every line.
type discard struct{}

func (discard) StepStart(StepInfo)                               {}
func (discard) StepDone(StepInfo, Outcome, time.Duration, error) {}
func (discard) Line(string, string)                              {}
func (discard) Partial(string, string)                           {}
func (discard) Progress(string)                                  {}
func (discard) Say(string)                                       {}
