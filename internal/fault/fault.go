// Package fault injects failures and crashes at named steps, for the lab's
// rehearsals only. It decorates the steps of a planned transition: the
// engine knows nothing of it, and the shipped boxswap does not link it. A
// binary built with -tags boxswap_fault arms it from BOXSWAP_FAULT (see
// docs/reliability.md, "Fault injection").
package fault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"boxswap/steps"
)

// Env is the environment variable that arms fault injection:
//
//	BOXSWAP_FAULT="STEP-ID@POINT:ACTION[,STEP-ID@POINT:ACTION...]"
//
// POINT is where in a step's run the fault fires: before (at the step's
// first Check, before it is recorded running), running (once it is
// recorded running, before its Apply sends anything), applied (after the
// step's effect is in place, before it is recorded done: the nastiest
// point) or undo (before the step's undo runs, once it is recorded
// undoing). ACTION is kill (the process SIGKILLs itself: a real crash,
// nothing is cleaned up), fail (the step returns ErrInjected) or stop (the
// process SIGSTOPs itself, as a suspended laptop: it goes on where it was
// when sent SIGCONT; the fencing rehearsal of a state on etcd). A step ID that the
// transition being run does not have is an error, so that a typo never
// silently rehearses nothing.
const Env = "BOXSWAP_FAULT"

// Point is where in a step's run a fault fires.
type Point string

// Action is what a fault does.
type Action string

// Fault points and actions.
const (
	Before  Point = "before"
	Running Point = "running"
	Applied Point = "applied"
	Undo    Point = "undo"

	Kill Action = "kill"
	Fail Action = "fail"
	Stop Action = "stop"
)

// ErrInjected is the error of a step failed by a fault of action fail.
var ErrInjected = errors.New("injected failure")

// Fault is one armed fault.
type Fault struct {
	Step   string
	Point  Point
	Action Action
}

func (f Fault) String() string { return f.Step + "@" + string(f.Point) + ":" + string(f.Action) }

// Faults is the set of faults armed for one run.
type Faults struct {
	list []Fault
	err  error // a malformed spec, reported when a plan is wrapped
	// OnKill, when set, replaces the SIGKILL (tests see the record at the
	// kill and go on); OnStop likewise the SIGSTOP.
	OnKill, OnStop func()
}

// FromEnv returns the faults armed by BOXSWAP_FAULT, or nil when it is
// unset. A malformed value is not lost: Wrap refuses every plan with it.
func FromEnv() *Faults {
	spec, ok := os.LookupEnv(Env)
	if !ok {
		return nil
	}
	f, err := Parse(spec)
	if err != nil {
		return &Faults{err: err}
	}
	return f
}

// Parse parses a BOXSWAP_FAULT value.
func Parse(spec string) (*Faults, error) {
	f := &Faults{}
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("%s is set but empty; unset it, or give STEP-ID@POINT:ACTION", Env)
	}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		at := strings.LastIndexByte(item, '@')
		colon := strings.LastIndexByte(item, ':')
		if at <= 0 || colon < at {
			return nil, fmt.Errorf("%s: %q is not STEP-ID@POINT:ACTION (e.g. redirect/take-address/thermals@applied:kill)", Env, item)
		}
		ft := Fault{Step: item[:at], Point: Point(item[at+1 : colon]), Action: Action(item[colon+1:])}
		switch ft.Point {
		case Before, Running, Applied, Undo:
		default:
			return nil, fmt.Errorf("%s: %q: unknown point %q; points are before, running, applied and undo", Env, item, ft.Point)
		}
		switch ft.Action {
		case Kill, Fail, Stop:
		default:
			return nil, fmt.Errorf("%s: %q: unknown action %q; actions are kill, fail and stop", Env, item, ft.Action)
		}
		f.list = append(f.list, ft)
	}
	return f, nil
}

func (f *Faults) String() string {
	var s []string
	for _, ft := range f.list {
		s = append(s, ft.String())
	}
	return strings.Join(s, ",")
}

