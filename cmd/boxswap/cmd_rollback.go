package main

import (
	"context"

	"github.com/spf13/cobra"

	"boxswap/fsm"
	"boxswap/state"
)

type rollbackOptions struct{}

func newRollbackCommand(g *globalOptions) *cobra.Command {
	var opts rollbackOptions
	return &cobra.Command{
		Use:   "rollback",
		Short: "Undo the done steps of a transition that did not finish",
		Long: `rollback undoes, in reverse order, the done steps of the pending
(failed or interrupted) transition, recording each, so a rollback stopped
half way is finished by running rollback again. It stops before a step that
cannot be undone (the reboot into the new release) and says so; the phase
does not change. A finished transition is never undone.`,
		Example:     "  boxswap rollback",
		Annotations: map[string]string{annSteps: "yes"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRollback(cmd.Context(), opts, g)
		},
	}
}

func runRollback(ctx context.Context, _ rollbackOptions, g *globalOptions) error {
	return runEngine(ctx, g, engineVerb{name: "rollback", run: func(e *fsm.Engine, ctx context.Context) (*state.Attempt, error) {
		return e.Rollback(ctx)
	}})
}
