package fsm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"boxswap/steps"
)

// FaultEnv is the environment variable that arms fault injection, for
// rehearsals in the lab only:
//
//	BOXSWAP_FAULT="STEP-ID@POINT:ACTION[,STEP-ID@POINT:ACTION...]"
//
// POINT is where in the engine the fault fires: before (before the step is
// recorded running), applied (after the step's effect is in place, before
// it is recorded done: the nastiest point) or undo (before the step's undo
// runs, once it is recorded undoing). ACTION is kill (the process SIGKILLs
// itself: a real crash, nothing is cleaned up) or fail (the step returns
// ErrInjected). A step ID that the transition being run does not have is
// an error, so that a typo never silently rehearses nothing.
const FaultEnv = "BOXSWAP_FAULT"

// Fault points and actions.
const (
	FaultBefore  = "before"
	FaultApplied = "applied"
	FaultUndo    = "undo"

	FaultKill = "kill"
	FaultFail = "fail"
)

// ErrInjected is the error of a step failed by a fault of action fail.
var ErrInjected = errors.New("injected failure")

// Fault is one armed fault.
type Fault struct {
	Step, Point, Action string
}

func (f Fault) String() string { return f.Step + "@" + f.Point + ":" + f.Action }

// Faults is the set of faults armed for one run. A nil *Faults injects
// nothing, so the engine calls it unconditionally.
type Faults struct {
	list []Fault
	err  error // a malformed spec, reported when the engine plans
	// kill ends the process; tests replace it.
	kill func()
}

// FaultFromEnv returns the faults armed by BOXSWAP_FAULT, or nil when it is
// unset. A malformed value is not lost: the engine refuses to run with it.
func FaultFromEnv() *Faults {
	spec, ok := os.LookupEnv(FaultEnv)
	if !ok {
		return nil
	}
	f, err := ParseFaults(spec)
	if err != nil {
		return &Faults{err: err}
	}
	return f
}

// ParseFaults parses a BOXSWAP_FAULT value.
func ParseFaults(spec string) (*Faults, error) {
	f := &Faults{}
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("%s is set but empty; unset it, or give STEP-ID@POINT:ACTION", FaultEnv)
	}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		at := strings.LastIndexByte(item, '@')
		colon := strings.LastIndexByte(item, ':')
		if at <= 0 || colon < at {
			return nil, fmt.Errorf("%s: %q is not STEP-ID@POINT:ACTION (e.g. redirect/take-address/thermals@applied:kill)", FaultEnv, item)
		}
		ft := Fault{Step: item[:at], Point: item[at+1 : colon], Action: item[colon+1:]}
		switch ft.Point {
		case FaultBefore, FaultApplied, FaultUndo:
		default:
			return nil, fmt.Errorf("%s: %q: unknown point %q; points are before, applied and undo", FaultEnv, item, ft.Point)
		}
		switch ft.Action {
		case FaultKill, FaultFail:
		default:
			return nil, fmt.Errorf("%s: %q: unknown action %q; actions are kill and fail", FaultEnv, item, ft.Action)
		}
		f.list = append(f.list, ft)
	}
	return f, nil
}

// check refuses faults that name no step of the planned transition, and
// says loudly that faults are armed. Its signature lets it wrap a plan.
func (f *Faults) check(planned []steps.Step, err error) ([]steps.Step, error) {
	if f == nil || err != nil {
		return planned, err
	}
	if f.err != nil {
		return nil, f.err
	}
	ids := map[string]bool{}
	for _, s := range planned {
		ids[s.ID()] = true
	}
	for _, ft := range f.list {
		if !ids[ft.Step] {
			return nil, fmt.Errorf("%s: %s: the transition has no step %s; boxswap plan lists its steps", FaultEnv, ft, ft.Step)
		}
	}
	fmt.Fprintf(os.Stderr, "boxswap: %s=%s: rehearsal fault injection is armed; never set it on real boxes\n", FaultEnv, f)
	return planned, nil
}

func (f *Faults) String() string {
	var s []string
	for _, ft := range f.list {
		s = append(s, ft.String())
	}
	return strings.Join(s, ",")
}

// at fires the fault armed for step at point, if any: it kills the process
// or returns an error wrapping ErrInjected.
func (f *Faults) at(step, point string) error {
	if f == nil {
		return nil
	}
	for _, ft := range f.list {
		if ft.Step != step || ft.Point != point {
			continue
		}
		if ft.Action == FaultFail {
			return fmt.Errorf("%s: %w (%s)", step, ErrInjected, ft)
		}
		fmt.Fprintf(os.Stderr, "boxswap: %s: killing this process (%s)\n", FaultEnv, ft)
		f.die()
		return fmt.Errorf("%s: %s: the process survived its own SIGKILL", step, ft)
	}
	return nil
}

// after fires the applied fault of step when the step succeeded (err is
// nil); an error is passed through untouched.
func (f *Faults) after(step string, err error) error {
	if err != nil {
		return err
	}
	return f.at(step, FaultApplied)
}

// undo fires the undo fault of step, then runs its Undo.
func (f *Faults) undo(ctx context.Context, env *steps.Env, step string, s steps.Step) error {
	if err := f.at(step, FaultUndo); err != nil {
		return err
	}
	return s.Undo(ctx, env)
}

// die SIGKILLs this process: a real crash, with no deferred cleanup, no
// lock release and no last record.
func (f *Faults) die() {
	if f.kill != nil {
		f.kill()
		return
	}
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Kill()
	}
	// Delivery is asynchronous: never go on doing work meanwhile.
	time.Sleep(time.Minute)
}
