package steps

import (
	"context"
	"fmt"
	"strings"
)

type servicesStep struct {
	base
	box      string
	services []string
	up       bool // StartServices: the wanted state is active
}

// StartServices starts the app's services on box (the new production box
// before the window, so the address moves onto a running app). Undo
// leaves them running: a box that held production keeps its app up.
func StartServices(id, box string, services []string) Step {
	s := &servicesStep{box: box, services: append([]string(nil), services...), up: true}
	s.base = base{id: id, desc: Description{
		Box:   box,
		Text:  fmt.Sprintf("start %s on %s", strings.Join(services, ", "), box),
		Retry: true,
	}}
	if len(services) > 0 {
		s.desc.Commands = []string{"systemctl start -- " + quoteAll(services)}
	}
	return s
}

// StopServices stops the app's services on box (the old production box at
// cut-over, so nothing writes the data during the final sync). They are
// only stopped, not disabled: Undo starts them again.
func StopServices(id, box string, services []string) Step {
	s := &servicesStep{box: box, services: append([]string(nil), services...)}
	s.base = base{id: id, desc: Description{
		Box:   box,
		Text:  fmt.Sprintf("stop %s on %s", strings.Join(services, ", "), box),
		Retry: true,
	}}
	if len(services) > 0 {
		s.desc.Commands = []string{"systemctl stop -- " + quoteAll(services)}
		s.desc.Undo = []string{"systemctl start -- " + quoteAll(services)}
	}
	return s
}

func (s *servicesStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	if len(s.services) == 0 {
		return true, "no app services declared", nil
	}
	cmd := "systemctl is-active -- " + quoteAll(s.services)
	res, err := execute(ctx, env, s.box, "reading the state of the app services", cmd, false)
	if err != nil {
		return false, "", err
	}
	answers := strings.Split(strings.TrimRight(res.Stdout, "\n"), "\n")
	if len(answers) != len(s.services) {
		return false, "", fmt.Errorf("%s: reading the state of the app services: %d answers for %d services: %s", s.box, len(answers), len(s.services), clip(lastLine(res.Tail)))
	}
	var wrong []string
	for i, a := range answers {
		state, r, err := parseActive(a)
		if err != nil {
			return false, "", fmt.Errorf("%s: reading the state of the app services: %w", s.box, err)
		}
		if r != s.up {
			wrong = append(wrong, s.services[i]+" is "+state)
		}
	}
	if len(wrong) > 0 {
		return false, strings.Join(wrong, ", ") + " on " + s.box, nil
	}
	if s.up {
		return true, strings.Join(s.services, ", ") + " active on " + s.box, nil
	}
	return true, "none of " + strings.Join(s.services, ", ") + " is active on " + s.box, nil
}

func (s *servicesStep) Apply(ctx context.Context, env *Env) error {
	if len(s.services) == 0 {
		return nil
	}
	verb := "stopping "
	if s.up {
		verb = "starting "
	}
	_, err := stream(ctx, env, s.box, verb+strings.Join(s.services, ", "), s.desc.Commands[0], false)
	return err
}

func (s *servicesStep) Undo(ctx context.Context, env *Env) error {
	if len(s.services) == 0 || s.up {
		return nil
	}
	_, err := stream(ctx, env, s.box, "starting "+strings.Join(s.services, ", ")+" again", s.desc.Undo[0], false)
	return err
}
