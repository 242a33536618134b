package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"boxswap/fsm"
	"boxswap/state"
)

type resumeOptions struct {
	// StopBefore stops the transition before the named step (interrupted).
	StopBefore string
	// Replan re-plans the pending transition from boxes.yaml as it is now.
	Replan bool
}

func newResumeCommand(g *globalOptions) *cobra.Command {
	var opts resumeOptions
	cmd := &cobra.Command{
		Use:   "resume",
		Short: "Go on with a transition that stopped or failed",
		Long: `resume goes on with the pending transition: steps recorded done are
skipped, a step found running (its outcome unknown) is checked first and
applied again only if its effect is not in place. boxes.yaml must plan the
same steps, with the same commands, as when the transition began; when it
does not, resume shows the difference and changes nothing.

--replan takes boxes.yaml as it is now for the steps not done yet, records
the new plan (the file, the difference, who) in the state and the history,
then goes on. Done steps keep their record and are undone, if ever, with
the commands recorded when they ran; a done step the new file would run
otherwise is refused: boxswap rollback first, then boxswap next.`,
		Example: `  boxswap resume
  boxswap resume --replan    # after fixing boxes.yaml mid-transition`,
		Annotations: map[string]string{annSteps: "yes"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runResume(cmd.Context(), opts, g)
		},
	}
	addStopBefore(cmd, &opts.StopBefore)
	cmd.Flags().BoolVar(&opts.Replan, "replan", false, "re-plan the pending transition's remaining steps from boxes.yaml as it is now (recorded)")
	return cmd
}

func runResume(ctx context.Context, opts resumeOptions, g *globalOptions) error {
	return runEngine(ctx, g, engineVerb{name: "resume", run: func(e *fsm.Engine, ctx context.Context) (*state.Attempt, error) {
		e.StopBefore = opts.StopBefore
		if opts.Replan {
			diff, err := e.Replan()
			if err != nil {
				return nil, err
			}
			if len(diff) == 0 {
				fmt.Fprintln(g.stdout, "boxes.yaml plans the pending transition as recorded; nothing to re-plan")
			} else {
				fmt.Fprintf(g.stdout, "re-planned from %s (recorded in the history):\n%s\n", e.Config.File, strings.Join(diff, "\n"))
			}
		}
		return e.Resume(ctx)
	}})
}
