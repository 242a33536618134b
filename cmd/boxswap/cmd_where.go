package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"boxswap/boxes"
	"boxswap/fsm"
	"boxswap/internal/text"
	"boxswap/state"
	"boxswap/steps"
)

type whereOptions struct {
	// Wide does not fit the text to 80 columns.
	Wide bool
}

func newWhereCommand(g *globalOptions) *cobra.Command {
	var opts whereOptions
	cmd := &cobra.Command{
		Use:   "where",
		Short: "Show the phase, the next transition and who holds what",
		Long: `where reads the state file, never the network: the phase, the next
transition, the two boxes with their function and release at this phase, the
pending transition with its steps' statuses, and who holds the operator lock.
A missing state file is a fresh start; where does not create it. When
boxes.yaml no longer matches the cycle in progress (plan and next refuse
it, exit 7), where says so in a warning, and still exits 0.`,
		Example: `  boxswap where
  boxswap -c lab/boxes.yaml where --json | jq .phase`,
		Annotations: map[string]string{annJSON: "yes"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWhere(cmd.Context(), opts, g)
		},
	}
	addWide(cmd, &opts.Wide)
	return cmd
}

// whereJSON is fsm.View, the contract, plus the lock holder.
type whereJSON struct {
	*fsm.View
	Lock *lockJSON `json:"lock"`
	// Warnings say what plan and next would refuse: boxes.yaml no longer
	// matching the cycle in progress.
	Warnings []string `json:"warnings,omitempty"`
}

type lockJSON struct {
	state.Holder
	Alive bool `json:"alive"`
	// leased: the lock is an etcd lease, whose end says its holder is gone
	// wherever it ran.
	leased bool
}

func runWhere(_ context.Context, opts whereOptions, g *globalOptions) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	store, err := g.openStore()
	if err != nil {
		return err
	}
	v, err := fsm.Where(cfg, store)
	if err != nil {
		return err
	}
	holder, alive, err := store.ReadLock()
	if err != nil {
		return err
	}
	var lock *lockJSON
	if holder != nil {
		_, leased := store.(state.Fencer)
		lock = &lockJSON{Holder: *holder, Alive: alive, leased: leased}
	}
	out := whereJSON{View: v, Lock: lock, Warnings: configWarnings(cfg, store)}
	if g.JSON {
		return g.printJSON(out)
	}
	printWhere(g.stdout, out, opts.Wide)
	return nil
}

// configWarnings is what plan, next and resume would refuse about
// boxes.yaml (exit 7: it no longer matches the cycle in progress, or the
// pending transition's recorded plan), said by where without refusing:
// where shows the state whatever boxes.yaml says now.
func configWarnings(cfg *boxes.Config, store state.Backend) []string {
	err := (&fsm.Engine{Config: cfg, Store: store}).CheckConfig()
	if !errors.Is(err, fsm.ErrConfigChanged) {
		return nil
	}
	var pc *fsm.PlanChangedError
	if errors.As(err, &pc) {
		// What to do with the pending transition: re-plan it or roll it back.
		_, _, hint := classify(err)
		return []string{err.Error(), "boxswap resume refuses it (exit 7): " + hintOf(err, hint)}
	}
	return []string{err.Error(), "boxswap plan and next refuse it (exit 7) until boxes.yaml matches the cycle"}
}

