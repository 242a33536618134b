package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"boxswap/state"
)

type logOptions struct{}

func newLogCommand(g *globalOptions) *cobra.Command {
	var opts logOptions
	return &cobra.Command{
		Use:   "log",
		Short: "Show the history and every transition attempt with its steps",
		Long: `log reads the state file (never the network): the history (cycles,
attempts, approvals, overrides, rollbacks, by whom), then each transition
attempt with its event, status, start and duration, and each of its steps
with status, number of tries, duration and last error. The full output of
each attempt is in the logs folder beside the state file.`,
		Example: `  boxswap log
  boxswap log --json | jq '.attempts[-1].steps[] | select(.status != "done")'`,
		Annotations: map[string]string{annJSON: "yes"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLog(cmd.Context(), opts, g)
		},
	}
}

type logJSON struct {
	History   []state.Event    `json:"history"`
	Attempts  []state.Attempt  `json:"attempts"`
	Approvals []state.Approval `json:"approvals"`
}

func runLog(_ context.Context, _ logOptions, g *globalOptions) error {
	if _, err := g.loadConfig(); err != nil {
		return err
	}
	store := g.openStore()
	var out logJSON
	var err error
	if out.History, err = store.History(); err != nil {
		return err
	}
	if out.Attempts, err = store.Attempts(); err != nil {
		return err
	}
	if out.Approvals, err = store.Approvals(); err != nil {
		return err
	}
	if out.History == nil {
		out.History = []state.Event{}
	}
	if out.Attempts == nil {
		out.Attempts = []state.Attempt{}
	}
	if out.Approvals == nil {
		out.Approvals = []state.Approval{}
	}
	if g.JSON {
		return g.printJSON(out)
	}
	printLog(g.stdout, out)
	return nil
}

func printLog(w io.Writer, l logJSON) {
	if len(l.History) == 0 && len(l.Attempts) == 0 {
		fmt.Fprintln(w, "nothing has run yet: boxswap plan shows the first transition")
		return
	}
	fmt.Fprintln(w, "history:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range l.History {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), e.Who, e.Kind, e.Detail)
	}
	tw.Flush()
	for _, a := range l.Attempts {
		fmt.Fprintf(w, "\nattempt %d: %s (cycle %d, %s to %s) %s, started %s by %s, took %s\n",
			a.ID, a.Event, a.Cycle, a.From, a.To, a.Status, a.Started.Local().Format(time.DateTime), a.Command, duration(a.Started, a.Ended))
		if a.Error != "" {
			fmt.Fprintf(w, "  error at %s: %s\n", a.FailedStep, a.Error)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  STATUS\tSTEP\tBOX\tTRIES\tTIME\tERROR")
		for _, s := range a.Steps {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\n", s.Status, s.ID, orOperator(s.Box), s.Attempts, duration(s.Started, s.Ended), oneLine(s.Error))
		}
		tw.Flush()
	}
}

// oneLine keeps a table row on one line; log --json has the whole text.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 160 {
		s = string(r[:159]) + "…"
	}
	return s
}
