package steps

import (
	"context"
	"fmt"
	"path"
	"strings"
)

type renameStep struct {
	base
	box, root, folder, suffix string
}

// Rename moves ROOT/FOLDER to ROOT/FOLDER+SUFFIX (students → students.prod:
// a backup that also speeds the next sync), replacing an older backup
// safely: the older one is first moved aside to .old, removed only once
// the new one is in place. Every state between the moves is resumable.
// Undo moves the folder back when it is absent; the older backup is gone.
func Rename(id, box, root, folder, suffix string) Step {
	s := &renameStep{box: box, root: root, folder: folder, suffix: suffix}
	src, dst, old := s.paths()
	s.base = base{id: id, desc: Description{
		Box:   box,
		Text:  fmt.Sprintf("rename %s to %s on %s (replacing an older %s)", src, dst, box, dst),
		Retry: true,
		Commands: []string{
			s.probeCmd(),
			"mv -T -- " + quote(dst) + " " + quote(old),
			"mv -T -- " + quote(src) + " " + quote(dst),
			"rm -rf -- " + quote(old),
		},
		Undo: []string{"mv -T -- " + quote(dst) + " " + quote(src)},
	}}
	return s
}

func (s *renameStep) paths() (src, dst, old string) {
	src = path.Join(s.root, s.folder)
	return src, src + s.suffix, src + s.suffix + ".old"
}

// validate refuses paths where a move or the rm -rf could reach something
// else than the folder and its backups.
func (s *renameStep) validate() error {
	switch {
	case !path.IsAbs(s.root):
		return fmt.Errorf("data root %q is not an absolute path: fix data.root in boxes.yaml", s.root)
	case s.folder == "" || s.folder == "." || s.folder == ".." || strings.Contains(s.folder, "/"):
		return fmt.Errorf("data folder %q is not one plain folder name: fix data.folders in boxes.yaml", s.folder)
	case s.suffix == "" || strings.Contains(s.suffix, "/"):
		return fmt.Errorf("backup suffix %q must be a non-empty name part: fix data.backup_suffix in boxes.yaml", s.suffix)
	}
	return nil
}

// probeCmd prints which of the three paths exist, one word a line.
func (s *renameStep) probeCmd() string {
	src, dst, old := s.paths()
	return fmt.Sprintf("if test -e %s; then echo src; fi; if test -e %s; then echo dst; fi; if test -e %s; then echo old; fi",
		quote(src), quote(dst), quote(old))
}

type renameSeen struct{ src, dst, old bool }

func (s *renameStep) probe(ctx context.Context, env *Env) (renameSeen, error) {
	res, err := run(ctx, env, s.box, "looking at "+s.folder+" and its renamed copy", s.probeCmd(), false)
	if err != nil {
		return renameSeen{}, err
	}
	var seen renameSeen
	for _, w := range strings.Fields(res.Stdout) {
		switch w {
		case "src":
			seen.src = true
		case "dst":
			seen.dst = true
		case "old":
			seen.old = true
		default:
			return seen, fmt.Errorf("%s: unexpected answer %q checking %s", s.box, clip(w), s.root)
		}
	}
	return seen, nil
}

func (s *renameStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	if err := s.validate(); err != nil {
		return false, err.Error(), nil
	}
	seen, err := s.probe(ctx, env)
	if err != nil {
		return false, "", err
	}
	src, dst, old := s.paths()
	switch {
	case !seen.src && seen.dst && !seen.old:
		return true, fmt.Sprintf("%s is in %s", src, dst), nil
	case seen.old:
		return false, old + " is still there", nil
	}
	return false, fmt.Sprintf("%s is still there", src), nil
}

func (s *renameStep) Apply(ctx context.Context, env *Env) error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("%s: %w", s.box, err)
	}
	seen, err := s.probe(ctx, env)
	if err != nil {
		return err
	}
	src, dst, old := s.paths()
	mv := func(a, b string) error {
		_, err := stream(ctx, env, s.box, "renaming "+a+" to "+b, "mv -T -- "+quote(a)+" "+quote(b), false)
		return err
	}
	if seen.src {
		if seen.dst {
			if seen.old {
				// A .old left by an earlier cycle: make room for this one.
				if _, err := stream(ctx, env, s.box, "removing "+old, "rm -rf -- "+quote(old), false); err != nil {
					return err
				}
			}
			if err := mv(dst, old); err != nil {
				return err
			}
			seen.old = true
		}
		if err := mv(src, dst); err != nil {
			return err
		}
	} else if !seen.dst {
		return fmt.Errorf("%s: neither %s nor %s exists: %w; check data.root and data.folders in boxes.yaml", s.box, src, dst, ErrPrecondition)
	}
	if seen.old {
		if _, err := stream(ctx, env, s.box, "removing "+old, "rm -rf -- "+quote(old), false); err != nil {
			return err
		}
	}
	return nil
}

func (s *renameStep) Undo(ctx context.Context, env *Env) error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("%s: %w", s.box, err)
	}
	seen, err := s.probe(ctx, env)
	if err != nil || seen.src || !seen.dst {
		return err
	}
	src, dst, _ := s.paths()
	_, err = stream(ctx, env, s.box, "renaming "+dst+" back to "+src, "mv -T -- "+quote(dst)+" "+quote(src), false)
	return err
}
