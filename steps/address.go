package steps

import (
	"context"
	"fmt"
	"strings"

	"boxswap/boxes"
)

// holdersCmd lists the interfaces of a box holding addr: a kernel fact,
// not what the address unit says.
func holdersCmd(addr string) string { return "ip -o -4 addr show to " + quote(addr) }

// holderIfaces reads `ip -o addr show` lines: "2: host0    inet …".
func holderIfaces(out string) []string {
	var ifs []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(f[1], "@")
		if boxes.IsInterface(name) {
			ifs = append(ifs, name)
		}
	}
	return ifs
}

// holds says which interfaces of box hold addr.
func holds(ctx context.Context, env *Env, box, addr string) ([]string, error) {
	res, err := run(ctx, env, box, "looking for the interfaces holding "+addr, holdersCmd(addr), false)
	if err != nil {
		return nil, err
	}
	return holderIfaces(res.Stdout), nil
}

type releaseStep struct {
	unitStep
	addr  string
	boxes []string
}

// ReleaseAddress stops and disables the address unit on box (UnitDown),
// then, when addr is declared, checks on every box of boxes that none
// holds it any more: a unit whose stop leaves the address behind would
// make two boxes answer for it once the new one takes it. Undo starts
// the unit again.
func ReleaseAddress(id, box, unit, addr string, boxes []string) Step {
	u := UnitDown(id, box, unit).(*unitStep)
	s := &releaseStep{unitStep: *u, addr: addr, boxes: append([]string(nil), boxes...)}
	if addr != "" {
		s.desc.Text += fmt.Sprintf(", then check that neither %s holds %s", strings.Join(boxes, " nor "), addr)
		s.desc.Commands = append(s.desc.Commands, holdersCmd(addr))
	}
	return s
}

func (s *releaseStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	done, why, err := s.unitStep.Check(ctx, env)
	if err != nil || !done || s.addr == "" {
		return done, why, err
	}
	held, err := s.heldBy(ctx, env)
	if err != nil || held != "" {
		return false, held, err
	}
	return true, why + "; no box holds " + s.addr, nil
}

// heldBy names the boxes still holding the address, "" when none.
func (s *releaseStep) heldBy(ctx context.Context, env *Env) (string, error) {
	var held []string
	for _, b := range s.boxes {
		ifs, err := holds(ctx, env, b, s.addr)
		if err != nil {
			return "", err
		}
		if len(ifs) > 0 {
			held = append(held, fmt.Sprintf("%s still holds %s on %s", b, s.addr, strings.Join(ifs, ", ")))
		}
	}
	return strings.Join(held, "; "), nil
}

func (s *releaseStep) Apply(ctx context.Context, env *Env) error {
	if err := s.unitStep.Apply(ctx, env); err != nil || s.addr == "" {
		return err
	}
	held, err := s.heldBy(ctx, env)
	if err != nil || held == "" {
		return err
	}
	return fmt.Errorf("%s after %s was stopped on %s: %w: the new box does not take an address another box holds; "+
		"make the unit's stop remove it (ExecStop), remove it by hand (ip addr del), then run boxswap resume; production serves nowhere meanwhile, or run boxswap rollback to give it back to %s",
		held, s.unit, s.box, ErrHalted, s.box)
}

// Describe: Apply stops the unit and fails unless the address is gone;
// the check after it would only ask the same.
func (s *releaseStep) Describe() Description {
	if s.addr == "" {
		return s.desc
	}
	return noCheckAfter(s.desc, "it fails unless the unit is stopped and no box holds the address")
}

type verifyStep struct {
	base
	box, other  string
	addr, iface string
}

// VerifyAddress checks, once box has taken addr, that exactly box holds
// it (not other), announces it (a gratuitous ARP, so that the gateway
// forgets the old box's MAC at once) and probes for a duplicate (arping
// -D: no other machine may answer for it). It runs after the window:
// production answers meanwhile. iface "" is the interface holding addr.
func VerifyAddress(id, box, other, addr, iface string) Step {
	ifc := iface
	if ifc == "" {
		ifc = "<interface>"
	}
	return &verifyStep{box: box, other: other, addr: addr, iface: iface, base: base{id: id, desc: Description{
		Box:      box,
		Text:     fmt.Sprintf("check that %s alone holds %s, announce it and probe for a duplicate", box, addr),
		Commands: []string{holdersCmd(addr), announceCmd(ifc, addr), dadCmd(ifc, addr)},
		Retry:    true,
	}}}
}

func announceCmd(iface, addr string) string {
	return "arping -q -U -c 1 -I " + quote(iface) + " " + quote(addr)
}

func dadCmd(iface, addr string) string {
	return "arping -D -c 2 -w 3 -I " + quote(iface) + " " + quote(addr)
}

func (s *verifyStep) Check(context.Context, *Env) (bool, string, error) {
	return false, "the address is verified each time", nil
}

func (s *verifyStep) Apply(ctx context.Context, env *Env) error {
	ifs, err := holds(ctx, env, s.box, s.addr)
	if err != nil {
		return err
	}
	if len(ifs) == 0 {
		return fmt.Errorf("%s does not hold %s after taking it: %w; see its address unit's journal, then run boxswap resume", s.box, s.addr, ErrHalted)
	}
	other, err := holds(ctx, env, s.other, s.addr)
	if err != nil {
		return err
	}
	if len(other) > 0 {
		return fmt.Errorf("%s holds %s too (on %s): %w; remove it there, then run boxswap resume", s.other, s.addr, strings.Join(other, ", "), ErrHalted)
	}
	iface := s.iface
	if iface == "" {
		iface = ifs[0]
	}
	announce := "announcing " + s.addr + " on " + iface
	if res, err := execute(ctx, env, s.box, announce, announceCmd(iface, s.addr), false); err != nil {
		return err
	} else if res.Exit > 1 { // 1: no reply, as an announcement expects
		return arpingError(s.box, announce, announceCmd(iface, s.addr), res)
	}
	dad := "checking that no other machine answers for " + s.addr
	res, err := execute(ctx, env, s.box, dad, dadCmd(iface, s.addr), false)
	switch {
	case err != nil:
		return err
	case res.Exit == 1:
		return fmt.Errorf("%s: another machine answers ARP for %s (%s): %w; find it and remove the address there, then run boxswap resume",
			s.box, s.addr, clip(lastLine(res.Tail)), ErrHalted)
	case res.Exit != 0:
		return arpingError(s.box, dad, dadCmd(iface, s.addr), res)
	}
	progress(env, "%s holds %s on %s alone, announced; no other machine answers for it", s.box, s.addr, iface)
	return nil
}

func arpingError(box, doing, cmd string, res result) error {
	err := &ExitError{Box: box, Command: doing, Cmd: cmd, Code: res.Exit, Tail: res.Tail}
	if res.Exit == 127 {
		return fmt.Errorf("%w; install arping (iputils-arping on Debian, iputils on Fedora) on %s", err, box)
	}
	return err
}

func (s *verifyStep) Undo(context.Context, *Env) error { return nil }

func (s *verifyStep) Describe() Description {
	return noCheckAfter(s.desc, "Apply verifies the address itself each time it runs")
}
