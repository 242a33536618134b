package main

import (
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"boxswap/internal/text"
)

func newRootCommand(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "boxswap [-c boxes.yaml] [--state FILE] [--json] [--yes] VERB",
		Short: "Upgrade a production/development pair of servers by swapping their functions",
		Long: `boxswap upgrades the release of a production/development pair of servers
by swapping their functions: upgrade the development box, move production
onto it, upgrade the idle old production box, move production back, tidy up.
Each of these transitions is a list of idempotent steps run over SSH; the
progress is recorded in a state file, so a run stopped anywhere resumes.

A cycle, one verb at a time:
  boxswap check            boxes.yaml, both boxes, box-to-box ssh
  boxswap where            phase, next transition, who holds what
  boxswap plan             the next transition's steps and commands
  boxswap next             run it (asks at the gates; --yes approves them)
  boxswap resume           go on after a stop or a failure
  boxswap rollback         undo the steps of an unfinished transition

boxes.yaml is loaded and checked in full before anything else; the state
file (default: boxswap.db beside boxes.yaml) is only read by where, log and
plan. Only one next, resume or rollback runs at a time (the operator lock,
<state>.lock).

` + exitStatusHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
		// A bare "boxswap" prints the help, and that is not an error; an
		// unknown verb is.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			g.started = true
			return g.validate(cmd)
		},
	}
	root.Version = buildVersion().String()
	root.SetVersionTemplate("boxswap {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &usageError{err.Error()}
	})
	f := root.PersistentFlags()
	f.StringVarP(&g.Config, "config", "c", "boxes.yaml", "the `boxes.yaml` describing the pair")
	f.StringVar(&g.State, "state", "", "the state `FILE`, or etcd://HOST:PORT[,…]/PREFIX (default: boxes.yaml's state.url, else boxswap.db beside it)")
	g.EtcdOpts.addFlags(f)
	f.BoolVar(&g.JSON, "json", false, "print JSON (where, plan, status, sizes, log, check, pairs); errors too")
	f.BoolVar(&g.Yes, "yes", false, "approve the gates of next and resume without asking")
	f.BoolVar(&g.Plain, "plain", false, "print progress as plain lines, even on a terminal (so does NO_COLOR)")
	f.StringArrayVar(&g.Force, "force", nil, "override the named `GUARD` (e.g. max-delete); repeatable, recorded")

	root.AddCommand(
		newWhereCommand(g),
		newNextCommand(g),
		newResumeCommand(g),
		newRollbackCommand(g),
		newPlanCommand(g),
		newStatusCommand(g),
		newSizesCommand(g),
		newLogCommand(g),
		newCheckCommand(g),
		newGraphCommand(g),
		newUnlockCommand(g),
		newMarkDoneCommand(g),
		newStateCommand(g),
		newPairsCommand(g),
		newVersionCommand(g),
		newCompletionCommand(g),
		newGenManCommand(g),
	)
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetUsageTemplate(usageTemplate)
	return root
}

// usageTemplate is cobra's own, with the flags' help wrapped to fit 80
// columns (text.Width): --help is read on a terminal.
var usageTemplate = strings.NewReplacer(
	".LocalFlags.FlagUsages", "(.LocalFlags.FlagUsagesWrapped "+strconv.Itoa(text.Width)+")",
	".InheritedFlags.FlagUsages", "(.InheritedFlags.FlagUsagesWrapped "+strconv.Itoa(text.Width)+")",
).Replace((&cobra.Command{}).UsageTemplate())
