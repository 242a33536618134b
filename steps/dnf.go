package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// cmdStep runs one fixed command; dnf steps and the like are this plus a
// check and an undo.
type cmdStep struct {
	base
	box   string
	cmd   string
	check string // exit 0 means done; "" means never done
	undo  string // "" means nothing to undo
	label string // what it does, in words, for messages: "refreshing the package lists"
	// remember records a successful Apply in the fact done/ID, which Check
	// then reports (an always-safe command is done once it ran).
	remember bool
	// onRelease > 0: done once the box runs that release or later (the
	// step only matters before the release change).
	onRelease int
	// detach runs cmd detached (see detached): re-attached after a lost
	// link, never twice at once; done once that run exited 0.
	detach bool
}

func (s *cmdStep) run() detached {
	return detached{box: s.box, unit: UnitName(s.id), label: s.doing(), cmd: s.cmd}
}

// doing is what the step does, in words, for messages: never cmd, which
// goes to the step's record.
func (s *cmdStep) doing() string {
	if s.label != "" {
		return s.label
	}
	return "running " + s.desc.Text
}

func (s *cmdStep) doneKey() string { return "done/" + s.id }

func (s *cmdStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	if s.onRelease > 0 {
		on, why, err := releaseAtLeast(ctx, env, s.box, s.onRelease)
		if err != nil || on {
			return on, why, err
		}
	}
	if s.remember {
		f, err := facts(env)
		if err != nil {
			return false, "", err
		}
		if at, ok := f.Get(s.doneKey()); ok {
			return true, "ran at " + at, nil
		}
	}
	if s.detach {
		ok, err := s.run().finishedOK(ctx, env)
		if err != nil || ok {
			return ok, s.run().unit + " exited 0", err
		}
	}
	if s.check == "" {
		if s.detach || s.remember {
			return false, "not run yet", nil
		}
		return false, "always run: it is safe to repeat", nil
	}
	res, err := execute(ctx, env, s.box, "checking whether "+s.doing()+" is needed", s.check, false)
	if err != nil {
		return false, "", err
	}
	if res.Exit == 0 {
		return true, "its check exited 0", nil
	}
	return false, fmt.Sprintf("its check exited %d", res.Exit), nil
}

func (s *cmdStep) Apply(ctx context.Context, env *Env) error {
	if s.detach {
		d := s.run()
		end, err := d.attach(ctx, env)
		if err == nil && end.Earlier && !end.ok() {
			// The last run failed or was interrupted before this resume:
			// run it again (it is not running now).
			progress(env, "%s: the last run of %s did not end well; running it again", s.box, d.label)
			end, err = d.start(ctx, env)
		}
		if err != nil {
			return err
		}
		return end.err(d)
	}
	if _, err := stream(ctx, env, s.box, s.doing(), s.cmd, false); err != nil {
		return err
	}
	if s.remember {
		f, err := facts(env)
		if err != nil {
			return err
		}
		return f.Set(s.doneKey(), nowText())
	}
	return nil
}

func (s *cmdStep) Undo(ctx context.Context, env *Env) error {
	if s.remember || s.detach {
		f, err := facts(env)
		if err != nil {
			return err
		}
		if err := f.Delete(s.doneKey()); err != nil {
			return err
		}
		if err := s.run().forget(env); err != nil {
			return err
		}
	}
	if s.undo == "" {
		return nil
	}
	_, err := stream(ctx, env, s.box, "undoing "+s.doing(), s.undo, false)
	return err
}

// DnfUpgrade brings box up to date in its current release, as
// system-upgrade wants, as a detached transaction (see AptUpgrade). Done
// once its run exited 0, or when the box already runs release to. No undo.
func DnfUpgrade(id, box string, to int) Step {
	d := detached{box: box, unit: UnitName(id), label: "dnf upgrade", cmd: "dnf upgrade --refresh -y"}
	return &txStep{box: box, pm: Rpm, d: d,
		already: onRelease(box, to),
		base: base{id: id, desc: Description{
			Box: box, Text: "upgrade the packages of " + box + " in its current release as unit " + UnitName(id),
			Commands: []string{Rpm.Health, d.shown(), Rpm.Recover}, Retry: true,
		}}}
}

// onRelease is an already-check: box runs release to or later.
func onRelease(box string, to int) func(context.Context, *Env) (bool, string, error) {
	return func(ctx context.Context, env *Env) (bool, string, error) {
		return releaseAtLeast(ctx, env, box, to)
	}
}

