package fsm

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"boxswap/boxes"
	"boxswap/state"
	"boxswap/steps"
)

// replan rebuilds an attempt's steps from boxes.yaml and checks they are
// the ones recorded, commands included: resuming with other steps would
// skip or repeat work. When they differ the error shows the difference
// and points at resume --replan.
func (e *Engine) replan(att *state.Attempt) ([]steps.Step, error) {
	planned, diff, err := e.planNow(att)
	if err != nil {
		return nil, err
	}
	if len(diff) > 0 {
		// boxes.yaml the one recorded: another boxswap planned it (a
		// sealed record that verifies cannot be damaged; an old unsealed
		// one may be): resume --replan or rollback, as for a change of
		// boxes.yaml, never "restore the state from a backup".
		n := len(att.Configs)
		same := n > 0 && att.Configs[n-1] == e.Config.Source
		return nil, &PlanChangedError{Event: att.Event, File: e.Config.File, Diff: diff, SameConfig: same}
	}
	return planned, nil
}

// CheckConfig says whether boxes.yaml still matches the cycle in progress
// and the pending transition's recorded plan, as next, plan and resume
// would find it: nil, or an error that is ErrConfigChanged (a
// *PlanChangedError for the pending plan). It only reads.
func (e *Engine) CheckConfig() error {
	if _, err := e.cycle(false); err != nil {
		return err
	}
	att, err := e.Store.Last()
	if err != nil || att == nil || !pending(att.Status) || att.Status == state.RollingBack {
		return err
	}
	_, err = e.replan(att)
	return err
}

// planNow plans att's transition from boxes.yaml as it is now, and says
// how that differs from the record.
func (e *Engine) planNow(att *state.Attempt) ([]steps.Step, []string, error) {
	meta, err := e.cycle(false)
	if err != nil {
		return nil, nil, err
	}
	planned, err := e.plan(meta, att.Event)
	if err != nil {
		return nil, nil, err
	}
	return planned, planDiff(att, planned), nil
}

// PlanChangedError is ErrConfigChanged for a pending transition whose steps
// boxes.yaml now plans otherwise; Diff says how, one line per step.
type PlanChangedError struct {
	Event Event
	File  string
	Diff  []string
	// SameConfig: boxes.yaml is the one recorded with the attempt; this
	// boxswap plans it otherwise than the one that recorded it (another
	// version), or an old record without a checksum was damaged.
	SameConfig bool
}

func (e *PlanChangedError) Error() string {
	if e.SameConfig {
		return fmt.Sprintf("the pending %s was planned otherwise than this boxswap plans it from the same %s (another boxswap version planned it, or its record, written without a checksum, was damaged):\n%s",
			e.Event, e.File, strings.Join(e.Diff, "\n"))
	}
	return fmt.Sprintf("%v: %s now plans the pending %s otherwise:\n%s", ErrConfigChanged, e.File, e.Event, strings.Join(e.Diff, "\n"))
}

func (e *PlanChangedError) Is(target error) bool { return target == ErrConfigChanged }

// planDiff lists how planned differs from the steps recorded in att: a
// step added (+), removed (-), or whose commands or undo changed (~).
func planDiff(att *state.Attempt, planned []steps.Step) []string {
	var diff []string
	now := map[string]state.StepRecord{}
	for _, s := range planned {
		now[s.ID()] = stepRecord(s, 0)
	}
	was := map[string]bool{}
	for _, r := range att.Steps {
		was[r.ID] = true
		n, ok := now[r.ID]
		switch {
		case !ok:
			diff = append(diff, fmt.Sprintf("  - %s (%s): no longer planned", r.ID, r.Status))
		case !slices.Equal(n.Commands, r.Commands):
			diff = append(diff, fmt.Sprintf("  ~ %s (%s): runs %q, recorded %q", r.ID, r.Status, n.Commands, r.Commands))
		case !slices.Equal(n.Undo, r.Undo) && r.Undo != nil:
			diff = append(diff, fmt.Sprintf("  ~ %s (%s): undo %q, recorded %q", r.ID, r.Status, n.Undo, r.Undo))
		}
	}
	for i, s := range planned {
		if !was[s.ID()] {
			diff = append(diff, fmt.Sprintf("  + %s: new, step %d", s.ID(), i+1))
		}
	}
	if len(diff) == 0 {
		for i, s := range planned {
			if i < len(att.Steps) && s.ID() != att.Steps[i].ID {
				diff = append(diff, fmt.Sprintf("  ~ step %d is now %s, recorded %s", i+1, s.ID(), att.Steps[i].ID))
			}
		}
	}
	return diff
}

