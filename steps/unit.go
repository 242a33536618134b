package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"boxswap/internal/text"
)

// unitActiveStates are the answers of `systemctl is-active`; true means the
// unit is (or is about to be) running.
var unitActiveStates = map[string]bool{
	"active": true, "reloading": true, "refreshing": true,
	"activating": true, "deactivating": true,
	"inactive": false, "failed": false, "dead": false, "unknown": false,
	"maintenance": false,
}

// unitEnabledStates are the answers of `systemctl is-enabled`; true means
// `systemctl enable` is in effect.
var unitEnabledStates = map[string]bool{
	"enabled": true, "enabled-runtime": true,
	"linked": false, "linked-runtime": false, "alias": false,
	"masked": false, "masked-runtime": false, "static": false,
	"indirect": false, "disabled": false, "generated": false,
	"transient": false, "bad": false, "not-found": false,
}

// parseActive reads one answer of `systemctl is-active`. running is true
// for active and the states on the way in or out (activating, reloading,
// deactivating): such a unit may still hold its address.
func parseActive(answer string) (state string, running bool, err error) {
	state = strings.TrimSpace(answer)
	r, ok := unitActiveStates[state]
	if !ok {
		return state, false, fmt.Errorf("unexpected answer from systemctl is-active: %q", clip(state))
	}
	return state, r, nil
}

// parseEnabled reads one answer of `systemctl is-enabled`.
func parseEnabled(answer string) (state string, enabled bool, err error) {
	state = strings.TrimSpace(answer)
	e, ok := unitEnabledStates[state]
	if !ok {
		return state, false, fmt.Errorf("unexpected answer from systemctl is-enabled: %q", clip(state))
	}
	return state, e, nil
}

// clip keeps an unexpected answer short in an error.
func clip(s string) string { return text.Cut(s, 61) }

func isActiveCmd(unit string) string  { return "systemctl is-active -- " + quote(unit) }
func isEnabledCmd(unit string) string { return "systemctl is-enabled -- " + quote(unit) }
func startCmd(unit string) string {
	return "systemctl enable -- " + quote(unit) + " && systemctl start -- " + quote(unit)
}
func stopCmd(unit string) string {
	return "systemctl stop -- " + quote(unit) + " && systemctl disable -- " + quote(unit)
}
func statusCmd(unit string) string {
	return "systemctl status --no-pager --lines=10 -- " + quote(unit)
}

// unitSeen is what systemctl said of a unit.
type unitSeen struct {
	active, enabled string
	running, on     bool
}

func (u unitSeen) String() string { return u.active + " and " + u.enabled }

// readUnit asks systemctl whether unit is active and enabled. Both commands
// exit non-zero for "no", so only their answer counts; no answer at all
// (an unknown unit on an older systemd) is an error carrying stderr.
func readUnit(ctx context.Context, env *Env, box, unit string) (unitSeen, error) {
	var u unitSeen
	res, err := execute(ctx, env, box, "reading whether "+unit+" is active", isActiveCmd(unit), false)
	if err != nil {
		return u, err
	}
	if u.active, u.running, err = parseActive(firstLine(res.Stdout)); err != nil {
		return u, fmt.Errorf("%s: reading whether %s is active: %w%s", box, unit, err, stderrOf(res))
	}
	res, err = execute(ctx, env, box, "reading whether "+unit+" is enabled", isEnabledCmd(unit), false)
	if err != nil {
		return u, err
	}
	if u.enabled, u.on, err = parseEnabled(firstLine(res.Stdout)); err != nil {
		if strings.TrimSpace(res.Stdout) == "" && res.Exit != 0 {
			// Older systemd says nothing on stdout for a unit it does not know.
			u.enabled, u.on = "not-found", false
			return u, nil
		}
		return u, fmt.Errorf("%s: reading whether %s is enabled: %w%s", box, unit, err, stderrOf(res))
	}
	return u, nil
}

// stderrOf is what a command that answered nothing said instead, for an
// error: " (LAST LINE)", or "" when it did answer (the error quotes that).
func stderrOf(res result) string {
	if strings.TrimSpace(res.Stdout) != "" || len(res.Tail) == 0 {
		return ""
	}
	return " (" + clip(lastLine(res.Tail)) + ")"
}

