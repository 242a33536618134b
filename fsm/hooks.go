package fsm

import (
	"errors"
	"fmt"
	"strings"

	"boxswap/boxes"
	"boxswap/state"
	"boxswap/steps"
)

// anchor places hooks beside a step of a transition: the first (or last)
// step whose ID, without the "EVENT/" prefix, starts with prefix; before
// or after it.
type anchor struct {
	prefix string
	last   bool // the last such step, not the first
	after  bool
}

// namedPoints maps each named hook point of a move to its anchor: the
// first alternative whose step the transition has. This table is the only
// place that knows which steps make the window: reordering the move
// changes it, not the hook code. The window opens when the writers stop
// (stop-writers/) and closes once production is checked through its
// address (check-production, planned with app.check; else once the
// address is verified, or taken).
var namedPoints = map[string][]anchor{
	boxes.PointBeforeWindow:     {{prefix: "stop-writers/"}},
	boxes.PointAfterFinalSync:   {{prefix: "final-sync/", last: true, after: true}},
	boxes.PointAfterTakeAddress: {{prefix: takeAddress, after: true}},
	boxes.PointAfterWindow:      {{prefix: "check-production", after: true}, {prefix: "verify-address/", after: true}, {prefix: takeAddress, after: true}},
}

// takeAddress starts the ID (without "EVENT/") of the step after which a
// transition's functions are those of its end.
const takeAddress = "take-address/"

// placed is the transition's plan with its hooks: pre and post hold the
// hooks to run before and after body[i].
type placed struct {
	body      []steps.Step
	pre, post [][]boxes.Hook
	gate      []boxes.Hook // after the approval gate, before the before hooks
}

// withHooks returns the transition's steps with the operator's hooks:
// the approval gate first (hooks follow it), then the before hooks, the
// body with the at hooks at their points, the after hooks. Each hook's
// on: is resolved where it sits: before the transition's take-address
// step as at its start, after it as at its end.
func (p planner) withHooks(t Transition, body []steps.Step) ([]steps.Step, error) {
	hs := p.cfg.Hooks[p.event]
	var out []steps.Step
	if len(body) > 0 && steps.IsGate(body[0]) {
		out, body = append(out, body[0]), body[1:]
	}
	pl, err := p.placeAll(out, body, hs.At)
	if err != nil {
		return nil, err
	}
	take := p.find(body, anchor{prefix: takeAddress})
	if take < 0 {
		take = len(body)
	}
	// phase is where functions stand at body[i] (after it when after).
	phase := func(i int, after bool) Phase {
		if i > take || after && i == take {
			return t.To
		}
		return t.From
	}
	add := func(ph Phase, where string, list []boxes.Hook) error {
		for _, h := range list {
			s, err := p.hook(ph, h, where)
			if err != nil {
				return err
			}
			out = append(out, s)
		}
		return nil
	}
	err = errors.Join(add(t.From, "at", pl.gate), add(t.From, "before", hs.Before))
	for i, s := range body {
		err = errors.Join(err, add(phase(i, false), "at", pl.pre[i]))
		out = append(out, s)
		err = errors.Join(err, add(phase(i, true), "at", pl.post[i]))
	}
	if err = errors.Join(err, add(phase(len(body), false), "after", hs.After)); err != nil {
		return nil, err
	}
	return out, nil
}

// placeAll places the at hooks beside the body's steps (see place),
// reporting every point that names none.
func (p planner) placeAll(gate, body []steps.Step, at []boxes.Hook) (placed, error) {
	pl := placed{body: body, pre: make([][]boxes.Hook, len(body)), post: make([][]boxes.Hook, len(body))}
	var errs []error
	for _, h := range at {
		errs = append(errs, p.place(&pl, gate, h))
	}
	return pl, errors.Join(errs...)
}

// rel is a step ID without the transition's "EVENT/" prefix.
func (p planner) rel(id string) string { return strings.TrimPrefix(id, string(p.event)+"/") }

// place puts an at hook beside the step its point names. gate holds the
// approval gate, if any: a hook may follow it, not precede it.
func (p planner) place(pl *placed, gate []steps.Step, h boxes.Hook) error {
	where := func(msg string, args ...any) error {
		return fmt.Errorf("%s:%d: hook %q of %s: point %s: %s", p.cfg.File, h.PointLine, h.Name, p.event, h.Point, fmt.Sprintf(msg, args...))
	}
	if alts, ok := namedPoints[h.Point]; ok {
		for _, a := range alts {
			if i := p.find(pl.body, a); i >= 0 {
				pl.attach(i, a.after, h)
				return nil
			}
		}
		return where("%s has no step it runs beside; use before:STEP or after:STEP with one of: %s", p.event, p.ids(pl.body))
	}
	side, id, _ := strings.Cut(h.Point, ":")
	id = p.rel(id)
	for _, g := range gate {
		if p.rel(g.ID()) == id {
			if side == "before" {
				return where("hooks run after the approval gate; use after:%s", id)
			}
			pl.gate = append(pl.gate, h)
			return nil
		}
	}
	for i, s := range pl.body {
		if p.rel(s.ID()) == id {
			pl.attach(i, side == "after", h)
			return nil
		}
	}
	return where("%s has no step %s; its steps are: %s", p.event, id, p.ids(pl.body))
}

func (pl *placed) attach(i int, after bool, h boxes.Hook) {
	if after {
		pl.post[i] = append(pl.post[i], h)
	} else {
		pl.pre[i] = append(pl.pre[i], h)
	}
}

// find returns the index of the step a names in body, or -1.
func (p planner) find(body []steps.Step, a anchor) int {
	found := -1
	for i, s := range body {
		if strings.HasPrefix(p.rel(s.ID()), a.prefix) {
			found = i
			if !a.last {
				break
			}
		}
	}
	return found
}

// ids lists the step IDs a point may name, without the event.
func (p planner) ids(body []steps.Step) string {
	var out []string
	for _, s := range body {
		out = append(out, p.rel(s.ID()))
	}
	return strings.Join(out, ", ")
}

// hook turns one of the operator's hooks into a command step; "on" names a
// function (as it stands at phase) or a box.
func (p planner) hook(phase Phase, h boxes.Hook, where string) (steps.Step, error) {
	box := ""
	for _, b := range Table(p.r, phase, p.from, p.to) {
		if b.Name == h.On || b.Function == h.On {
			box = b.Name
		}
	}
	if box == "" {
		return nil, fmt.Errorf("%s:%d: hook %q of %s runs on %s, but no box holds it at %s; use a box name",
			p.cfg.File, h.Line, h.Name, p.event, h.On, phase)
	}
	text := "hook " + h.Name
	if h.Point != "" {
		text += " at " + h.Point
	}
	if h.On != box {
		text += " (on " + h.On + ": " + box + ")"
	}
	return steps.Command(p.id("hook", where, h.Name), box, text, h.Run, h.Check, h.Undo), nil
}

// CheckPlans builds the plan of every transition of the cycle boxes.yaml
// configures, so that a hook whose point or on: names nothing is found
// before the first transition runs, not weeks later at its own.
func CheckPlans(cfg *boxes.Config) error {
	var errs []error
	for _, t := range Transitions {
		if _, err := Steps(cfg, state.Meta{From: cfg.Upgrade.From, To: cfg.Upgrade.To}, t.Event); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
