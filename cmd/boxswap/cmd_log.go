package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

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
	// Wide does not fit the text to 80 columns.
	Wide bool
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
	cmd.Flags().BoolVar(&opts.All, "all", false, "show the steps of every attempt, not only this cycle's")
	addWide(cmd, &opts.Wide)
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
		return printTimeline(g.stdout, store, opts.Wide)
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
			printLog(g.stdout, out, opts.Wide)
		}
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		return follow(ctx, store, out, newFollowPrinter(g, opts.Wide), followEvery)
	}
	if g.JSON {
		return g.printJSON(out)
	}
	printLog(g.stdout, out, opts.Wide)
	return nil
}

// printLog is log's text for a person, fitted to 80 columns (text.Width)
// unless wide: a step's error or warning goes on its own lines under the
// step, wrapped; with wide, at the end of the step's row, as long as it is.
func printLog(w io.Writer, l logJSON, wide bool) {
	if len(l.History) == 0 && len(l.Attempts) == 0 {
		fmt.Fprintln(w, "nothing has run yet: boxswap plan shows the first transition")
		return
	}
	printHistory(w, l.History, wide)
	printAttempts(w, l.Attempts, wide)
}

// printHistory lists the history lines, each detail wrapped under itself.
func printHistory(w io.Writer, history []state.Event, wide bool) {
	fmt.Fprintln(w, "history:")
	if wide {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, e := range history {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), e.Who, e.Kind, e.Detail)
		}
		tw.Flush()
		return
	}
	whoW, kindW := 0, 0
	for _, e := range history {
		whoW = max(whoW, utf8.RuneCountInString(text.Cut(e.Who, 16)))
		kindW = max(kindW, utf8.RuneCountInString(e.Kind))
	}
	for _, e := range history {
		who := text.Cut(e.Who, 16)
		head := fmt.Sprintf("  %s  %s%s  %s%s  ", e.Time.Local().Format(time.DateTime),
			who, strings.Repeat(" ", whoW-utf8.RuneCountInString(who)), e.Kind, strings.Repeat(" ", kindW-utf8.RuneCountInString(e.Kind)))
		rest := strings.Repeat(" ", utf8.RuneCountInString(head))
		if len(rest) > text.Width/2 {
			rest = "      "
		}
		for _, line := range text.Wrap(oneLine(e.Detail, true), text.Width, head, rest) {
			fmt.Fprintln(w, strings.TrimRight(line, " "))
		}
	}
}

func printAttempts(w io.Writer, attempts []state.Attempt, wide bool) {
	width := text.Width
	if wide {
		width = 1 << 30
	}
	for _, a := range attempts {
		fmt.Fprintln(w)
		head := fmt.Sprintf("attempt %d: %s (cycle %d, %s to %s) %s", a.ID, a.Event, a.Cycle, a.From, a.To, a.Status)
		when := fmt.Sprintf("started %s by %s, took %s", a.Started.Local().Format(time.DateTime), a.Command, duration(a.Started, a.Ended))
		if wide {
			fmt.Fprintf(w, "%s, %s\n", head, when)
		} else {
			// Two lines: the date is not cut in two.
			para := paragraph(w, false)
			para(head, "", "  ")
			para(when, "  ", "  ")
		}
		if a.Error != "" {
			for _, line := range text.Wrap("error at "+a.FailedStep+": "+oneLine(a.Error, wide), width, "  ", "    ") {
				fmt.Fprintln(w, line)
			}
			printTail(w, a)
		}
		var rows bytes.Buffer
		tw := tabwriter.NewWriter(&rows, 0, 0, 2, ' ', 0)
		if wide {
			fmt.Fprintln(tw, "  STATUS\tSTEP\tBOX\tTRIES\tTIME\tERROR")
		} else {
			fmt.Fprintln(tw, "  STATUS\tSTEP\tBOX\tTRIES\tTIME")
		}
		var notes []string
		for _, s := range a.Steps {
			status, note := s.Status, oneLine(s.Error, wide)
			if w := steps.Warning(s.Facts); note == "" && w != "" {
				note = "warning: " + oneLine(w, wide)
			}
			if m := s.Marked; m != nil {
				// Done by hand: who and why say more than the last error.
				was := string(m.Was)
				if s.Error != "" {
					was += ": " + s.Error
				}
				status, note = "marked", oneLine(fmt.Sprintf("marked done by %s: %s (was %s)", m.Who, m.Reason, was), wide)
			}
			row := fmt.Sprintf("  %s\t%s\t%s\t%d\t%s", status, s.ID, steps.BoxLabel(s.Box), s.Attempts, duration(s.Started, s.Ended))
			if wide {
				row += "\t" + note
			}
			fmt.Fprintln(tw, row)
			notes = append(notes, note)
		}
		tw.Flush()
		for i, line := range strings.Split(strings.TrimSuffix(rows.String(), "\n"), "\n") {
			fmt.Fprintln(w, strings.TrimRight(line, " "))
			if i > 0 && !wide && notes[i-1] != "" {
				for _, n := range text.Wrap(notes[i-1], width, "      ", "      ") {
					fmt.Fprintln(w, n)
				}
			}
		}
	}
}

// printTimeline is log's default text: the history, earlier cycles'
// attempts on one line each (read from their summaries, without decoding
// their steps), and the current cycle's attempts with their steps.
func printTimeline(w io.Writer, store state.Backend, wide bool) error {
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
		printLog(w, l, wide)
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
	printLog(w, logJSON{History: l.History}, wide)
	if first > 0 {
		fmt.Fprintf(w, "\nearlier cycles (boxswap log --all shows their steps):\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, a := range sums[:first] {
			if wide {
				fmt.Fprintf(tw, "  attempt %d\t%s\tcycle %d\t%s\t%d/%d steps done\tstarted %s by %s\ttook %s\n",
					a.ID, a.Event, a.Cycle, a.Status, a.Done, a.Steps, a.Started.Local().Format(time.DateTime), a.Command, duration(a.Started, a.Ended))
				continue
			}
			fmt.Fprintf(tw, "  attempt %d\t%s\tcycle %d\t%s\t%d/%d steps done\t%s\n",
				a.ID, a.Event, a.Cycle, a.Status, a.Done, a.Steps, a.Started.Local().Format(time.DateOnly))
		}
		tw.Flush()
	}
	printAttempts(w, l.Attempts, wide)
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

// oneLine keeps a text on one line, cut to 160 characters (two lines of
// 80) unless wide; log --json has the whole text.
func oneLine(s string, wide bool) string {
	s = strings.Join(strings.Fields(s), " ")
	if wide {
		return s
	}
	return text.Cut(s, 160)
}
