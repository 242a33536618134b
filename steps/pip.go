package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

const (
	pythonVersionCmd = "python3 --version"
	// pipListCmd lists what pip sees with where each package lives (-v
	// adds the location); python3 -m pip is the pip of that python3.
	pipListCmd = "python3 -m pip list -v --format=json"
	// externallyManagedCmd exits 0 when python3's packages belong to the
	// distribution (PEP 668): pip then installs only when told to.
	externallyManagedCmd = `test -e "$(python3 -c 'import sysconfig;print(sysconfig.get_path("stdlib"))')/EXTERNALLY-MANAGED"`
	// pipOwnPrefix is where pip installs outside the distribution's
	// package manager (Fedora since 27, Debian); the packages there are
	// the ones an upgrade to a new python leaves behind.
	pipOwnPrefix = "/usr/local/"
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

// pipOwnPackages returns, as name==version lines (the format of pip
// freeze, kept by the BOX/pip-freeze fact), the packages of a pipListCmd
// answer that pip installed itself: under pipOwnPrefix, not editable,
// named in plain words (see pinnedPackages). An
// old pip that gives no locations (before the json list had them) gives
// every package, as pip freeze did.
func pipOwnPackages(out string) (string, error) {
	// Log lines -v may print come before the one line of JSON.
	var list string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "[") {
			list = line
		}
	}
	var pkgs []struct {
		Name     string `json:"name"`
		Version  string `json:"version"`
		Location string `json:"location"`
		Editable string `json:"editable_project_location"`
	}
	if err := json.Unmarshal([]byte(list), &pkgs); err != nil {
		return "", fmt.Errorf("unexpected answer from %s: %v", pipListCmd, err)
	}
	located := false
	for _, p := range pkgs {
		located = located || p.Location != ""
	}
	var b strings.Builder
	for _, p := range pkgs {
		if p.Editable != "" || located && !strings.HasPrefix(p.Location, pipOwnPrefix) || !pkgWord(p.Name) || !pkgWord(p.Version) {
			continue
		}
		b.WriteString(p.Name + "==" + p.Version + "\n")
	}
	return b.String(), nil
}

// pipInstallCmd reinstalls pkgs; breakSystem adds --break-system-packages,
// which an externally managed python3 needs (they go to /usr/local, where
// the distribution's packages are not).
func pipInstallCmd(pkgs []string, breakSystem bool) string {
	cmd := "python3 -m pip install "
	if breakSystem {
		cmd += "--break-system-packages "
	}
	return cmd + "-- " + quoteAll(pkgs)
}

type pipSnapshotStep struct {
	base
	box string
}

// PipSnapshot records box's python3 version (fact BOX/python3) and the
// packages pip installed outside the distribution's (under /usr/local:
// fact BOX/pip-freeze, name==version lines) before the upgrade.
func PipSnapshot(id, box string) Step {
	return &pipSnapshotStep{box: box, base: base{id: id, desc: Description{
		Box: box, Text: "record python3's version and the packages pip installed under /usr/local on " + box,
		Commands: []string{pythonVersionCmd, pipListCmd}, Retry: true,
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
	res, err := run(ctx, env, s.box, "", pipListCmd, false)
	if err != nil {
		return err
	}
	own, err := pipOwnPackages(res.Stdout)
	if err != nil {
		return fmt.Errorf("%s: %w", s.box, err)
	}
	if err := f.Set(s.box+"/pip-freeze", own); err != nil {
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
// version's site-packages), with --break-system-packages when the new
// python3 is externally managed. It sets BOX/pip-reinstalled to the new
// version.
func PipReinstall(id, box string) Step {
	return &pipReinstallStep{box: box, base: base{id: id, desc: Description{
		Box: box,
		Text: "reinstall the recorded pip packages on " + box + " if python3's version changed (name==version lines only; " +
			"--break-system-packages when the new python3 is externally managed)",
		Commands: []string{pythonVersionCmd, externallyManagedCmd,
			"python3 -m pip install [--break-system-packages] -- <each name==version recorded in " + box + "/pip-freeze>"},
		Retry: true,
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
		res, err := execute(ctx, env, s.box, "", externallyManagedCmd, false)
		if err != nil {
			return err
		}
		label := fmt.Sprintf("pip install (%d packages)", len(pkgs))
		if _, err := stream(ctx, env, s.box, label, pipInstallCmd(pkgs, res.Exit == 0), false); err != nil {
			return fmt.Errorf("%w; a pinned version may not exist for python %s: install the packages by hand, then run boxswap resume", err, cur)
		}
	}
	if err := f.Set(s.box+"/pip-reinstalled", cur); err != nil {
		return fmt.Errorf("%s: recording the reinstall: %w", s.box, err)
	}
	return nil
}

func (s *pipReinstallStep) Undo(context.Context, *Env) error { return nil }
