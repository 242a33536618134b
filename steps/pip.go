package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

const (
	pythonVersionCmd = "python3 --version"
	pipFreezeCmd     = "pip3 freeze"
)

// parsePythonVersion turns "Python 3.6.8" into "3.6": pip packages live
// per major.minor, so only a minor change needs them reinstalled.
func parsePythonVersion(s string) (string, error) {
	f := strings.Fields(s)
	if len(f) < 2 || f[0] != "Python" {
		return "", fmt.Errorf("unexpected answer from %s: %q", pythonVersionCmd, clip(strings.TrimSpace(s)))
	}
	parts := strings.SplitN(f[1], ".", 3)
	if len(parts) < 2 || !digits(parts[0]) || !digits(parts[1]) {
		return "", fmt.Errorf("unexpected python version %q", clip(f[1]))
	}
	return parts[0] + "." + parts[1], nil
}

func digits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

// pythonVersion asks box for its python3 major.minor. Python before 3.4
// answered on stderr, so the tail is the fallback.
func pythonVersion(ctx context.Context, env *Env, box string) (string, error) {
	res, err := run(ctx, env, box, "", pythonVersionCmd, false)
	if err != nil {
		return "", err
	}
	answer := firstLine(res.Stdout)
	if answer == "" {
		answer = lastLine(res.Tail)
	}
	v, err := parsePythonVersion(answer)
	if err != nil {
		return "", fmt.Errorf("%s: %w", box, err)
	}
	return v, nil
}

// pinnedPackages returns the name==version lines of a pip freeze; editable
// installs, URLs and comments are left out (they are not reinstallable by
// version).
func pinnedPackages(freeze string) []string {
	var pkgs []string
	for _, line := range strings.Split(freeze, "\n") {
		line = strings.TrimSpace(line)
		name, ver, ok := strings.Cut(line, "==")
		if !ok || !pkgWord(name) || !pkgWord(ver) {
			continue
		}
		pkgs = append(pkgs, name+"=="+ver)
	}
	return pkgs
}

func pkgWord(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-+!", r)) {
			return false
		}
	}
	return true
}

func pipInstallCmd(pkgs []string) string { return "pip3 install -- " + quoteAll(pkgs) }

type pipSnapshotStep struct {
	base
	box string
}

// PipSnapshot records box's python3 version (fact BOX/python3) and its
// pip-installed packages (fact BOX/pip-freeze) before the upgrade.
func PipSnapshot(id, box string) Step {
	return &pipSnapshotStep{box: box, base: base{id: id, desc: Description{
		Box: box, Text: "record python3's version and the pip-installed packages on " + box,
		Commands: []string{pythonVersionCmd, pipFreezeCmd}, Retry: true,
	}}}
}

func (s *pipSnapshotStep) Check(_ context.Context, env *Env) (bool, string, error) {
	f, err := facts(env)
	if err != nil {
		return false, "", err
	}
	v, ok1 := f.Get(s.box + "/python3")
	_, ok2 := f.Get(s.box + "/pip-freeze")
	if ok1 && ok2 {
		return true, "recorded: python " + v, nil
	}
	return false, "not recorded yet", nil
}

func (s *pipSnapshotStep) Apply(ctx context.Context, env *Env) error {
	f, err := facts(env)
	if err != nil {
		return err
	}
	v, err := pythonVersion(ctx, env, s.box)
	if err != nil {
		return err
	}
	res, err := run(ctx, env, s.box, "", pipFreezeCmd, false)
	if err != nil {
		return err
	}
	if err := f.Set(s.box+"/pip-freeze", res.Stdout); err != nil {
		return fmt.Errorf("%s: recording pip freeze: %w", s.box, err)
	}
	// python3 last: Check needs both, and a snapshot is only complete
	// once the list is stored.
	if err := f.Set(s.box+"/python3", v); err != nil {
		return fmt.Errorf("%s: recording the python version: %w", s.box, err)
	}
	return nil
}

func (s *pipSnapshotStep) Undo(context.Context, *Env) error { return nil }

type pipReinstallStep struct {
	base
	box string
}

// PipReinstall reinstalls the packages PipSnapshot recorded when python3's
// major.minor changed with the upgrade (their files live under the old
// version's site-packages). It sets BOX/pip-reinstalled to the new version.
func PipReinstall(id, box string) Step {
	return &pipReinstallStep{box: box, base: base{id: id, desc: Description{
		Box:      box,
		Text:     "reinstall the recorded pip packages on " + box + " if python3's version changed (name==version lines only)",
		Commands: []string{pythonVersionCmd, "pip3 install -- <each name==version recorded in " + box + "/pip-freeze>"},
		Retry:    true,
	}}}
}

func (s *pipReinstallStep) recorded(env *Env) (Facts, string, string, error) {
	f, err := facts(env)
	if err != nil {
		return nil, "", "", err
	}
	before, ok := f.Get(s.box + "/python3")
	freeze, ok2 := f.Get(s.box + "/pip-freeze")
	if !ok || !ok2 {
		return nil, "", "", fmt.Errorf("%s: no pip snapshot recorded before the upgrade: %w; reinstall pip packages by hand if needed", s.box, errNoSnapshot)
	}
	return f, before, freeze, nil
}

var errNoSnapshot = errors.New("nothing to compare with")

func (s *pipReinstallStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	f, before, _, err := s.recorded(env)
	if err != nil {
		return false, err.Error(), nil
	}
	cur, err := pythonVersion(ctx, env, s.box)
	if err != nil {
		return false, "", err
	}
	if cur == before {
		return true, "python3 is still " + cur + ": nothing to reinstall", nil
	}
	if done, _ := f.Get(s.box + "/pip-reinstalled"); done == cur {
		return true, "pip packages reinstalled for python " + cur, nil
	}
	return false, "python3 went from " + before + " to " + cur, nil
}

func (s *pipReinstallStep) Apply(ctx context.Context, env *Env) error {
	f, before, freeze, err := s.recorded(env)
	if err != nil {
		return err
	}
	cur, err := pythonVersion(ctx, env, s.box)
	if err != nil || cur == before {
		return err
	}
	if pkgs := pinnedPackages(freeze); len(pkgs) > 0 {
		label := fmt.Sprintf("pip3 install (%d packages)", len(pkgs))
		if _, err := stream(ctx, env, s.box, label, pipInstallCmd(pkgs), false); err != nil {
			return fmt.Errorf("%w; a pinned version may not exist for python %s: install the packages by hand, then run boxswap resume", err, cur)
		}
	}
	if err := f.Set(s.box+"/pip-reinstalled", cur); err != nil {
		return fmt.Errorf("%s: recording the reinstall: %w", s.box, err)
	}
	return nil
}

func (s *pipReinstallStep) Undo(context.Context, *Env) error { return nil }