// printWhere shows the View for a person, in 80 columns (text.Width)
// unless wide.
func printWhere(w io.Writer, out whereJSON, wide bool) {
	v, lock := out.View, out.Lock
	para := paragraph(w, wide)
	head := fmt.Sprintf("phase: %s (cycle %d, %s to %s)", v.Phase, v.Cycle, v.FromName, v.ToName)
	if v.Changed != nil {
		head += fmt.Sprintf(", since %s", v.Changed.Local().Format(time.DateTime))
	}
	para(head, "", "  ")
	if v.Next != nil {
		fmt.Fprintf(w, "next:  %s\n", *v.Next)
	} else {
		fmt.Fprintf(w, "next:  none, the cycle is done\n")
	}
	if len(out.Warnings) > 0 {
		// The first is what is wrong, one line of it each, the rest what to do.
		// The difference of a changed plan, one line per step, is cut to a
		// line each: its commands are long.
		for i, l := range strings.Split(out.Warnings[0], "\n") {
			switch {
			case i == 0:
				para(l, "warning: ", "  ")
			case wide:
				para(l, "  ", "    ")
			default:
				fmt.Fprintf(w, "  %s\n", text.Cut(l, text.Width-2))
			}
		}
		for _, h := range out.Warnings[1:] {
			para(h, "  ", "  ")
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BOX\tHOST\tFUNCTION\tRELEASE")
	for _, b := range v.Boxes {
		host := b.Host
		if !wide {
			host = text.Cut(host, 40)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", b.Name, host, b.Function, b.Release)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if t := v.Transition; t == nil {
		fmt.Fprintln(w, "transition: none pending")
	} else {
		para(fmt.Sprintf("transition: %s is %s at step %d/%d %s (attempt %d, started %s)",
			t.Event, t.Status, t.StepIndex, len(t.Steps), t.Step, t.ID, t.Started.Local().Format(time.DateTime)), "", "  ")
		if t.Error != "" {
			e := strings.Join(strings.Fields(t.Error), " ")
			if i := strings.Index(e, steps.CommandMark); i >= 0 && !wide {
				// The record keeps the remote command: not for this view.
				e = e[:i] + " (where --wide and boxswap log --wide show the command)"
			} else if cut := text.Cut(e, 2*text.Width); !wide && cut != e {
				e = cut + " (where --wide shows it whole)"
			}
			para(e, "error: ", "  ")
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  STATUS\tSTEP\tBOX\tTRIES")
		for _, s := range t.Steps {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\n", s.Status, s.ID, steps.BoxLabel(s.Box), s.Attempts)
		}
		tw.Flush()
		switch t.Status {
		case state.RollingBack:
			fmt.Fprintln(w, "to go on: boxswap rollback finishes the rollback")
		case state.RolledBack:
			// Nothing is pending: resume and rollback would refuse.
			para(fmt.Sprintf("to go on: boxswap next runs %s again from the start (boxswap plan shows it)", t.Event), "", "  ")
		default:
			fmt.Fprintln(w, "to go on: boxswap resume, or boxswap rollback to undo its done steps")
		}
	}
	switch {
	case lock == nil:
		fmt.Fprintln(w, "lock: free")
	case lock.Alive:
		para(fmt.Sprintf("lock: held by %s", holderText(lock.Holder)), "", "  ")
	case lock.leased:
		para(fmt.Sprintf("lock: free (left by %s, whose lease expired: boxswap resume takes it over)", holderText(lock.Holder)), "", "  ")
	case lock.Host != "" && lock.Host != thisHost():
		// Its pid means nothing here: next refuses it, unlock --force clears it.
		para(fmt.Sprintf("lock: held by %s, on another host (this host cannot tell whether it still runs; "+
			"boxswap unlock --force --reason TEXT clears it)", holderText(lock.Holder)), "", "  ")
	default:
		para(fmt.Sprintf("lock: free (left by %s, which is gone)", holderText(lock.Holder)), "", "  ")
	}
}

// holderText names a lock holder the way an operator finds them.
// Its strings come from the lock file, which anyone able to write there
// could fill with escape sequences: they are printed escaped.
func holderText(h state.Holder) string {
	s := fmt.Sprintf("%s@%s pid %d", text.Printable(h.User), text.Printable(h.Host), h.PID)
	if h.Command != "" {
		s += " (" + text.Printable(h.Command) + ")"
	}
	if !h.Since.IsZero() {
		s += " since " + h.Since.Local().Format(time.DateTime)
	}
	return s
}

// thisHost is the host name a lock taken here records.
func thisHost() string { return state.CurrentHolder("").Host }
