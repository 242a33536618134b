package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"boxswap/state"
)

type unlockOptions struct {
	Force  bool
	Reason string
}

func newUnlockCommand(g *globalOptions) *cobra.Command {
	var opts unlockOptions
	cmd := &cobra.Command{
		Use:   "unlock --force --reason TEXT",
		Short: "Remove an operator lock left by a boxswap this host cannot check",
		Long: `unlock removes the operator lock (<state>.lock) when its holder ran on
another host: from here boxswap cannot tell whether that process still
runs, so next, resume and rollback refuse it rather than reclaim it. Make
sure that run is over (ask its operator, or look on that host), then remove
the lock with --force and say why: the holder, who removed it and the
reason go into the history (boxswap log). A lock held by a live boxswap on
this host is never removed; a lock left by a dead one here needs no unlock,
the next run reclaims it.`,
		Example: `  boxswap where                     # lock: held by admin@laptop pid 4242 ...
  boxswap unlock --force --reason "laptop crashed in redirect; asked admin"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUnlock(cmd.Context(), opts, g)
		},
	}
	// This --force is unlock's own: it shadows the global --force GUARD.
	cmd.Flags().BoolVar(&opts.Force, "force", false, "remove the lock (required)")
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "why the lock may be removed, recorded in the history (required)")
	return cmd
}

func runUnlock(_ context.Context, opts unlockOptions, g *globalOptions) error {
	if !opts.Force {
		return withHint(usagef("unlock removes another operator's lock only with --force"),
			"boxswap where shows who holds the lock; make sure that run is over, then boxswap unlock --force --reason TEXT")
	}
	if strings.TrimSpace(opts.Reason) == "" {
		return withHint(usagef("unlock --force needs --reason: it is recorded in the history with your name"),
			`e.g. boxswap unlock --force --reason "laptop crashed during redirect; checked with its operator"`)
	}
	if _, err := g.loadConfig(); err != nil {
		return err
	}
	store, err := g.openStore()
	if err != nil {
		return err
	}
	h, err := store.ForceUnlock()
	if err != nil {
		return withHint(err, "a boxswap on this host holds it: wait for it, or stop it (Ctrl-C, or kill -TERM its pid)")
	}
	if h == nil {
		fmt.Fprintln(g.stdout, "the lock is free; nothing to remove")
		return nil
	}
	who := state.Me()
	detail := fmt.Sprintf("lock of %s removed by %s with unlock --force: %s", holderText(*h), who, opts.Reason)
	if err := store.Record(state.Event{Who: who, Kind: "unlock", Detail: detail}); err != nil {
		return fmt.Errorf("the lock was removed, but the history could not record it: %w", err)
	}
	fmt.Fprintf(g.stdout, "removed the lock of %s; recorded in the history\n", holderText(*h))
	return nil
}
