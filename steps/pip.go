package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"boxswap/internal/text"
)

// PipParams names the commands of the pip steps (upgrade.python,
// upgrade.pip_command in boxes.yaml): operator command lines, run as given.
type PipParams struct {
	Python string // default "python3"
	Pip    string // default "python3 -m pip": the pip of that python
}

func (p PipParams) python() string {
	if p.Python == "" {
		return "python3"
	}
	return p.Python
}

func (p PipParams) pip() string {
	if p.Pip == "" {
		return p.python() + " -m pip"
	}
	return p.Pip
}

func (p PipParams) versionCmd() string { return p.python() + " --version" }

// listCmd lists what pip sees with where each package lives (-v adds the
// location).
func (p PipParams) listCmd() string { return p.pip() + " list -v --format=json" }

// externallyManagedCmd exits 0 when python's packages belong to the
// distribution (PEP 668): pip then installs only when told to.
func (p PipParams) externallyManagedCmd() string {
	return `test -e "$(` + p.python() + ` -c 'import sysconfig;print(sysconfig.get_path("stdlib"))')/EXTERNALLY-MANAGED"`
}

const (
	pythonVersionCmd = "python3 --version"
	pipListCmd       = "python3 -m pip list -v --format=json"
	// pipOwnPrefix is where pip installs outside the distribution's
	// package manager (Fedora since 27, Debian); the packages there are
	// the ones an upgrade to a new python leaves behind. The rule is the
	// location, not "owned by no rpm/dpkg package": it needs no query per
	// file, and what an operator installed with pip lands there, while
	// pip list also shows the distribution's own python packages
	// (rpm, selinux, systemd-python under /usr/lib*), which must never be
	// reinstalled by pip.
	pipOwnPrefix = "/usr/local/"
	// pipResult starts the line the reinstall script prints per package.
	pipResult = "boxswap-pip: "
)

