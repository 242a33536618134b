package steps

import (
	"context"
	"fmt"
	"strings"
)

type branchStep struct {
	base
	box, checkout, branch string
}

// Branch creates and checks out the devel branch in the app checkout on
// box, remembering the branch it was on (fact BOX/branch-before) and
// whether it created the branch (fact BOX/branch-created), so Undo goes
// back there and deletes only a branch it made.
func Branch(id, box, checkout, branch string) Step {
	s := &branchStep{box: box, checkout: checkout, branch: branch}
	s.base = base{id: id, desc: Description{
		Box:   box,
		Text:  fmt.Sprintf("create and check out branch %s in %s on %s", branch, checkout, box),
		Retry: true,
		Commands: []string{
			s.git("symbolic-ref --short -q HEAD"),
			s.git("rev-parse --verify --quiet " + quote("refs/heads/"+branch)),
			s.git("checkout -b " + quote(branch)),
		},
		Undo: []string{
			s.git("checkout <branch before>"),
			s.git("branch -D " + quote(branch)),
		},
	}}
	return s
}

func (s *branchStep) git(args string) string { return "git -C " + quote(s.checkout) + " " + args }

func (s *branchStep) beforeKey() string  { return s.box + "/branch-before" }
func (s *branchStep) createdKey() string { return s.box + "/branch-created" }

// current returns the checked-out branch, or the commit when detached.
func (s *branchStep) current(ctx context.Context, env *Env) (string, error) {
	res, err := execute(ctx, env, s.box, "", s.git("symbolic-ref --short -q HEAD"), false)
	if err != nil {
		return "", err
	}
	if res.Exit == 0 {
		return firstLine(res.Stdout), nil
	}
	res, err = run(ctx, env, s.box, "", s.git("rev-parse --verify HEAD"), false)
	if err != nil {
		return "", err
	}
	return firstLine(res.Stdout), nil
}

func (s *branchStep) exists(ctx context.Context, env *Env) (bool, error) {
	res, err := execute(ctx, env, s.box, "", s.desc.Commands[1], false)
	if err != nil {
		return false, err
	}
	return res.Exit == 0, nil
}

// validName refuses names git would read as options.
func validName(name string) error {
	if name == "" || strings.HasPrefix(name, "-") || strings.ContainsAny(name, " \t\n") {
		return fmt.Errorf("%q is not a usable branch name", clip(name))
	}
	return nil
}

func (s *branchStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	cur, err := s.current(ctx, env)
	if err != nil {
		return false, "", err
	}
	return cur == s.branch, fmt.Sprintf("%s is on %s", s.checkout, cur), nil
}

func (s *branchStep) Apply(ctx context.Context, env *Env) error {
	f, err := facts(env)
	if err != nil {
		return err
	}
	if err := validName(s.branch); err != nil {
		return fmt.Errorf("%s: %w: fix upgrade.devel_branch in boxes.yaml", s.box, err)
	}
	cur, err := s.current(ctx, env)
	if err != nil || cur == s.branch {
		return err
	}
	if _, ok := f.Get(s.beforeKey()); !ok {
		if err := f.Set(s.beforeKey(), cur); err != nil {
			return fmt.Errorf("%s: recording the branch: %w", s.box, err)
		}
	}
	exists, err := s.exists(ctx, env)
	if err != nil {
		return err
	}
	if exists {
		_, err = stream(ctx, env, s.box, "", s.git("checkout "+quote(s.branch)), false)
		return err
	}
	// Recorded before creating, so an interrupted Apply still lets Undo
	// delete the branch it made.
	if err := f.Set(s.createdKey(), s.branch); err != nil {
		return fmt.Errorf("%s: recording the branch: %w", s.box, err)
	}
	_, err = stream(ctx, env, s.box, "", s.desc.Commands[2], false)
	return err
}

func (s *branchStep) Undo(ctx context.Context, env *Env) error {
	f, err := facts(env)
	if err != nil {
		return err
	}
	before, ok := f.Get(s.beforeKey())
	if !ok {
		return nil // Apply never started
	}
	if err := validName(before); err != nil {
		return fmt.Errorf("%s: %s was on %w before: check it out by hand", s.box, s.checkout, err)
	}
	cur, err := s.current(ctx, env)
	if err != nil {
		return err
	}
	if cur != before {
		if _, err := stream(ctx, env, s.box, "", s.git("checkout "+quote(before)), false); err != nil {
			return err
		}
	}
	if created, _ := f.Get(s.createdKey()); created == s.branch {
		exists, err := s.exists(ctx, env)
		if err != nil {
			return err
		}
		if exists {
			if _, err := stream(ctx, env, s.box, "", s.git("branch -D "+quote(s.branch)), false); err != nil {
				return err
			}
		}
		if err := f.Delete(s.createdKey()); err != nil {
			return err
		}
	}
	return f.Delete(s.beforeKey())
}