func firstLine(s string) string {
	s = strings.TrimLeft(s, "\r\n \t")
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// stopped says a unit holds nothing: not running, not enabled.
func (u unitSeen) stopped() bool { return !u.running && !u.on }

// up says a unit is fully active and will come back after a reboot.
func (u unitSeen) up() bool { return u.active == "active" && u.on }

type unitStep struct {
	base
	box, unit string
	up        bool // UnitUp, else UnitDown
}

// UnitUp enables and starts unit on box (an address unit: the box takes
// the function's address). Undo stops and disables it.
func UnitUp(id, box, unit string) Step {
	return &unitStep{base: base{id: id, desc: Description{
		Box:      box,
		Text:     fmt.Sprintf("enable and start %s on %s", unit, box),
		Commands: []string{startCmd(unit), isActiveCmd(unit)},
		Undo:     []string{stopCmd(unit)},
		Retry:    true,
	}}, box: box, unit: unit, up: true}
}

// UnitDown stops and disables unit on box (the box gives up the
// function's address). Undo enables and starts it again.
func UnitDown(id, box, unit string) Step {
	return &unitStep{base: base{id: id, desc: Description{
		Box:      box,
		Text:     fmt.Sprintf("stop and disable %s on %s", unit, box),
		Commands: []string{stopCmd(unit), isActiveCmd(unit)},
		Undo:     []string{startCmd(unit)},
		Retry:    true,
	}}, box: box, unit: unit, up: false}
}

func (s *unitStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	u, err := readUnit(ctx, env, s.box, s.unit)
	if err != nil {
		return false, "", err
	}
	why := fmt.Sprintf("%s is %s on %s", s.unit, u, s.box)
	if s.up {
		return u.up(), why, nil
	}
	return u.stopped(), why, nil
}

func (s *unitStep) Apply(ctx context.Context, env *Env) error {
	if s.up {
		return s.start(ctx, env)
	}
	return s.stop(ctx, env)
}

func (s *unitStep) Undo(ctx context.Context, env *Env) error {
	if s.up {
		return s.stop(ctx, env)
	}
	return s.start(ctx, env)
}

func (s *unitStep) start(ctx context.Context, env *Env) error {
	if _, err := stream(ctx, env, s.box, "starting "+s.unit, startCmd(s.unit), false); err != nil {
		return err
	}
	res, err := execute(ctx, env, s.box, "reading whether "+s.unit+" is active", isActiveCmd(s.unit), false)
	if err != nil {
		return err
	}
	if state, _, _ := parseActive(firstLine(res.Stdout)); state == "active" {
		return nil
	}
	return s.notAsWanted(ctx, env, fmt.Sprintf("is %s after start", clip(firstLine(res.Stdout))))
}

func (s *unitStep) stop(ctx context.Context, env *Env) error {
	if _, err := stream(ctx, env, s.box, "stopping "+s.unit, stopCmd(s.unit), false); err != nil {
		return err
	}
	res, err := execute(ctx, env, s.box, "reading whether "+s.unit+" is active", isActiveCmd(s.unit), false)
	if err != nil {
		return err
	}
	if _, running, err := parseActive(firstLine(res.Stdout)); err == nil && !running {
		return nil
	}
	return s.notAsWanted(ctx, env, fmt.Sprintf("is still %s after stop", clip(firstLine(res.Stdout))))
}

// notAsWanted explains a unit that did not reach its state with the tail
// of systemctl status.
func (s *unitStep) notAsWanted(ctx context.Context, env *Env, seen string) error {
	msg := errors.New(s.box + ": " + s.unit + " " + seen + "; see journalctl -u " + quote(s.unit) + " there")
	res, err := execute(ctx, env, s.box, "reading the status of "+s.unit, statusCmd(s.unit), false)
	if err == nil && len(res.Tail) > 0 {
		return withDetail(msg, "systemctl status: "+strings.Join(res.Tail, " | "))
	}
	return msg
}

type unitStateStep struct {
	base
	box, unit       string
	active, enabled bool
}

// UnitState checks that unit on box is active (or not) and enabled (or
// not): the preflight's "functions as declared". It changes nothing.
func UnitState(id, box, unit string, active, enabled bool) Step {
	return &unitStateStep{base: base{id: id, desc: Description{
		Box:      box,
		Text:     fmt.Sprintf("check that %s is %s and %s on %s", unit, word(active, "active", "not active"), word(enabled, "enabled", "not enabled"), box),
		Commands: []string{isActiveCmd(unit), isEnabledCmd(unit)},
		Retry:    true,
	}}, box: box, unit: unit, active: active, enabled: enabled}
}

func word(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func (s *unitStateStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	u, err := readUnit(ctx, env, s.box, s.unit)
	if err != nil {
		return false, "", err
	}
	ok := (u.active == "active") == s.active && u.on == s.enabled
	return ok, fmt.Sprintf("%s is %s on %s", s.unit, u, s.box), nil
}

func (s *unitStateStep) Apply(ctx context.Context, env *Env) error {
	done, why, err := s.Check(ctx, env)
	if err != nil || done {
		return err
	}
	return fmt.Errorf("%s, expected %s and %s: %w; the box does not hold the functions boxes.yaml declares: fix the box or boxes.yaml, then run boxswap resume",
		why, word(s.active, "active", "not active"), word(s.enabled, "enabled", "not enabled"), ErrPrecondition)
}

func (s *unitStateStep) Undo(context.Context, *Env) error { return nil }
