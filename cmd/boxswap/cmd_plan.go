package main

import (
	"context"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"boxswap/fsm"
	"boxswap/internal/text"
	"boxswap/state"
	"boxswap/steps"
)

type planOptions struct {
	Offline bool
	// Commands shows each step's remote commands; Wide does not fold them
	// (nor anything else) to 80 columns.
	Commands, Wide bool
}

func newPlanCommand(g *globalOptions) *cobra.Command {
	var opts planOptions
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show the next transition's steps and which are done",
		Long: `plan lists the steps the next transition runs (as next would plan them
from boxes.yaml and the state): each with its box and what it does; with
--commands, the exact remote commands too (folded to 80 columns; with
--wide, one line each, as --json has them). Without --offline it also runs
each step's check on the boxes, read-only, and says whether the step is
already done and why.`,
		Example: `  boxswap plan --offline
  boxswap plan --offline --commands --wide
  boxswap plan --json | jq '.steps[] | select(.check.done | not) | .id'`,
		Annotations: map[string]string{annJSON: "yes", annSteps: "yes"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPlan(cmd.Context(), opts, g)
		},
	}
	cmd.Flags().BoolVar(&opts.Offline, "offline", false, "do not reach the boxes: list the steps without checking them")
	cmd.Flags().BoolVar(&opts.Commands, "commands", false, "show each step's remote commands too")
	addWide(cmd, &opts.Wide)
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
	return g.report(checkErr, func() { printPlan(g.stdout, out, opts.Commands, opts.Wide) }, &out, func(e *jsonError) { out.Error = e })
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

// printPlan shows the plan for a person: each step's box and what it does,
// in 80 columns. With commands, each step's remote commands too, folded
// to fit unless wide (then one line each, exact, as --json has them).
func printPlan(w io.Writer, p planJSON, commands, wide bool) {
	width := text.Width
	if wide {
		width = 1 << 30
	}
	para := paragraph(w, wide)
	t := p.Transition
	fmt.Fprintf(w, "next: %s (%s to %s), cycle %d, %d steps\n", t.Event, t.From, t.To, p.Cycle, len(p.Steps))
	if p.Pending != nil {
		para(fmt.Sprintf("attempt %d of it is %s: boxswap resume goes on with it, boxswap rollback undoes it", p.Pending.ID, p.Pending.Status), "", "  ")
	}
	for _, warn := range p.Warnings {
		para(warn, "warning: ", "  ")
	}
	if !commands {
		fmt.Fprintln(w, "(boxswap plan --commands shows each step's remote commands)")
	}
	for i, s := range p.Steps {
		head := fmt.Sprintf("%2d. %s  [%s]", i+1, s.ID, steps.BoxLabel(s.Box))
		if utf8.RuneCountInString(head) > width {
			head = fmt.Sprintf("%2d. %s", i+1, s.ID)
			s.Text = "[" + steps.BoxLabel(s.Box) + "] " + s.Text
		}
		fmt.Fprintf(w, "\n%s\n", head)
		para(s.Text, "    ", "    ")
		if commands {
			for _, c := range s.Commands {
				for _, l := range text.Fold(c, width, "    $ ", "        ") {
					fmt.Fprintln(w, l)
				}
			}
		}
		if s.Irreversible {
			fmt.Fprintln(w, "    (cannot be undone)")
		}
		if commands && s.NoCheckAfter != "" {
			para("not checked again after it runs: "+s.NoCheckAfter+")", "    (", "     ")
		}
		if s.Recorded != "" {
			fmt.Fprintf(w, "    (recorded: %s)\n", s.Recorded)
		}
		if c := s.Check; c != nil {
			switch {
			case c.Error != "":
				para(c.Error, "    check: unknown: ", "      ")
			case c.Done:
				para(c.Why, "    check: done: ", "      ")
			case c.Why != "":
				para(c.Why, "    check: not done: ", "      ")
			default:
				fmt.Fprintf(w, "    check: not done\n")
			}
		}
	}
}
