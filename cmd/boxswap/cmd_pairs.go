package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"boxswap/internal/text"
	"boxswap/state/etcdstate"
)

func newPairsCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "pairs",
		Short: "List the pairs' states kept under an etcd root prefix",
		Long: `pairs lists every boxswap state found under the etcd prefix --state (or
boxes.yaml's state.url) names, taken as a root: one line a pair, with its
phase, the transition pending and its first step not done, who holds its
operator lock, and how long ago it last changed. It reads only; boxes.yaml
is not needed when --state is given.`,
		Example: `  boxswap --state etcd://10.0.0.5:2379/boxswap pairs
  boxswap --state etcd://10.0.0.5:2379/boxswap pairs --json |
    jq '.[] | select(.holder)'`,
		Annotations: map[string]string{annJSON: "yes"},
		Args:        cobra.NoArgs,
		RunE:        func(cmd *cobra.Command, _ []string) error { return runPairs(cmd.Context(), g) },
	}
}

// etcdBackend is the state on etcd, for the verbs only etcd has; a bbolt
// state is a usage error saying so (refusal, with %s its path) and how.
func (g *globalOptions) etcdBackend(refusal, hint string) (*etcdstate.Store, error) {
	b, err := g.backend()
	if err != nil {
		return nil, err
	}
	s, ok := b.(*etcdstate.Store)
	if !ok {
		return nil, withHint(usagef(refusal, b.Path()), hint)
	}
	return s, nil
}

func runPairs(_ context.Context, g *globalOptions) error {
	if g.State == "" {
		if _, err := g.loadConfig(); err != nil {
			return err
		}
	}
	s, err := g.etcdBackend("pairs lists the states under an etcd prefix; %s is a bbolt file, one pair's",
		"give --state etcd://HOST:PORT/ROOT, the prefix the pairs' states are under")
	if err != nil {
		return err
	}
	pairs, err := s.Pairs()
	if err != nil {
		return err
	}
	if g.JSON {
		if pairs == nil {
			pairs = []etcdstate.Pair{}
		}
		return g.printJSON(pairs)
	}
	if len(pairs) == 0 {
		fmt.Fprintf(g.stdout, "no boxswap state under %s\n", s.Path())
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PREFIX\tPHASE\tPENDING\tHOLDER\tCHANGED")
	for _, p := range pairs {
		pending, holder := "-", "-"
		if p.Event != "" {
			pending = fmt.Sprintf("%s %s at %s", p.Event, p.Status, p.Step)
		}
		if p.Holder != nil {
			holder = text.Printable(fmt.Sprintf("%s@%s pid %d", p.Holder.User, p.Holder.Host, p.Holder.PID))
			if !p.Alive {
				holder += " (gone)"
			}
		}
		phase := string(p.Phase)
		if p.Error != "" {
			phase, pending = "unreadable", p.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", text.Printable(p.Prefix), phase, text.Printable(pending), holder, age(p.Changed))
	}
	return tw.Flush()
}

// age is how long ago t was, roughly.
func age(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
