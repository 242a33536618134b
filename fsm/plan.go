package fsm

import (
	"fmt"
	"time"

	"boxswap/boxes"
	"boxswap/state"
	"boxswap/steps"
)

func (e *Engine) plan(meta state.Meta, event Event) ([]steps.Step, error) {
	return e.planWith(e.Config, meta, event)
}

func (e *Engine) planWith(cfg *boxes.Config, meta state.Meta, event Event) ([]steps.Step, error) {
	plan := Steps
	if e.Plan != nil {
		plan = e.Plan
	}
	planned, err := plan(cfg, meta, event)
	if err != nil || e.Wrap == nil {
		return planned, err
	}
	return e.Wrap(planned)
}

// Planned returns the next transition and its steps, as next would run them.
func (e *Engine) Planned() (Transition, []steps.Step, error) {
	meta, err := e.cycle(false)
	if err != nil {
		return Transition{}, nil, err
	}
	t, ok := NextEvent(meta.Phase)
	if !ok {
		return Transition{}, nil, fmt.Errorf("%w: both boxes are on f%d; to upgrade again, set upgrade.from: %d and upgrade.to in %s",
			ErrCycleDone, meta.To, meta.To, e.Config.File)
	}
	st, err := e.plan(meta, t.Event)
	return t, st, err
}

// cycle returns the machine's meta, starting a cycle when the state is
// fresh or a finished cycle is followed by a new upgrade in boxes.yaml. It
// writes only when write is set.
func (e *Engine) cycle(write bool) (state.Meta, error) {
	meta, err := ReadMeta(e.Store)
	if err != nil {
		return meta, err
	}
	up := e.Config.Upgrade
	begin := func(n int) (state.Meta, error) {
		m := state.Meta{Schema: state.SchemaVersion, Phase: Start, Cycle: n, From: up.From, To: up.To, Changed: time.Now()}
		if write {
			if err := e.Store.Init(m); err != nil {
				return meta, err
			}
			e.record("cycle", fmt.Sprintf("cycle %d begins: f%d to f%d", n, up.From, up.To))
		}
		return m, nil
	}
	switch {
	case meta.Cycle == 0:
		return begin(1)
	case meta.From == up.From && meta.To == up.To:
		return meta, nil
	case meta.Phase == Done && up.From == meta.To:
		return begin(meta.Cycle + 1)
	case meta.Phase == Done:
		return meta, fmt.Errorf("%w: cycle %d took the boxes to f%d, but %s asks for f%d to f%d; a new cycle must start from f%d",
			ErrConfigChanged, meta.Cycle, meta.To, e.Config.File, up.From, up.To, meta.To)
	default:
		return meta, fmt.Errorf("%w: the cycle in progress upgrades f%d to f%d, but %s now says f%d to f%d; put upgrade.from/to back until the cycle is done",
			ErrConfigChanged, meta.From, meta.To, e.Config.File, up.From, up.To)
	}
}

// checkStopBefore refuses a --stop-before that names no step of the
// transition: it would silently never stop.
func (e *Engine) checkStopBefore(event Event, planned []steps.Step) error {
	if e.StopBefore == "" {
		return nil
	}
	for _, s := range planned {
		if s.ID() == e.StopBefore {
			return nil
		}
	}
	return fmt.Errorf("%w: --stop-before %s: %s has no such step; boxswap plan lists its steps", ErrNoSuchStep, e.StopBefore, event)
}
