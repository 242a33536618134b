package main

import (
	"context"

	"github.com/spf13/cobra"
)

func newCompletionCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print the shell completion script for bash, zsh or fish",
		Long: `completion prints a script that makes the shell complete boxswap's verbs
and flags. Load it in the running shell, or install it where the shell
looks for completions.`,
		Example: `  source <(boxswap completion bash)
  boxswap completion bash > /etc/bash_completion.d/boxswap
  boxswap completion zsh > "${fpath[1]}/_boxswap"
  boxswap completion fish > ~/.config/fish/completions/boxswap.fish`,
		ValidArgs:             []string{"bash", "zsh", "fish"},
		Args:                  cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCompletion(cmd.Context(), cmd.Root(), args[0], g)
		},
	}
}

func runCompletion(_ context.Context, root *cobra.Command, shell string, g *globalOptions) error {
	switch shell {
	case "bash":
		return root.GenBashCompletionV2(g.stdout, true)
	case "zsh":
		return root.GenZshCompletion(g.stdout)
	case "fish":
		return root.GenFishCompletion(g.stdout, true)
	}
	return usagef("completion: %q is not bash, zsh or fish", shell)
}
