package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"boxswap/fsm"
	"boxswap/internal/text"
	"boxswap/state"
	"boxswap/steps"
)

type whereOptions struct{}

func newWhereCommand(g *globalOptions) *cobra.Command {
	var opts whereOptions
	return &cobra.Command{
		Use:   "where",
		Short: "Show the phase, the next transition and who holds what",
		Long: `where reads the state file, never the network: the phase, the next
transition, the two boxes with their function and release at this phase, the
pending transition with its steps' statuses, and who holds the operator lock.
A missing state file is a fresh start; where does not create it.`,
		Example: `  boxswap where
  boxswap -c lab/boxes.yaml where --json | jq .phase`,
		Annotations: map[string]string{annJSON: "yes"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWhere(cmd.Context(), opts, g)
		},
	}
}

// whereJSON is fsm.View, the contract, plus the lock holder.
type whereJSON struct {
	*fsm.View
	Lock *lockJSON `json:"lock"`
}

type lockJSON struct {
	state.Holder
	Alive bool `json:"alive"`
	// leased: the lock is an etcd lease, whose end says its holder is gone
	// wherever it ran.
	leased bool
}

func runWhere(_ context.Context, _ whereOptions, g *globalOptions) error {
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
	if g.JSON {
		return g.printJSON(whereJSON{View: v, Lock: lock})
	}
	printWhere(g.stdout, v, lock)
	return nil
}

func printWhere(w io.Writer, v *fsm.View, lock *lockJSON) {
	fmt.Fprintf(w, "phase: %s (cycle %d, %s to %s)", v.Phase, v.Cycle, v.FromName, v.ToName)
	if v.Changed != nil {
		fmt.Fprintf(w, ", since %s", v.Changed.Local().Format(time.DateTime))
	}
	fmt.Fprintln(w)
	if v.Next != nil {
		fmt.Fprintf(w, "next:  %s\n", *v.Next)
	} else {
		fmt.Fprintf(w, "next:  none, the cycle is done\n")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BOX\tHOST\tFUNCTION\tRELEASE")
	for _, b := range v.Boxes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", b.Name, b.Host, b.Function, b.Release)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if t := v.Transition; t == nil {
		fmt.Fprintln(w, "transition: none pending")
	} else {
		fmt.Fprintf(w, "transition: %s is %s at step %d/%d %s (attempt %d, started %s)\n",
			t.Event, t.Status, t.StepIndex, len(t.Steps), t.Step, t.ID, t.Started.Local().Format(time.DateTime))
		if t.Error != "" {
			fmt.Fprintf(w, "error: %s\n", t.Error)
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
			fmt.Fprintf(w, "to go on: boxswap next runs %s again from the start (boxswap plan shows it)\n", t.Event)
		default:
			fmt.Fprintln(w, "to go on: boxswap resume, or boxswap rollback to undo its done steps")
		}
	}
	switch {
	case lock == nil:
		fmt.Fprintln(w, "lock: free")
	case lock.Alive:
		fmt.Fprintf(w, "lock: held by %s\n", holderText(lock.Holder))
	case lock.leased:
		fmt.Fprintf(w, "lock: free (left by %s, whose lease expired: boxswap resume takes it over)\n", holderText(lock.Holder))
	case lock.Host != "" && lock.Host != thisHost():
		// Its pid means nothing here: next refuses it, unlock --force clears it.
		fmt.Fprintf(w, "lock: held by %s, on another host (this host cannot tell whether it still runs; boxswap unlock --force --reason TEXT clears it)\n", holderText(lock.Holder))
	default:
		fmt.Fprintf(w, "lock: free (left by %s, which is gone)\n", holderText(lock.Holder))
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