// parsePythonVersion turns "Python 3.6.8" into "3.6": pip packages live
// per major.minor, so only a minor change needs them reinstalled.
func parsePythonVersion(s string) (string, error) {
	f := strings.Fields(s)
	if len(f) < 2 || f[0] != "Python" {
		return "", fmt.Errorf("unexpected answer from python --version: %q", clip(strings.TrimSpace(s)))
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
func pythonVersion(ctx context.Context, env *Env, box string, p PipParams) (string, error) {
	res, err := run(ctx, env, box, "reading the python3 version", p.versionCmd(), false)
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
		return "", fmt.Errorf("unexpected answer from pip list: %v", err)
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

// pipReinstallScript reinstalls the packages of list (quoted words) one
// by one with pip (breakFlag is pipBreakSystem or ""), printing pip's
// output and, per package, a line "boxswap-pip: ok PKG" or "boxswap-pip:
// failed PKG: REASON" (pip's first ERROR line). It always exits 0: the
// results are in the lines. Plan shows it with placeholders for both
// (pipReinstallShown), Apply sends it with the packages still missing.
func pipReinstallScript(p PipParams, list, breakFlag string) string {
	return "for p in " + list + "; do o=$(" + p.pip() + " install" + breakFlag + " -- \"$p\" 2>&1); rc=$?; printf '%s\\n' \"$o\"; " +
		"if [ $rc = 0 ]; then echo \"" + pipResult + "ok $p\"; else " +
		"r=$(printf '%s\\n' \"$o\" | grep -m1 '^ERROR:' || printf '%s\\n' \"$o\" | tail -n 1); echo \"" + pipResult + "failed $p: $r\"; fi; done"
}

// pipBreakSystem is the flag of pipReinstallScript when the new python is
// externally managed (PEP 668).
const pipBreakSystem = " --break-system-packages"

// pipReinstallShown is pipReinstallScript as plan shows it: what the box
// answers at run time as <placeholders>.
func pipReinstallShown(p PipParams, box string) string {
	return pipReinstallScript(p, "<the packages of "+box+"/pip-freeze missing for the new python>",
		"<"+pipBreakSystem+" if the new python is externally managed (PEP 668)>")
}

// pipResults reads the per-package lines of pipReinstallScript: package
// → "" for ok, else pip's reason.
func pipResults(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(line, pipResult)
		if !ok {
			continue
		}
		if pkg, ok := strings.CutPrefix(rest, "ok "); ok {
			m[strings.TrimSpace(pkg)] = ""
		} else if f, ok := strings.CutPrefix(rest, "failed "); ok {
			pkg, reason, _ := strings.Cut(f, ": ")
			if reason == "" {
				reason = "failed"
			}
			m[strings.TrimSpace(pkg)] = strings.TrimSpace(reason)
		}
	}
	return m
}

type pipSnapshotStep struct {
	base
	box string
	p   PipParams
}

// PipSnapshot records box's python version (fact BOX/python3) and the
// packages pip installed outside the distribution's (under /usr/local:
// fact BOX/pip-freeze, name==version lines) before the upgrade.
func PipSnapshot(id, box string, p PipParams) Step {
	return &pipSnapshotStep{box: box, p: p, base: base{id: id, desc: Description{
		Box: box, Text: "record python's version and the packages pip installed under /usr/local on " + box +
			" (not the distribution's own python packages)",
		Commands: []string{p.versionCmd(), p.listCmd()}, Retry: true,
	}}}
}

func (s *pipSnapshotStep) Check(_ context.Context, env *Env) (bool, string, error) {
	f, err := facts(env)
	if err != nil {
		return false, "", err
	}
	v, ok1 := f.Get(s.box + "/python3")
	pkgs, ok2 := f.Get(s.box + "/pip-freeze")
	if ok1 && ok2 {
		return true, fmt.Sprintf("recorded: python %s, %d packages under /usr/local: %s", v, len(pinnedPackages(pkgs)),
			strings.Join(pinnedPackages(pkgs), " ")), nil
	}
	return false, "not recorded yet", nil
}

func (s *pipSnapshotStep) Apply(ctx context.Context, env *Env) error {
	f, err := facts(env)
	if err != nil {
		return err
	}
	v, err := pythonVersion(ctx, env, s.box, s.p)
	if err != nil {
		return err
	}
	own, err := ownPackages(ctx, env, s.box, s.p)
	if err != nil {
		return err
	}
	if err := f.Set(s.box+"/pip-freeze", own); err != nil {
		return fmt.Errorf("%s: recording pip freeze: %w", s.box, err)
	}
	note(env, s.box, "pip snapshot: python %s; %d packages pip installed under /usr/local: %s",
		v, len(pinnedPackages(own)), strings.Join(pinnedPackages(own), " "))
	// python3 last: Check needs both, and a snapshot is only complete
	// once the list is stored.
	if err := f.Set(s.box+"/python3", v); err != nil {
		return fmt.Errorf("%s: recording the python version: %w", s.box, err)
	}
	return nil
}

// ownPackages lists what pip installed under /usr/local, as name==version
// lines.
func ownPackages(ctx context.Context, env *Env, box string, p PipParams) (string, error) {
	res, err := run(ctx, env, box, "listing what pip installed", p.listCmd(), true)
	if err != nil {
		return "", err
	}
	own, err := pipOwnPackages(res.Stdout)
	if err != nil {
		return "", fmt.Errorf("%s: %w", box, err)
	}
	return own, nil
}

func (s *pipSnapshotStep) Undo(context.Context, *Env) error { return nil }

type pipReinstallStep struct {
	base
	box string
	p   PipParams
}

// PipReinstall reinstalls, one by one, the packages PipSnapshot recorded
// when python's major.minor changed with the upgrade (their files live
// under the old version's site-packages), with --break-system-packages
// when the new python is externally managed (PEP 668: the reinstall into
// /usr/local of what the operator had installed there). It runs detached
// (a transient unit), records one result per package (fact
// BOX/pip-results), and on a resume tries only the packages still
// missing. Packages pip cannot reinstall fail the step once, listed with
// pip's reason and the ways on: fix and resume, or accept with boxswap
// mark-done. Done when python did not change, or every recorded package
// is installed for the new python.
func PipReinstall(id, box string, p PipParams) Step {
	return &pipReinstallStep{box: box, p: p, base: base{id: id, desc: Description{
		Box: box,
		Text: "reinstall, one by one, the recorded pip packages on " + box + " if python's version changed (as unit " + UnitName(id) +
			"; --break-system-packages for this reinstall into /usr/local when the new python is externally managed, PEP 668)",
		Commands: []string{p.versionCmd(), p.externallyManagedCmd(), p.listCmd(),
			detached{unit: UnitName(id), cmd: pipReinstallShown(p, box)}.shown()},
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

// missing returns the recorded packages not installed (at their version)
// for box's python now.
func (s *pipReinstallStep) missing(ctx context.Context, env *Env, freeze string) ([]string, error) {
	now, err := ownPackages(ctx, env, s.box, s.p)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, p := range pinnedPackages(now) {
		have[strings.ToLower(p)] = true
	}
	var out []string
	for _, p := range pinnedPackages(freeze) {
		if !have[strings.ToLower(p)] {
			out = append(out, p)
		}
	}
	return out, nil
}

func (s *pipReinstallStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	f, before, freeze, err := s.recorded(env)
	if err != nil {
		return false, err.Error(), nil
	}
	cur, err := pythonVersion(ctx, env, s.box, s.p)
	if err != nil {
		return false, "", err
	}
	if cur == before {
		return true, "python is still " + cur + ": nothing to reinstall", nil
	}
	if done, _ := f.Get(s.box + "/pip-reinstalled"); done == cur {
		return true, "pip packages reinstalled for python " + cur, nil
	}
	miss, err := s.missing(ctx, env, freeze)
	if err != nil {
		return false, "", err
	}
	if len(miss) == 0 {
		return true, fmt.Sprintf("python went from %s to %s; every recorded package is installed for it", before, cur), nil
	}
	return false, fmt.Sprintf("python went from %s to %s; to reinstall: %s", before, cur, strings.Join(miss, " ")), nil
}

func (s *pipReinstallStep) Apply(ctx context.Context, env *Env) error {
	f, before, freeze, err := s.recorded(env)
	if err != nil {
		return err
	}
	cur, err := pythonVersion(ctx, env, s.box, s.p)
	if err != nil || cur == before {
		return err
	}
	// A run of ours still going (the link was lost) is followed first.
	d := detached{box: s.box, unit: UnitName(s.id), label: "pip reinstall"}
	if st, ours, err := d.ours(ctx, env); err != nil {
		return err
	} else if ours && st.alive {
		if _, err := d.attach(ctx, env); err != nil {
			return err
		}
	}
	miss, err := s.missing(ctx, env, freeze)
	if err != nil {
		return err
	}
	results := map[string]string{}
	if len(miss) > 0 {
		res, err := execute(ctx, env, s.box, "looking for python3's EXTERNALLY-MANAGED marker", s.p.externallyManagedCmd(), false)
		if err != nil {
			return err
		}
		flag := ""
		if res.Exit == 0 {
			flag = pipBreakSystem
		}
		d.cmd = pipReinstallScript(s.p, quoteAll(miss), flag)
		end, err := d.start(ctx, env)
		if err != nil {
			return err
		}
		if !end.ok() {
			return end.err(d)
		}
		results = pipResults(end.Stdout)
	}
	return s.report(env, f, freeze, miss, results, cur)
}

// report records one result per recorded package (in the step's record and
// its output), and fails once, listing pip's reasons and the ways on, when
// any package could not be reinstalled.
func (s *pipReinstallStep) report(env *Env, f Facts, freeze string, miss []string, results map[string]string, cur string) error {
	var lines, failed []string
	for _, p := range pinnedPackages(freeze) {
		reason, tried := results[p]
		switch {
		case !tried && slices.Contains(miss, p):
			reason = "no result from pip"
			fallthrough
		case reason != "":
			lines = append(lines, p+": failed: "+reason)
			failed = append(failed, "  "+p+": "+reason)
		case tried:
			lines = append(lines, p+": reinstalled for python "+cur)
		default:
			lines = append(lines, p+": already installed for python "+cur)
		}
	}
	for _, l := range lines {
		note(env, s.box, "pip: %s", l)
	}
	if err := f.Set(s.box+"/pip-results", strings.Join(lines, "\n")); err != nil {
		return fmt.Errorf("%s: recording the pip results: %w", s.box, err)
	}
	if len(failed) > 0 {
		return &hinted{
			msg: fmt.Sprintf("%s: pip could not reinstall %d of %d packages for python %s: %s",
				s.box, len(failed), len(pinnedPackages(freeze)), cur, text.OneLine(failed[0], 60)),
			hint: "install them by hand or drop them, then boxswap resume; or accept: boxswap mark-done " + s.id +
				" --reason TEXT; or set upgrade.pip: skip",
			more: strings.Join(failed, "; ") + "; the others are reinstalled; by hand: " + s.p.pip() +
				" install --break-system-packages ...; resume tries only the missing ones; upgrade.pip: skip in boxes.yaml holds for the next cycles",
		}
	}
	if err := f.Set(s.box+"/pip-reinstalled", cur); err != nil {
		return fmt.Errorf("%s: recording the reinstall: %w", s.box, err)
	}
	return nil
}

func (s *pipReinstallStep) Undo(context.Context, *Env) error { return nil }
