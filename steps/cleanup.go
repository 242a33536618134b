package steps

import (
	"context"
	"fmt"
	"strings"
)

const (
	dockerContainersCmd = "docker ps -aq"
	dockerImagesCmd     = "docker images -q"
)

type cleanupStep struct {
	base
	box string
}

// CleanupContainers removes every container and image on box (a box that
// lost its development function keeps gigabytes of them on btrfs). It
// cannot be undone: images are rebuilt by install.sh.
func CleanupContainers(id, box string) Step {
	return &cleanupStep{box: box, base: base{id: id, desc: Description{
		Box:  box,
		Text: "remove all containers and images on " + box,
		Commands: []string{
			dockerContainersCmd, "docker rm -f -- <each container>",
			dockerImagesCmd, "docker rmi -f -- <each image>",
		},
		Irreversible: true,
		Retry:        true,
	}}}
}

// ids lists what a docker listing printed, once each, in order.
func (s *cleanupStep) ids(ctx context.Context, env *Env, what, cmd string) ([]string, error) {
	res, err := run(ctx, env, s.box, what, cmd, false)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var ids []string
	for _, id := range strings.Fields(res.Stdout) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (s *cleanupStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	c, err := s.ids(ctx, env, "listing the containers", dockerContainersCmd)
	if err != nil {
		return false, "", err
	}
	i, err := s.ids(ctx, env, "listing the images", dockerImagesCmd)
	if err != nil {
		return false, "", err
	}
	return len(c) == 0 && len(i) == 0, fmt.Sprintf("%d containers and %d images on %s", len(c), len(i), s.box), nil
}

func (s *cleanupStep) Apply(ctx context.Context, env *Env) error {
	c, err := s.ids(ctx, env, "listing the containers", dockerContainersCmd)
	if err != nil {
		return err
	}
	if len(c) > 0 {
		if _, err := stream(ctx, env, s.box, fmt.Sprintf("removing %d containers", len(c)), "docker rm -f -- "+quoteAll(c), false); err != nil {
			return err
		}
	}
	i, err := s.ids(ctx, env, "listing the images", dockerImagesCmd)
	if err != nil {
		return err
	}
	if len(i) > 0 {
		if _, err := stream(ctx, env, s.box, fmt.Sprintf("removing %d images", len(i)), "docker rmi -f -- "+quoteAll(i), false); err != nil {
			return err
		}
	}
	return nil
}

func (s *cleanupStep) Undo(context.Context, *Env) error {
	return fmt.Errorf("%s: removed containers and images: %w (install.sh rebuilds the images)", s.box, ErrIrreversible)
}
