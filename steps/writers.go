package steps

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"boxswap/boxes"
)

type writersStep struct {
	servicesStep
	containers string // boxes.ContainersDocker, ContainersPodman, or "" / none
}

// StopWriters stops, on box, the app services that write user data and,
// with containers docker or podman, the users' running containers: none
// of them may write while the final sync copies the data. The containers
// stopped are listed in the step's record (and a fact, for Undo, which
// starts the services and those containers again). A docker daemon that
// is not running has no container running: that is not an error.
func StopWriters(id, box string, services []string, containers string) Step {
	if containers == boxes.ContainersNone {
		containers = ""
	}
	svc := StopServices(id, box, services).(*servicesStep)
	s := &writersStep{servicesStep: *svc, containers: containers}
	s.desc.Text = fmt.Sprintf("stop the writers on %s: %s", box, strings.Join(services, ", "))
	if len(services) == 0 {
		s.desc.Text = "stop the writers on " + box + ": no app service writes"
	}
	if containers != "" {
		s.desc.Text += ", and the running " + containers + " containers"
		s.desc.Commands = append(s.desc.Commands, s.listCmd(), containers+" stop -- <running containers>")
		s.desc.Undo = append(s.desc.Undo, containers+" start -- <containers stopped>")
	}
	return s
}

// listCmd lists the running containers, one "ID NAME" a line. Docker's
// are only asked for when its daemon runs: asking would start it by its
// socket, and a stopped daemon runs none.
func (s *writersStep) listCmd() string {
	ps := s.containers + " ps --no-trunc --format '{{.ID}} {{.Names}}'"
	if s.containers == boxes.ContainersDocker {
		return "if systemctl is-active --quiet docker.service; then " + ps + "; fi"
	}
	return ps
}

// containerIDRe is a container ID as docker and podman print it.
var containerIDRe = regexp.MustCompile(`^[0-9a-f]{12,64}$`)

// running lists the running containers as "ID NAME" lines.
func (s *writersStep) running(ctx context.Context, env *Env) ([]string, error) {
	if s.containers == "" {
		return nil, nil
	}
	res, err := run(ctx, env, s.box, "listing the running containers", s.listCmd(), false)
	if err != nil {
		return nil, fmt.Errorf("%w (app.containers: %s)", err, s.containers)
	}
	var out []string
	for _, line := range strings.Split(res.Stdout, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !containerIDRe.MatchString(f[0]) {
			return nil, fmt.Errorf("%s: listing the running containers: unexpected line %q", s.box, clip(line))
		}
		out = append(out, strings.Join(f, " "))
	}
	return out, nil
}

// fact holds the containers this step stopped, "ID NAME" a line.
func (s *writersStep) fact() string { return s.box + "/containers-stopped/" + s.id }

func (s *writersStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	done, why, err := s.servicesStep.Check(ctx, env)
	if err != nil || !done {
		return done, why, err
	}
	up, err := s.running(ctx, env)
	if err != nil {
		return false, "", err
	}
	if len(up) > 0 {
		return false, fmt.Sprintf("%d %s containers running on %s", len(up), s.containers, s.box), nil
	}
	if s.containers != "" {
		why += "; no " + s.containers + " container running"
		if f, ok := env.Facts.Get(s.fact()); ok && f != "" {
			why += " (stopped: " + strings.Join(names(f), ", ") + ")"
		}
	}
	return true, why, nil
}

func (s *writersStep) Apply(ctx context.Context, env *Env) error {
	if err := s.servicesStep.Apply(ctx, env); err != nil {
		return err
	}
	up, err := s.running(ctx, env)
	if err != nil || len(up) == 0 {
		return err
	}
	fs, err := facts(env)
	if err != nil {
		return err
	}
	// Recorded before they stop: a run killed meanwhile still starts
	// them again on rollback.
	prev, _ := fs.Get(s.fact())
	if err := fs.Set(s.fact(), mergeLines(prev, up)); err != nil {
		return err
	}
	_, err = stream(ctx, env, s.box, fmt.Sprintf("stopping %d containers", len(up)), s.containers+" stop -- "+quoteAll(ids(up)), false)
	if err == nil {
		progress(env, "stopped %d %s containers on %s: %s", len(up), s.containers, s.box, strings.Join(names(strings.Join(up, "\n")), ", "))
	}
	return err
}

func (s *writersStep) Undo(ctx context.Context, env *Env) error {
	if err := s.servicesStep.Undo(ctx, env); err != nil || s.containers == "" {
		return err
	}
	fs, err := facts(env)
	if err != nil {
		return err
	}
	f, _ := fs.Get(s.fact())
	if f == "" {
		return nil
	}
	if _, err := stream(ctx, env, s.box, "starting the containers stopped before", s.containers+" start -- "+quoteAll(ids(strings.Split(f, "\n"))), false); err != nil {
		return err
	}
	return fs.Delete(s.fact())
}

func ids(lines []string) []string {
	var out []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && containerIDRe.MatchString(f[0]) {
			out = append(out, f[0])
		}
	}
	return out
}

// names are the containers' names (their IDs, shortened, when unnamed).
func names(fact string) []string {
	var out []string
	for _, l := range strings.Split(fact, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 1:
			out = append(out, f[1])
		case len(f) == 1:
			out = append(out, f[0][:12])
		}
	}
	return out
}

func mergeLines(prev string, add []string) string {
	seen := map[string]bool{}
	var out []string
	for _, l := range append(strings.Split(prev, "\n"), add...) {
		if l != "" && !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
