package fsm

import (
	"context"
	"fmt"
	"time"

	"boxswap/boxes"
	"boxswap/state"
)

// NoticeKind is a moment Engine.Notify is told about: a kind a webhook
// of boxes.yaml asks for.
type NoticeKind = boxes.NotifyKind

// Notice kinds: the moments Engine.Notify is told about.
// They are the kinds boxes.yaml's webhooks ask for (boxes.NotifyEvents).
const (
	NoticeStart   = boxes.NotifyStart   // a transition (or its rollback) begins or resumes
	NoticeEnd     = boxes.NotifyEnd     // it finished: done, or rolled back
	NoticeFailure = boxes.NotifyFailure // it stopped unfinished: failed, interrupted
	NoticeGate    = boxes.NotifyGate    // a gate asks the operator for approval
)

// NoticeKinds lists the kinds, in the order they are documented.
var NoticeKinds = boxes.NotifyEvents

// Notice is what a webhook receives, as JSON. Its fields are a contract
// for the operators' scripts: add, never rename.
type Notice struct {
	Kind    NoticeKind   `json:"kind"`    // one of NoticeKinds
	Event   Event        `json:"event"`   // the transition: upgrade-dev, redirect, …
	Attempt uint64       `json:"attempt"` // the attempt's id in the state
	Cycle   int          `json:"cycle"`
	From    Phase        `json:"from"`    // the phase before the transition
	To      Phase        `json:"to"`      // the phase once it is done
	Status  state.Status `json:"status"`  // the attempt's status when sent
	Command string       `json:"command"` // next, resume or rollback
	Who     string       `json:"who"`     // user@host running boxswap
	Step    string       `json:"step,omitempty"`
	Prompt  string       `json:"prompt,omitempty"` // a gate's question
	Error   string       `json:"error,omitempty"`
	Time    time.Time    `json:"time"`
}

// notifyTimeout bounds one notification, whatever Notify does with ctx: a
// slow webhook delays the upgrade by this much at most.
const notifyTimeout = 10 * time.Second

func (e *Engine) notice(att *state.Attempt, kind NoticeKind) Notice {
	return Notice{Kind: kind, Event: att.Event, Attempt: att.ID, Cycle: att.Cycle, From: att.From, To: att.To,
		Status: att.Status, Command: e.Command, Who: e.Who, Time: time.Now()}
}

func (e *Engine) notify(ctx context.Context, out *output, att *state.Attempt, kind NoticeKind, step string, err error) {
	if e.Notify == nil {
		return
	}
	n := e.notice(att, kind)
	n.Step = step
	if err != nil {
		n.Error = err.Error()
	}
	e.send(ctx, out, n)
}

// send calls Notify with a context that the operator's interrupt does not
// cancel (a failure must still be told) but that ends after notifyTimeout.
func (e *Engine) send(ctx context.Context, out *output, n Notice) {
	if e.Notify == nil {
		return
	}
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyTimeout)
	defer cancel()
	if err := e.Notify(nctx, n); err != nil {
		out.say("warning: %s notification of %s: %v (the transition goes on)", n.Kind, n.Event, err)
		e.record("notify-failed", fmt.Sprintf("%s notification of %s (attempt %d): %v", n.Kind, n.Event, n.Attempt, err))
	}
}

// haltNotify is halt, then the failure notice with what halt recorded.
func (e *Engine) haltNotify(ctx context.Context, out *output, att *state.Attempt, status state.Status, stepID string, err error) (*state.Attempt, error) {
	a, herr := e.halt(att, status, stepID, err)
	if a != nil {
		att = a
	}
	e.notify(ctx, out, att, NoticeFailure, stepID, err)
	return a, herr
}

func (e *Engine) reporter() Reporter {
	if e.Report != nil {
		return e.Report
	}
	return discard{}
}
