package fsm

import (
	"boxswap/state"
	"boxswap/steps"
)

// stepRecord is what the state records of a planned step; plan indexes
// the attempt's Configs.
func stepRecord(s steps.Step, plan int) state.StepRecord {
	d := s.Describe()
	return state.StepRecord{
		ID: s.ID(), Box: d.Box, Text: d.Text, Commands: d.Commands, Undo: d.Undo,
		Irreversible: d.Irreversible, Plan: plan, Status: state.Pending,
	}
}

// pending reports whether an attempt in this status still needs resume or rollback.
func pending(status state.Status) bool {
	switch status {
	case state.Running, state.Interrupted, state.Failed, state.RollingBack:
		return true
	}
	return false
}

// currentStep is the first step not done (or the last one).
func currentStep(a *state.Attempt) string {
	for _, s := range a.Steps {
		if s.Status != state.StepDone {
			return s.ID
		}
	}
	if len(a.Steps) == 0 {
		return ""
	}
	return a.Steps[len(a.Steps)-1].ID
}
