package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"boxswap/internal/text"
	"boxswap/state"
	"boxswap/steps"
)

type logOptions struct {
	Follow bool
	// All shows the steps of every attempt; by default only those of the
	// current cycle, earlier attempts on one line each.
	All bool
}

func newLogCommand(g *globalOptions) *cobra.Command {
	var opts logOptions
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Show the history and every transition attempt with its steps",
		Long: `log reads the state file (never the network): the history (cycles,
attempts, approvals, overrides, rollbacks, by whom), then each transition
attempt with its event, status, start and duration, and each of its steps
with status, number of tries, duration and last error. The full output of
each attempt is in the logs folder beside the state file.

With --follow, log then watches the state (read-only, twice a second)
while next, resume or rollback runs in another terminal, printing each
step as it starts and ends and each new history line, and exits when the
transition ends (or on Ctrl-C). If none is running, it waits for one. With
--json, --follow prints one JSON object per line.`,
		Example: `  boxswap log
  boxswap log --json | jq '.attempts[-1].steps[] | select(.status != "done")'
  boxswap log --follow`,
		Annotations: map[string]string{annJSON: "yes"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLog(cmd.Context(), opts, g)
		},
	}
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "then print the running transition's progress until it ends")
	cmd.Flags().BoolVar(&opts.All, "all", false, "show the steps of every attempt, not only those of the current cycle (--json always has them all)")
	return cmd
}

type logJSON struct {
	History   []state.Event    `json:"history"`
	Attempts  []state.Attempt  `json:"attempts"`
	Approvals []state.Approval `json:"approvals"`
}

func runLog(ctx context.Context, opts logOptions, g *globalOptions) error {
	if _, err := g.loadConfig(); err != nil {
		return err
	}
	store, err := g.openStore()
	if err != nil {
		return err
	}
	if !g.JSON && !opts.Follow && !opts.All {
		return printTimeline(g.stdout, store)
	}
	var out logJSON
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
	if opts.Follow {
		if !g.JSON {
			printLog(g.stdout, out)
		}
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		return follow(ctx, store, out, newFollowPrinter(g), followEvery)
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
	printAttempts(w, l.Attempts)
}

func printAttempts(w io.Writer, attempts []state.Attempt) {
	for _, a := range attempts {
		fmt.Fprintf(w, "\nattempt %d: %s (cycle %d, %s to %s) %s, started %s by %s, took %s\n",
			a.ID, a.Event, a.Cycle, a.From, a.To, a.Status, a.Started.Local().Format(time.DateTime), a.Command, duration(a.Started, a.Ended))
		if a.Error != "" {
			fmt.Fprintf(w, "  error at %s: %s\n", a.FailedStep, a.Error)
			printTail(w, a)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  STATUS\tSTEP\tBOX\tTRIES\tTIME\tERROR")
		for _, s := range a.Steps {
			status, note := s.Status, oneLine(s.Error)
			if w := steps.Warning(s.Facts); note == "" && w != "" {
				note = "warning: " + oneLine(w)
			}
			if m := s.Marked; m != nil {
				// Done by hand: who and why say more than the last error.
				status, note = "marked", oneLine(fmt.Sprintf("marked done by %s: %s (was %s: %s)", m.Who, m.Reason, m.Was, s.Error))
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\n", status, s.ID, steps.BoxLabel(s.Box), s.Attempts, duration(s.Started, s.Ended), note)
		}
		tw.Flush()
	}
}

// printTimeline is log's default text: the history, earlier cycles'
// attempts on one line each (read from their summaries, without decoding
// their steps), and the current cycle's attempts with their steps.
func printTimeline(w io.Writer, store state.Backend) error {
	var l logJSON
	var err error
	if l.History, err = store.History(); err != nil {
		return err
	}
	sums, err := store.Summaries()
	if err != nil {
		return err
	}
	if len(sums) == 0 {
		printLog(w, l)
		return nil
	}
	cycle := sums[len(sums)-1].Cycle
	first := len(sums)
	for first > 0 && sums[first-1].Cycle == cycle {
		first--
	}
	if l.Attempts, err = store.AttemptsFrom(sums[first].ID); err != nil {
		return err
	}
	printLog(w, logJSON{History: l.History})
	if first > 0 {
		fmt.Fprintf(w, "\nearlier cycles (boxswap log --all shows their steps):\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, a := range sums[:first] {
			fmt.Fprintf(tw, "  attempt %d	%s	cycle %d	%s	%d/%d steps done	started %s by %s	took %s\n",
				a.ID, a.Event, a.Cycle, a.Status, a.Done, a.Steps, a.Started.Local().Format(time.DateTime), a.Command, duration(a.Started, a.Ended))
		}
		tw.Flush()
	}
	printAttempts(w, l.Attempts)
	return nil
}

// printTail shows the last output of the attempt's failed step: what the
// operator's one line of error leaves out.
func printTail(w io.Writer, a state.Attempt) {
	for _, s := range a.Steps {
		if s.ID != a.FailedStep || len(s.Tail) == 0 {
			continue
		}
		fmt.Fprintf(w, "  last output of %s on %s:\n", s.ID, steps.BoxLabel(s.Box))
		for _, l := range s.Tail {
			fmt.Fprintf(w, "    | %s\n", text.Printable(l))
		}
	}
}

// oneLine keeps a table row on one line; log --json has the whole text.
func oneLine(s string) string { return text.Clip(strings.Join(strings.Fields(s), " "), 160) }
