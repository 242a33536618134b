package steps

import (
	"context"
	"fmt"
	"path"
	"strings"
)

// ForceCheckout is the override (--force checkout) that lets switch-back
// move production to a box whose checkout is not at the commit that
// served production.
const ForceCheckout Guard = "checkout"

// HeadCmd prints the commit checked out in checkout.
func HeadCmd(checkout string) string { return gitCmd(checkout, "rev-parse --verify HEAD") }

// DirtyCmd lists the tracked files with local edits in checkout, the
// settings file (a path relative to the checkout, or "") left out: its
// lines are boxswap's to edit.
func DirtyCmd(checkout, settings string) string {
	c := gitCmd(checkout, "status --porcelain --untracked-files=no")
	if settings != "" {
		c += " -- . " + quote(":(exclude)"+settings)
	}
	return c
}

// SettingsInCheckout returns the settings file's path relative to the
// checkout, "" when it lies elsewhere.
func SettingsInCheckout(checkout, settings string) string {
	dir := path.Clean(checkout) + "/"
	if rel, ok := strings.CutPrefix(path.Clean(settings), dir); ok {
		return rel
	}
	return ""
}

func head(ctx context.Context, env *Env, box, checkout string) (string, error) {
	res, err := run(ctx, env, box, "reading the commit checked out in "+checkout, HeadCmd(checkout), false)
	if err != nil {
		return "", err
	}
	c := firstLine(res.Stdout)
	if !isCommit(c) {
		return "", fmt.Errorf("%s: %s: HEAD is %q, not a commit", box, checkout, clip(c))
	}
	return c, nil
}

type headStep struct {
	base
	box, checkout, key string
}

// RecordHead reads the commit box's checkout is at, at run time, into the
// fact key (once: a resume keeps the commit first read).
func RecordHead(id, box, checkout, key string) Step {
	return &headStep{box: box, checkout: checkout, key: key, base: base{id: id, desc: Description{
		Box: box, Text: fmt.Sprintf("record the commit %s runs (%s)", box, checkout),
		Commands: []string{HeadCmd(checkout)}, Retry: true,
	}}}
}

func (s *headStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	f, err := facts(env)
	if err != nil {
		return false, "", err
	}
	if c, ok := f.Get(s.key); ok {
		return true, fmt.Sprintf("%s runs %s", s.box, short(c)), nil
	}
	return false, "not read yet", nil
}

func (s *headStep) Apply(ctx context.Context, env *Env) error {
	f, err := facts(env)
	if err != nil {
		return err
	}
	if _, ok := f.Get(s.key); ok {
		return nil
	}
	c, err := head(ctx, env, s.box, s.checkout)
	if err != nil {
		return err
	}
	progress(env, "%s runs commit %s", s.box, c)
	return f.Set(s.key, c)
}

func (s *headStep) Undo(ctx context.Context, env *Env) error {
	f, err := facts(env)
	if err != nil {
		return err
	}
	return f.Delete(s.key)
}

type cleanStep struct {
	base
	box, checkout, settings string
}

// CleanCheckout fails, naming the files, when box's checkout has local
// edits to tracked files other than the settings file: before anything
// (a branch, install.sh) changes it.
func CleanCheckout(id, box, checkout, settings string) Step {
	rel := SettingsInCheckout(checkout, settings)
	return &cleanStep{box: box, checkout: checkout, settings: rel, base: base{id: id, desc: Description{
		Box: box, Text: fmt.Sprintf("check that %s on %s has no local edits to tracked files", checkout, box),
		Commands: []string{DirtyCmd(checkout, rel)}, Retry: true,
	}}}
}

func (s *cleanStep) dirty(ctx context.Context, env *Env) ([]string, error) {
	res, err := run(ctx, env, s.box, "looking for local changes in "+s.checkout, s.desc.Commands[0], false)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, l := range strings.Split(res.Stdout, "\n") {
		if len(l) > 3 {
			files = append(files, clip(l[3:]))
		}
	}
	return files, nil
}

func (s *cleanStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	files, err := s.dirty(ctx, env)
	if err != nil {
		return false, "", err
	}
	if len(files) > 0 {
		return false, "local edits: " + strings.Join(files, ", "), nil
	}
	return true, s.checkout + " is clean", nil
}

func (s *cleanStep) Apply(ctx context.Context, env *Env) error {
	files, err := s.dirty(ctx, env)
	if err != nil || len(files) == 0 {
		return err
	}
	err = fmt.Errorf("%s: %s has local edits to %d tracked files (%s): %w; commit or undo them",
		s.box, s.checkout, len(files), clip(strings.Join(files, ", ")), ErrPrecondition)
	return withDetail(err, "files: "+strings.Join(files, ", ")+"; commit them (and push, so the other box gets them) or undo them (git -C "+
		quote(s.checkout)+" checkout -- FILE), then resume")
}

func (s *cleanStep) Undo(context.Context, *Env) error { return nil }

type sameCodeStep struct {
	base
	box, ref, checkout string
}

// SameCode refuses (guard ForceCheckout) unless box's checkout is at the
// commit ref's checkout runs: switch-back puts production on the code
// that served it on ref.
func SameCode(id, box, ref, checkout string) Step {
	return &sameCodeStep{box: box, ref: ref, checkout: checkout, base: base{id: id, desc: Description{
		Box: box, Text: fmt.Sprintf("check that %s on %s is at the commit %s serves production with (--force %s overrides)", checkout, box, ref, ForceCheckout),
		Commands: []string{HeadCmd(checkout)}, Retry: true,
		NoCheckAfter: "it compares the commits itself, and lets --force " + string(ForceCheckout) + " through, which a check would not",
	}}}
}

func (s *sameCodeStep) heads(ctx context.Context, env *Env) (mine, theirs string, err error) {
	if theirs, err = head(ctx, env, s.ref, s.checkout); err != nil {
		return "", "", err
	}
	mine, err = head(ctx, env, s.box, s.checkout)
	return mine, theirs, err
}

func (s *sameCodeStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	mine, theirs, err := s.heads(ctx, env)
	if err != nil {
		return false, "", err
	}
	why := fmt.Sprintf("%s is at %s, %s at %s", s.box, short(mine), s.ref, short(theirs))
	return mine == theirs, why, nil
}

func (s *sameCodeStep) Apply(ctx context.Context, env *Env) error {
	mine, theirs, err := s.heads(ctx, env)
	if err != nil || mine == theirs {
		return err
	}
	if force(env, ForceCheckout) {
		progress(env, "guard %s overridden: %s is at %s, %s serves production at %s", ForceCheckout, s.box, mine, s.ref, theirs)
		return nil
	}
	return refusal(fmt.Sprintf("refusing to move production to %s: its checkout %s is at %s, but %s serves production at %s; nothing was stopped; "+
		"bring %s to %s (fetch it from %s over ssh, check it out on the devel branch) and resume, or run again with --force %s",
		s.box, s.checkout, short(mine), s.ref, theirs, s.box, short(theirs), s.ref, ForceCheckout), ErrRefused)
}

func (s *sameCodeStep) Undo(context.Context, *Env) error { return nil }
