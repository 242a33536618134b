package fsm

import (
	"errors"
	"strings"

	"boxswap/boxes"
	"boxswap/steps"
)

var (
	// ErrStopped is returned when the operator asked to stop (a first
	// SIGINT or SIGTERM) and the engine stopped at a safe point: between
	// steps, or in a step's wait (a connection attempt, a backoff, a reboot
	// wait), which the stop ends. It is boxes.ErrStopped.
	ErrStopped = boxes.ErrStopped
	// ErrPending is returned by next when the last transition did not
	// finish: it must be resumed or rolled back first.
	ErrPending = errors.New("a transition is pending")
	// ErrNothingToRollBack is returned by rollback when the last
	// transition finished or was already rolled back.
	ErrNothingToRollBack = errors.New("nothing to roll back")
	// ErrNothingToResume is returned by resume when no transition is pending.
	ErrNothingToResume = errors.New("nothing to resume")
	// ErrCycleDone is returned by next at the end of a cycle when
	// boxes.yaml does not ask for a new one.
	ErrCycleDone = errors.New("the upgrade cycle is done")
	// ErrConfigChanged is returned when boxes.yaml no longer matches the
	// cycle or transition in progress.
	ErrConfigChanged = errors.New("boxes.yaml changed")
	// ErrRollbackStopped is returned when rollback reaches a step that
	// cannot be undone.
	ErrRollbackStopped = errors.New("rollback stopped at an irreversible step")
	// ErrUnknownPhase is returned when the state names a phase this
	// boxswap does not know: another tool's file, or a newer boxswap's.
	ErrUnknownPhase = errors.New("unknown phase")
	// ErrNoSuchStep is returned when the operator names a step (e.g.
	// --stop-before) that the transition does not have.
	ErrNoSuchStep = errors.New("no such step")
	// ErrMovedBack is returned when the check through the production
	// address failed after the move and production was moved back to the
	// old box (the window's steps undone); the transition is failed and
	// resume runs the window again.
	ErrMovedBack = errors.New("production moved back")
)

// StepError is a step's failure as Next, Resume and Rollback return it:
// the step's ID and its box before the step's own message, so that one
// line says which step failed, where, and why; what that message already
// says (the step of a gate, the box it begins with) is not said twice. It
// unwraps to the step's error.
type StepError struct {
	Step, Box string // Box is "" for the operator's steps (gates)
	Err       error
}

func (e *StepError) Error() string {
	msg := e.Err.Error()
	prefix := e.Step
	if strings.Contains(msg, e.Step) {
		prefix = ""
	}
	if e.Box != "" && !strings.HasPrefix(msg, e.Box) {
		prefix = strings.TrimSpace(prefix + " on " + e.Box)
	}
	if prefix == "" {
		return msg
	}
	return prefix + ": " + msg
}

func (e *StepError) Unwrap() error { return e.Err }

// exitCode finds the remote exit status in a step's error, if it has one.
func exitCode(err error) (int, bool) {
	var ee *steps.ExitError
	if errors.As(err, &ee) {
		return ee.Code, true
	}
	return 0, false
}
