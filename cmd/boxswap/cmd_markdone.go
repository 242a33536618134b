package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"boxswap/fsm"
	"boxswap/internal/text"
	"boxswap/state"
)

type markDoneOptions struct {
	Reason string
}

func newMarkDoneCommand(g *globalOptions) *cobra.Command {
	var opts markDoneOptions
	cmd := &cobra.Command{
		Use:   "mark-done STEP --reason TEXT",
		Short: "Record that you did a step of the pending transition by hand",
		Long: `mark-done records that the operator did a step of the pending (failed or
interrupted) transition by hand, for the cases its check cannot see: the
step becomes done, with who marked it, when and why, in the state and the
history (boxswap log); resume then goes on after it. Most hand work needs
no mark: the upgrade steps recognise it (release already reached, download
complete, upgrade staged, reboot done). It is also how a pip reinstall's
failures are accepted: mark upgrade-dev/pip-reinstall done with the reason.

A gate is approved with --yes or at its prompt, never marked; a step
already done cannot be marked; nothing runs on any box.`,
		Example: `  boxswap log                                   # which step failed, and why
  boxswap mark-done upgrade-dev/pip-reinstall --reason "nbh_local is dead code"
  boxswap resume`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMarkDone(cmd.Context(), args[0], opts, g)
		},
	}
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "what was done by hand and why, recorded with your name (required)")
	return cmd
}

func runMarkDone(_ context.Context, step string, opts markDoneOptions, g *globalOptions) error {
	if strings.TrimSpace(opts.Reason) == "" {
		return withHint(usagef("mark-done needs --reason: it is recorded in the history with your name"),
			`e.g. boxswap mark-done `+step+` --reason "ran dnf system-upgrade download --allowerasing by hand"`)
	}
	if strings.ContainsFunc(opts.Reason, text.Hidden) {
		return withHint(usagef("mark-done --reason holds a control character (an escape sequence, a bidi override)"),
			"write the reason in plain text: it is printed by boxswap log")
	}
	if _, err := g.loadConfig(); err != nil {
		return err
	}
	store, err := g.backend()
	if err != nil {
		return err
	}
	lock, err := store.Lock(state.CurrentHolder("boxswap mark-done"))
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := g.verifyStore(store); err != nil {
		return err
	}
	att, err := store.Last()
	if err != nil {
		return err
	}
	if att == nil || (att.Status != state.Failed && att.Status != state.Interrupted) {
		what := "no transition has run"
		if att != nil {
			what = fmt.Sprintf("the last transition, %s, is %s", att.Event, att.Status)
		}
		return withHint(fmt.Errorf("%w: %s; mark-done marks a step of a failed or interrupted transition", fsm.ErrNothingToResume, what),
			"hand work before a transition starts needs no mark: its steps check what is already done")
	}
	var rec *state.StepRecord
	var ids []string
	for i := range att.Steps {
		if att.Steps[i].Status != state.StepDone {
			ids = append(ids, att.Steps[i].ID)
		}
		if att.Steps[i].ID == step {
			rec = &att.Steps[i]
		}
	}
	switch {
	case rec == nil:
		return withHint(fmt.Errorf("%w: %s has no step %s", fsm.ErrNoSuchStep, att.Event, step),
			"steps not done yet: "+strings.Join(ids, ", "))
	case rec.Status == state.StepDone:
		return withHint(usagef("%s is already done", step), "steps not done yet: "+strings.Join(ids, ", "))
	case strings.HasSuffix(step, "/approve") && rec.Box == "":
		return withHint(usagef("%s is an approval gate: it is approved, not marked done", step), "run boxswap resume and answer it, or boxswap --yes resume")
	}
	who := state.Me()
	if err := store.MarkDone(att.ID, step, state.Mark{Who: who, Reason: opts.Reason, When: time.Now()}); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "%s (attempt %d): %s marked done by %s (was %s); recorded in the history\nboxswap resume goes on after it\n",
		att.Event, att.ID, step, who, rec.Status)
	return nil
}