// DnfInstall installs pkg on box unless rpm already has it (or the box
// already runs release to), as a detached transaction. Undo leaves it.
func DnfInstall(id, box, pkg string, to int) Step {
	d := detached{box: box, unit: UnitName(id), label: "dnf install " + pkg, cmd: "dnf install -y -- " + quote(pkg)}
	check := "rpm -q -- " + quote(pkg)
	s := &txStep{box: box, pm: Rpm, d: d,
		base: base{id: id, desc: Description{
			Box: box, Text: "install " + pkg + " on " + box,
			Commands: []string{check, d.shown()}, Retry: true,
		}}}
	s.already = func(ctx context.Context, env *Env) (bool, string, error) {
		if on, why, err := releaseAtLeast(ctx, env, box, to); err != nil || on {
			return on, why, err
		}
		res, err := execute(ctx, env, box, "checking whether "+pkg+" is installed", check, false)
		if err != nil {
			return false, "", err
		}
		return res.Exit == 0, fmt.Sprintf("%s: exit %d", check, res.Exit), nil
	}
	return s
}

// DnfDownloadCmd is the download of release with the operator's extra
// options (upgrade.options, e.g. --allowerasing), each quoted.
func DnfDownloadCmd(release int, options []string) string {
	cmd := "dnf system-upgrade download --releasever=" + quote(strconv.Itoa(release)) + " -y"
	if len(options) > 0 {
		cmd += " " + quoteAll(options)
	}
	return cmd
}

// upgradeStateCmd prints the system-upgrade plugin's state file (its path
// since dnf-plugins-core 4, then the older one).
const upgradeStateCmd = "for f in /var/lib/dnf/system-upgrade/system-upgrade-state.json /var/lib/dnf/system-upgrade.json; do " +
	"if [ -f \"$f\" ]; then cat \"$f\"; exit 0; fi; done; echo '{}'"

// upgradeState is what the plugin's state file says.
type upgradeState struct {
	Download string `json:"download_status"`
	Upgrade  string `json:"upgrade_status"`
	Target   any    `json:"target_releasever"`
}

func (u upgradeState) target() string {
	switch v := u.Target.(type) {
	case string:
		return v
	case float64:
		return strconv.Itoa(int(v))
	}
	return ""
}

// downloaded says whether the plugin's state holds a complete download
// of release.
func downloaded(ctx context.Context, env *Env, box string, release int) (bool, string, error) {
	res, err := run(ctx, env, box, "reading the state of dnf system-upgrade", upgradeStateCmd, false)
	if err != nil {
		return false, "", err
	}
	var st upgradeState
	if err := json.Unmarshal([]byte(strings.TrimSpace(res.Stdout)), &st); err != nil {
		return false, "", fmt.Errorf("%s: the system-upgrade state file: %w", box, err)
	}
	if st.Download == "complete" && st.target() == strconv.Itoa(release) {
		return true, fmt.Sprintf("the download of release %d is complete (upgrade %s)", release, orNone(st.Upgrade)), nil
	}
	return false, fmt.Sprintf("system-upgrade state: download %s, target %s", orNone(st.Download), orNone(st.target())), nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// DnfDownload downloads the packages of release on box for
// system-upgrade, with options, as a detached run. Done once its run
// exited 0, when the plugin's state says the download of release is
// complete, or when the box already runs release (the download by hand,
// or the whole upgrade). Undo removes the download.
func DnfDownload(id, box string, release int, options []string) Step {
	d := detached{box: box, unit: UnitName(id), label: "dnf system-upgrade download", cmd: DnfDownloadCmd(release, options)}
	undo := "dnf system-upgrade clean"
	s := &txStep{box: box, pm: Rpm, d: d,
		base: base{id: id, desc: Description{
			Box: box, Text: fmt.Sprintf("download Fedora %d packages on %s as unit %s", release, box, UnitName(id)),
			Commands: []string{upgradeStateCmd, d.shown()}, Undo: []string{undo}, Retry: true,
		}}}
	s.already = func(ctx context.Context, env *Env) (bool, string, error) {
		if on, why, err := releaseAtLeast(ctx, env, box, release); err != nil || on {
			return on, why, err
		}
		return downloaded(ctx, env, box, release)
	}
	s.undo = undo
	return s
}
