package steps

import (
	"context"
	"fmt"
	"strconv"
)

// cmdStep runs one fixed command; dnf steps and the like are this plus a
// check and an undo.
type cmdStep struct {
	base
	box   string
	cmd   string
	check string // exit 0 means done; "" means never done
	undo  string // "" means nothing to undo
	label string // for errors when cmd is long
}

func (s *cmdStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	if s.check == "" {
		return false, "always run: " + s.cmd + " is safe to repeat", nil
	}
	res, err := execute(ctx, env, s.box, "", s.check, false)
	if err != nil {
		return false, "", err
	}
	if res.Exit == 0 {
		return true, fmt.Sprintf("%s: exit 0", s.check), nil
	}
	return false, fmt.Sprintf("%s: exit %d", s.check, res.Exit), nil
}

func (s *cmdStep) Apply(ctx context.Context, env *Env) error {
	_, err := stream(ctx, env, s.box, s.label, s.cmd, false)
	return err
}

func (s *cmdStep) Undo(ctx context.Context, env *Env) error {
	if s.undo == "" {
		return nil
	}
	_, err := stream(ctx, env, s.box, "", s.undo, false)
	return err
}

// DnfUpgrade brings box up to date in its current release, as
// system-upgrade wants. It always runs (dnf finds nothing to do when done)
// and has no undo.
func DnfUpgrade(id, box string) Step {
	cmd := "dnf upgrade --refresh -y"
	return &cmdStep{box: box, cmd: cmd, base: base{id: id, desc: Description{
		Box: box, Text: "upgrade the packages of " + box + " in its current release",
		Commands: []string{cmd}, Retry: true,
	}}}
}

// DnfInstall installs pkg on box unless rpm already has it. Undo leaves it.
func DnfInstall(id, box, pkg string) Step {
	cmd := "dnf install -y -- " + quote(pkg)
	return &cmdStep{box: box, cmd: cmd, check: "rpm -q -- " + quote(pkg), base: base{id: id, desc: Description{
		Box: box, Text: "install " + pkg + " on " + box,
		Commands: []string{cmd}, Retry: true,
	}}}
}

// DnfDownload downloads the packages of release on box for
// system-upgrade. It always runs (dnf reuses what it downloaded); Undo
// removes the download.
func DnfDownload(id, box string, release int) Step {
	cmd := "dnf system-upgrade download --releasever=" + quote(strconv.Itoa(release)) + " -y"
	undo := "dnf system-upgrade clean"
	return &cmdStep{box: box, cmd: cmd, undo: undo, base: base{id: id, desc: Description{
		Box: box, Text: fmt.Sprintf("download Fedora %d packages on %s", release, box),
		Commands: []string{cmd}, Undo: []string{undo}, Retry: true,
	}}}
}