// Wrap refuses faults that name no step of the planned transition, says
// loudly that faults are armed, and returns the steps with each step a
// fault names decorated. It fits fsm.Engine.Wrap.
func (f *Faults) Wrap(planned []steps.Step) ([]steps.Step, error) {
	if f.err != nil {
		return nil, f.err
	}
	ids := map[string]bool{}
	for _, s := range planned {
		ids[s.ID()] = true
	}
	for _, ft := range f.list {
		if !ids[ft.Step] {
			return nil, fmt.Errorf("%s: %s: the transition has no step %s; boxswap plan lists its steps", Env, ft, ft.Step)
		}
	}
	fmt.Fprintf(os.Stderr, "boxswap: %s=%s: rehearsal fault injection is armed; never set it on real boxes\n", Env, f)
	out := make([]steps.Step, len(planned))
	for i, s := range planned {
		out[i] = s
		for _, ft := range f.list {
			if ft.Step == s.ID() {
				out[i] = &step{Step: s, f: f}
				break
			}
		}
	}
	return out, nil
}

// step is a Step with faults armed at its points.
type step struct {
	steps.Step
	f *Faults
	// checked: the before fault fired (or not) at the first Check;
	// applied: Apply ran in this process, so a later Check is the check
	// after it, where no fault fires.
	checked, applied bool
}

func (s *step) Check(ctx context.Context, env *steps.Env) (bool, string, error) {
	first := !s.checked
	s.checked = true
	if first {
		if err := s.f.at(s.ID(), Before, ""); err != nil {
			return false, "", err
		}
	}
	done, why, err := s.Step.Check(ctx, env)
	if err == nil && done && !s.applied {
		// Found done: its effect is in place, and it is not recorded yet.
		if err := s.f.at(s.ID(), Applied, FoundDone); err != nil {
			return false, "", err
		}
	}
	return done, why, err
}

func (s *step) Apply(ctx context.Context, env *steps.Env) error {
	s.applied = true
	if err := s.f.at(s.ID(), Running, ""); err != nil {
		return err
	}
	if err := s.Step.Apply(ctx, env); err != nil {
		return err
	}
	return s.f.at(s.ID(), Applied, "")
}

func (s *step) Undo(ctx context.Context, env *steps.Env) error {
	if err := s.f.at(s.ID(), Undo, ""); err != nil {
		return err
	}
	return s.Step.Undo(ctx, env)
}

// FoundDone ends the line a kill prints when an applied fault fires in a
// Check that found the step done: the step is left pending, not running
// (running is recorded only before an Apply). The reliability tests read it.
const FoundDone = "its check found it done"

// at fires the fault armed for id at point, if any: it kills the process
// or returns an error wrapping ErrInjected. note, when set, ends the line
// the kill prints.
func (f *Faults) at(id string, point Point, note string) error {
	for _, ft := range f.list {
		if ft.Step != id || ft.Point != point {
			continue
		}
		if ft.Action == Fail {
			return fmt.Errorf("%s: %w (%s)", id, ErrInjected, ft)
		}
		if ft.Action == Stop {
			fmt.Fprintf(os.Stderr, "boxswap: %s: stopping this process (%s); SIGCONT goes on\n", Env, ft)
			f.stop()
			return nil
		}
		if note != "" {
			note = "; " + note
		}
		fmt.Fprintf(os.Stderr, "boxswap: %s: killing this process (%s%s)\n", Env, ft, note)
		f.die()
		return fmt.Errorf("%s: %s: the process survived its own SIGKILL", id, ft)
	}
	return nil
}

// stop SIGSTOPs this process and returns once it was continued.
func (f *Faults) stop() {
	if f.OnStop != nil {
		f.OnStop()
		return
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
}

// die SIGKILLs this process: a real crash, with no deferred cleanup, no
// lock release and no last record.
func (f *Faults) die() {
	if f.OnKill != nil {
		f.OnKill()
		return
	}
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Kill()
	}
	// Delivery is asynchronous: never go on doing work meanwhile.
	time.Sleep(time.Minute)
}
