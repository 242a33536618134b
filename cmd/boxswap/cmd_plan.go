package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"boxswap/fsm"
	"boxswap/state"
	"boxswap/steps"
)

type planOptions struct {
	Offline bool
}

func newPlanCommand(g *globalOptions) *cobra.Command {
	var opts planOptions
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show the next transition's steps, their commands, and which are done",
		Long: `plan lists the steps the next transition runs (as next would plan them
from boxes.yaml and the state): each with its box, what it does and the exact
remote commands. Without --offline it also runs each step's check on the
boxes, read-only, and says whether the step is already done and why.`,
		Example: `  boxswap plan --offline
  boxswap plan --json | jq '.steps[] | select(.check.done | not) | .id'`,
		Annotations: map[string]string{annJSON: "yes", annSteps: "yes"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPlan(cmd.Context(), opts, g)
		},
	}
	cmd.Flags().BoolVar(&opts.Offline, "offline", false, "do not reach the boxes: list the steps without checking them")
	return cmd
}

type planJSON struct {
	Transition fsm.Transition `json:"transition"`
	Cycle      int            `json:"cycle"`
	// Pending is the recorded attempt of this transition, when one did not finish.
	Pending *pendingJSON `json:"pending"`
	Steps   []planStep   `json:"steps"`
	// Warnings are what boxes.yaml asks that weakens a check (app.check
	// insecure: true).
	Warnings []string `json:"warnings,omitempty"`
	// Error is set when checks could not run (a box unreachable).
	Error *jsonError `json:"error,omitempty"`
}

type pendingJSON struct {
	ID     uint64       `json:"id"`
	Status state.Status `json:"status"`
}

type planStep struct {
	ID string `json:"id"`
	steps.Description
	// Recorded is the step's status in the pending attempt, if any.
	Recorded state.StepStatus `json:"recorded,omitempty"`
	Check    *planCheck       `json:"check,omitempty"`
}

type planCheck struct {
	Done  bool   `json:"done"`
	Why   string `json:"why,omitempty"`
	Error string `json:"error,omitempty"`
}

func runPlan(ctx context.Context, opts planOptions, g *globalOptions) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	store, err := g.openStore()
	if err != nil {
		return err
	}
	e := &fsm.Engine{Config: cfg, Store: store, Force: g.force()}
	t, planned, err := e.Planned()
	if err != nil {
		return err
	}
	meta, err := fsm.ReadMeta(store)
	if err != nil {
		return err
	}
	cycle := meta.Cycle
	if cycle == 0 {
		cycle = 1
	}
	last, err := store.Last()
	if err != nil {
		return err
	}
	out := planJSON{Transition: t, Cycle: cycle}
	if k := cfg.App.Check; k != nil && k.Insecure {
		out.Warnings = append(out.Warnings, fmt.Sprintf("%s:%d: app.check has insecure: true: the production site's certificate is NOT verified, "+
			"so a missing or wrong certificate on the new box goes unnoticed; give its CA with ca: instead", cfg.File, k.Line))
	}
	recorded := map[string]state.StepStatus{}
	if last != nil && last.Event == t.Event && last.Cycle == cycle && last.Status != state.Done && last.Status != state.RolledBack {
		out.Pending = &pendingJSON{ID: last.ID, Status: last.Status}
		for _, s := range last.Steps {
			recorded[s.ID] = s.Status
		}
	}
	for _, s := range planned {
		out.Steps = append(out.Steps, planStep{ID: s.ID(), Description: s.Describe(), Recorded: recorded[s.ID()]})
	}
	var checkErr error
	if !opts.Offline {
		d, err := newDialer(cfg)
		if err != nil {
			return err
		}
		defer d.Close()
		env := checkEnv(d, store, cycle, g.force())
		var failed []error
		for i, s := range planned {
			done, why, err := s.Check(ctx, env)
			c := &planCheck{Done: done, Why: why}
			if err != nil {
				c.Done, c.Error = false, err.Error()
				failed = append(failed, err)
			}
			out.Steps[i].Check = c
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		if len(failed) > 0 {
			checkErr = withHint(fmt.Errorf("%d of %d checks could not run; the first: %w", len(failed), len(planned), failed[0]),
				"each check's error is shown with its step; if a box cannot be reached, boxswap check tells why")
		}
	}
	return g.report(checkErr, func() { printPlan(g.stdout, out) }, &out, func(e *jsonError) { out.Error = e })
}

// checkEnv is a steps.Env for running checks only: it reads the cycle's
// facts from the state but keeps what checks set in memory, approves
// nothing, and discards remote output.
func checkEnv(d boxDialer, store state.Backend, cycle int, force map[steps.Guard]bool) *steps.Env {
	return &steps.Env{
		Boxes:  d.Runner,
		Output: func(string) io.Writer { return io.Discard },
		Facts:  fsm.ReadOnlyFacts(store, cycle),
		Approve: func(_ context.Context, gate, _ string) (string, error) {
			return "", fmt.Errorf("%w: %s: plan only looks", steps.ErrNotApproved, gate)
		},
		Progress: func(string, ...any) {},
		Force:    force,
	}
}

func printPlan(w io.Writer, p planJSON) {
	t := p.Transition
	fmt.Fprintf(w, "next: %s (%s to %s), cycle %d, %d steps\n", t.Event, t.From, t.To, p.Cycle, len(p.Steps))
	if p.Pending != nil {
		fmt.Fprintf(w, "attempt %d of it is %s: boxswap resume goes on with it, boxswap rollback undoes it\n", p.Pending.ID, p.Pending.Status)
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	for i, s := range p.Steps {
		fmt.Fprintf(w, "\n%2d. %s  [%s]\n", i+1, s.ID, steps.BoxLabel(s.Box))
		fmt.Fprintf(w, "    %s\n", s.Text)
		for _, c := range s.Commands {
			fmt.Fprintf(w, "    $ %s\n", c)
		}
		var notes []string
		if s.Irreversible {
			notes = append(notes, "cannot be undone")
		}
		if s.NoCheckAfter != "" {
			notes = append(notes, "not checked after it runs: "+s.NoCheckAfter)
		}
		if s.Recorded != "" {
			notes = append(notes, "recorded: "+string(s.Recorded))
		}
		for _, n := range notes {
			fmt.Fprintf(w, "    (%s)\n", n)
		}
		if c := s.Check; c != nil {
			switch {
			case c.Error != "":
				fmt.Fprintf(w, "    check: unknown: %s\n", c.Error)
			case c.Done:
				fmt.Fprintf(w, "    check: done: %s\n", c.Why)
			case c.Why != "":
				fmt.Fprintf(w, "    check: not done: %s\n", c.Why)
			default:
				fmt.Fprintf(w, "    check: not done\n")
			}
		}
	}
}
