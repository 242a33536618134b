package fsm

import (
	"time"

	"boxswap/boxes"
	"boxswap/state"
)

// View is what `boxswap where` shows; its JSON form is a contract.
type View struct {
	Phase Phase  `json:"phase"`
	Next  *Event `json:"next"` // null at the end of a cycle
	Cycle int    `json:"cycle"`
	From  int    `json:"from"`
	To    int    `json:"to"`
	// FromName and ToName name the releases as operators do: f29,
	// trixie (boxes.Upgrade.Short).
	FromName   string          `json:"from_name"`
	ToName     string          `json:"to_name"`
	Changed    *time.Time      `json:"changed,omitempty"`
	Transition *TransitionView `json:"transition"`
	Boxes      []BoxView       `json:"boxes"`
}

// TransitionView is the last transition attempt, unless it finished.
type TransitionView struct {
	ID         uint64       `json:"id"`
	Event      Event        `json:"event"`
	Status     state.Status `json:"status"`
	Step       string       `json:"step"` // the step running or next to run
	StepIndex  int          `json:"step_index"`
	Steps      []StepView   `json:"steps"`
	FailedStep string       `json:"failed_step"`
	Error      string       `json:"error"`
	Started    time.Time    `json:"started"`
}

// StepView is one step of the transition shown.
type StepView struct {
	ID       string           `json:"id"`
	Box      string           `json:"box"`
	Text     string           `json:"text"`
	Status   state.StepStatus `json:"status"`
	Attempts int              `json:"attempts"`
}

// Where reads the state (and never the network) and returns where the
// pair stands. A missing state file is a fresh start.
func Where(cfg *boxes.Config, store state.Backend) (*View, error) {
	roles, err := RolesOf(cfg)
	if err != nil {
		return nil, err
	}
	meta, err := ReadMeta(store)
	if err != nil {
		return nil, err
	}
	v := &View{Phase: meta.Phase, Cycle: meta.Cycle, From: meta.From, To: meta.To}
	if v.Phase == "" {
		v.Phase = Start
	}
	if meta.Cycle == 0 {
		// No cycle yet: the first one is the one boxes.yaml describes.
		v.Cycle, v.From, v.To = 1, cfg.Upgrade.From, cfg.Upgrade.To
	}
	v.FromName, v.ToName = cfg.Upgrade.Short(v.From), cfg.Upgrade.Short(v.To)
	if !meta.Changed.IsZero() {
		v.Changed = &meta.Changed
	}
	if t, ok := NextEvent(v.Phase); ok {
		v.Next = &t.Event
	} else if meta.Phase == Done && cfg.Upgrade.From == meta.To && cfg.Upgrade.To > meta.To {
		// boxes.yaml asks for the next cycle: next starts it.
		ev := UpgradeDev
		v.Next = &ev
	}
	last, err := store.Last()
	if err != nil {
		return nil, err
	}
	if last != nil && last.Status != state.Done {
		tv := &TransitionView{
			ID: last.ID, Event: last.Event, Status: last.Status, Step: currentStep(last),
			FailedStep: last.FailedStep, Error: last.Error, Started: last.Started,
		}
		for i, s := range last.Steps {
			if s.ID == tv.Step {
				tv.StepIndex = i + 1
			}
			tv.Steps = append(tv.Steps, StepView{ID: s.ID, Box: s.Box, Text: s.Text, Status: s.Status, Attempts: s.Attempts})
		}
		v.Transition = tv
	}
	v.Boxes = Table(roles, v.Phase, v.From, v.To)
	return v, nil
}
