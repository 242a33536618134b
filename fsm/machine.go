package fsm

import (
	"context"
	"fmt"
	"strings"

	lfsm "github.com/looplab/fsm"

	"boxswap/boxes"
	"boxswap/state"
)

// Phase is one of the machine's states; the state file records it.
type Phase = state.Phase

// Phases (the machine's states), in the order a cycle goes through them.
const (
	Start              = state.StartPhase
	DevUpgraded  Phase = "dev-upgraded"
	Redirected   Phase = "redirected"
	ProdUpgraded Phase = "prod-upgraded"
	SwitchedBack Phase = "switched-back"
	Done         Phase = "done"
)

// Event names a transition; boxes.yaml's hooks name them too: they are
// defined once, in boxes.
type Event = boxes.Event

// Events: one per transition, named for the seed's phases.
const (
	UpgradeDev  = boxes.EventUpgradeDev
	Redirect    = boxes.EventRedirect
	UpgradeProd = boxes.EventUpgradeProd
	SwitchBack  = boxes.EventSwitchBack
	Epilogue    = boxes.EventEpilogue
)

// Transition is one edge of the machine.
type Transition struct {
	Event Event `json:"event"`
	From  Phase `json:"from"`
	To    Phase `json:"to"`
}

// Transitions lists the machine's edges in cycle order.
var Transitions = []Transition{
	{UpgradeDev, Start, DevUpgraded},
	{Redirect, DevUpgraded, Redirected},
	{UpgradeProd, Redirected, ProdUpgraded},
	{SwitchBack, ProdUpgraded, SwitchedBack},
	{Epilogue, SwitchedBack, Done},
}

// NextEvent returns the transition that leaves phase, if any.
func NextEvent(phase Phase) (Transition, bool) {
	for _, t := range Transitions {
		if t.From == phase {
			return t, true
		}
	}
	return Transition{}, false
}

// ValidPhase reports whether phase is one of the machine's states.
func ValidPhase(phase Phase) bool {
	return phase == Start || phase == Done || func() bool {
		_, ok := NextEvent(phase)
		return ok
	}()
}

// ReadMeta reads the machine's meta from store and refuses a phase this
// boxswap does not know (ErrUnknownPhase): read as "no next transition", it
// would pass for the end of a cycle.
func ReadMeta(store state.Backend) (state.Meta, error) {
	m, err := store.Meta()
	if err != nil {
		return m, err
	}
	if !ValidPhase(m.Phase) {
		return m, fmt.Errorf("%w: state %s names phase %q, which this boxswap does not know; "+
			"use the boxswap that wrote it, or restore the state from a backup", ErrUnknownPhase, store.Path(), m.Phase)
	}
	return m, nil
}

// newMachine builds the looplab machine at the persisted phase. The state
// file is the truth: the machine is rebuilt from it on every run and only
// ever fired once all of a transition's steps are done.
func newMachine(phase Phase) (*lfsm.FSM, error) {
	if !ValidPhase(phase) {
		return nil, fmt.Errorf("unknown phase %q in the state file: is it from another tool?", phase)
	}
	events := make([]lfsm.EventDesc, 0, len(Transitions))
	for _, t := range Transitions {
		events = append(events, lfsm.EventDesc{Name: string(t.Event), Src: []string{string(t.From)}, Dst: string(t.To)})
	}
	return lfsm.NewFSM(string(phase), events, nil), nil
}

// fire moves the machine from phase through event and returns the new phase.
//
// looplab/fsm leaves a transition pending forever when the context given to
// Event is cancelled mid-transition (its issue #101), so fire never passes
// the caller's context: it uses one that cannot be cancelled. There are no
// callbacks, so nothing can block.
func fire(phase Phase, event Event) (Phase, error) {
	m, err := newMachine(phase)
	if err != nil {
		return "", err
	}
	if err := m.Event(context.Background(), string(event)); err != nil {
		return "", fmt.Errorf("fsm: %s from %s: %w", event, phase, err)
	}
	return Phase(m.Current()), nil
}

// Graph returns the machine as a Mermaid state diagram, edges in cycle order.
func Graph() string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	fmt.Fprintf(&b, "    [*] --> %s\n", Start)
	for _, t := range Transitions {
		fmt.Fprintf(&b, "    %s --> %s: %s\n", t.From, t.To, t.Event)
	}
	fmt.Fprintf(&b, "    %s --> [*]\n", Done)
	return b.String()
}
