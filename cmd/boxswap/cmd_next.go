package main

import (
	"context"

	"github.com/spf13/cobra"

	"boxswap/fsm"
	"boxswap/state"
)

type nextOptions struct {
	// StopBefore stops the transition before the named step (interrupted).
	StopBefore string
}

func newNextCommand(g *globalOptions) *cobra.Command {
	var opts nextOptions
	cmd := &cobra.Command{
		Use:   "next",
		Short: "Run the next transition of the cycle",
		Long: `next takes the operator lock, starts the next transition (boxswap plan
shows it) and runs its steps one by one, recording each before and after.
A gate asks on the terminal ("type yes"); --yes approves it, and without a
terminal or --yes next stops at the gate.

A first Ctrl-C (or SIGTERM) stops at the next safe point, between steps; a
second one interrupts the running step, whose outcome resume checks again.`,
		Example: `  boxswap next
  boxswap --yes next         # approve the gate: the dev box was validated`,
		Annotations: map[string]string{annSteps: "yes"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runNext(cmd.Context(), opts, g)
		},
	}
	addStopBefore(cmd, &opts.StopBefore)
	return cmd
}

func runNext(ctx context.Context, opts nextOptions, g *globalOptions) error {
	return runEngine(ctx, g, engineVerb{name: "next", run: func(e *fsm.Engine, ctx context.Context) (*state.Attempt, error) {
		e.StopBefore = opts.StopBefore
		return e.Next(ctx)
	}})
}
