package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"boxswap/fsm"
)

type graphOptions struct{}

func newGraphCommand(g *globalOptions) *cobra.Command {
	var opts graphOptions
	return &cobra.Command{
		Use:   "graph",
		Short: "Print the phase machine as a Mermaid state diagram",
		Long: `graph prints the machine's phases and transitions as a Mermaid
stateDiagram-v2, from the same table the engine runs. It reads neither
boxes.yaml nor the state.`,
		Example: "  boxswap graph > docs/machine.mmd",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGraph(cmd.Context(), opts, g)
		},
	}
}

func runGraph(_ context.Context, _ graphOptions, g *globalOptions) error {
	_, err := fmt.Fprint(g.stdout, fsm.Graph())
	return err
}