// Replan re-plans the pending transition from boxes.yaml as it is now, and
// records it (the new boxes.yaml, the difference, who): steps not done yet
// take the new plan; done steps keep their record and are undone, if ever,
// as recorded. A done step the new plan would run otherwise, or no longer
// runs, is refused: roll back first (with the recorded commands), then
// next plans afresh. It returns the difference, empty when there is none.
func (e *Engine) Replan() ([]string, error) {
	att, err := e.Store.Last()
	if err != nil {
		return nil, err
	}
	if att == nil || !pending(att.Status) || att.Status == state.RollingBack {
		return nil, fmt.Errorf("%w: no transition is pending to re-plan", ErrNothingToResume)
	}
	planned, diff, err := e.planNow(att)
	if err != nil {
		return nil, err
	}
	if len(diff) == 0 {
		return nil, nil
	}
	now := map[string]state.StepRecord{}
	for _, s := range planned {
		now[s.ID()] = stepRecord(s, 0)
	}
	var refused []string
	for _, r := range att.Steps {
		n, ok := now[r.ID]
		if r.Status == state.StepDone && (!ok || !slices.Equal(n.Commands, r.Commands) || r.Undo != nil && !slices.Equal(n.Undo, r.Undo)) {
			refused = append(refused, r.ID)
		}
	}
	if len(refused) > 0 {
		return diff, fmt.Errorf("%w: %s: %s already ran as recorded, and the new plan would run it otherwise or not at all; "+
			"boxswap rollback undoes the done steps with their recorded commands, then boxswap next plans afresh:\n%s",
			ErrConfigChanged, att.Event, strings.Join(refused, ", "), strings.Join(diff, "\n"))
	}
	err = e.Store.UpdateAttempt(att.ID, func(a *state.Attempt) error {
		old := map[string]state.StepRecord{}
		for _, r := range a.Steps {
			old[r.ID] = r
		}
		plan := len(a.Configs)
		a.Configs = append(a.Configs, e.Config.Source)
		a.Steps = a.Steps[:0]
		for _, s := range planned {
			r, ok := old[s.ID()]
			if !ok || r.Status != state.StepDone {
				n := stepRecord(s, plan)
				if ok { // keep what was seen of it: resume checks it first
					n.Status, n.Attempts, n.Started, n.Error, n.Why, n.Tail = r.Status, r.Attempts, r.Started, r.Error, r.Why, r.Tail
				}
				r = n
			}
			a.Steps = append(a.Steps, r)
		}
		return nil
	})
	if err != nil {
		return diff, err
	}
	e.record("replan", fmt.Sprintf("%s (attempt %d) re-planned from %s by %s:\n%s", att.Event, att.ID, e.Config.File, e.Who, strings.Join(diff, "\n")))
	return diff, nil
}

// asPlanned returns the steps to undo for att: each done step as it was
// planned when it ran (from the boxes.yaml recorded with it), never as the
// file plans it now. Without a recorded boxes.yaml (an attempt recorded
// before they were), the plan of today's file must match the record.
func (e *Engine) asPlanned(att *state.Attempt) ([]steps.Step, error) {
	if len(att.Configs) == 0 {
		return e.replan(att)
	}
	meta, err := e.cycle(false)
	if err != nil {
		return nil, err
	}
	byPlan := map[int]map[string]steps.Step{}
	out := make([]steps.Step, len(att.Steps))
	for i, r := range att.Steps {
		if r.Plan < 0 || r.Plan >= len(att.Configs) {
			return nil, state.CorruptError(e.Store.Path(), fmt.Errorf("attempt %d: step %s names plan %d of %d", att.ID, r.ID, r.Plan, len(att.Configs)))
		}
		ids, ok := byPlan[r.Plan]
		if !ok {
			cfg, err := boxes.LoadBytes(e.Config.File, []byte(att.Configs[r.Plan]))
			if err != nil {
				// It loaded when it was recorded: the record is damaged (a
				// state written before records had checksums), not the
				// operator's boxes.yaml.
				return nil, state.CorruptError(e.Store.Path(), fmt.Errorf("attempt %d: its recorded boxes.yaml (plan %d) no longer loads: %s",
					att.ID, r.Plan, clip(firstProblem(err), 60)))
			}
			planned, err := e.planWith(cfg, meta, att.Event)
			if err != nil {
				return nil, err
			}
			ids = map[string]steps.Step{}
			for _, s := range planned {
				ids[s.ID()] = s
			}
			byPlan[r.Plan] = ids
		}
		if out[i], ok = ids[r.ID]; !ok {
			return nil, state.CorruptError(e.Store.Path(), fmt.Errorf("attempt %d: its recorded boxes.yaml (plan %d) does not plan step %s", att.ID, r.Plan, r.ID))
		}
	}
	return out, nil
}

// firstProblem is the first problem of a boxes.yaml that does not load,
// by its line, without the file's name or the hint.
func firstProblem(err error) string {
	var le *boxes.LoadError
	if errors.As(err, &le) && len(le.Problems) > 0 {
		return fmt.Sprintf("line %d: %s", le.Problems[0].Line, le.Problems[0].Msg)
	}
	l, _, _ := strings.Cut(err.Error(), "\n")
	return l
}

// clip cuts s to n bytes, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
