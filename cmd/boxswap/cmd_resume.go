package main

import (
	"context"

	"github.com/spf13/cobra"

	"boxswap/fsm"
	"boxswap/state"
)

type resumeOptions struct {
	// StopBefore stops the transition before the named step (interrupted).
	StopBefore string
}

func newResumeCommand(g *globalOptions) *cobra.Command {
	var opts resumeOptions
	cmd := &cobra.Command{
		Use:   "resume",
		Short: "Go on with a transition that stopped or failed",
		Long: `resume goes on with the pending transition: steps recorded done are
skipped, a step found running (its outcome unknown) is checked first and
applied again only if its effect is not in place. boxes.yaml must plan the
same steps as when the transition began.`,
		Example:     "  boxswap resume",
		Annotations: map[string]string{annSteps: "yes"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runResume(cmd.Context(), opts, g)
		},
	}
	addStopBefore(cmd, &opts.StopBefore)
	return cmd
}

func runResume(ctx context.Context, opts resumeOptions, g *globalOptions) error {
	return runEngine(ctx, g, engineVerb{name: "resume", run: func(e *fsm.Engine, ctx context.Context) (*state.Attempt, error) {
		e.StopBefore = opts.StopBefore
		return e.Resume(ctx)
	}})
}
