package fsm

import (
	"context"
	"fmt"
	"strings"

	"boxswap/state"
	"boxswap/steps"
)

// revert undoes, in reverse, the done steps before step i back to the
// step named to, each recorded as a rollback's are, then records the
// attempt failed at step i: the check through the production address
// failed after the move, so production goes back to the old box (the
// address released on the new one, taken again by the old one, its
// writers started again). Resume runs those steps again.
func (e *Engine) revert(ctx context.Context, x *executor, out *output, att *state.Attempt, planned []steps.Step, i int, to string, cause error) (*state.Attempt, error) {
	failed := planned[i].ID()
	j := -1
	for k := range planned[:i] {
		if planned[k].ID() == to {
			j = k
		}
	}
	if j < 0 {
		return e.haltNotify(ctx, out, att, state.Failed, failed, cause)
	}
	out.say("%s failed: moving production back (undoing the steps from %s on)", failed, to)
	var undone []string
	for k := i - 1; k >= j; k-- {
		if att.Steps[k].Status != state.StepDone {
			continue
		}
		if err := x.Do(ctx, k, planned[k], backward); err != nil {
			return e.haltNotify(ctx, out, att, state.Failed, failed, fmt.Errorf(
				"%w; moving production back failed at %s: %w; production may be served by no box: fix that step's box, then run boxswap rollback (or resume)",
				cause, planned[k].ID(), err))
		}
		undone = append(undone, planned[k].ID())
	}
	return e.haltNotify(ctx, out, att, state.Failed, failed, fmt.Errorf(
		"%w: %w; undone: %s; production is back where it was before %s: fix what the check says, then run boxswap resume (it runs them again)",
		ErrMovedBack, cause, strings.Join(undone, ", "), to))
}
