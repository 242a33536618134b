package steps

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// The package database. An interrupted transaction (the package manager
// killed, the box's power cut) leaves it half done: dpkg marks packages
// half-installed or half-configured and keeps its journal in
// /var/lib/dpkg/updates; rpm keeps both versions of the packages it had
// not finished replacing. A new transaction on such a database makes it
// worse. Each transaction step checks the database before and after, and
// recovers (as a detached run of its own, recorded) before running again.

// PkgManager is a package manager's health check and recovery.
type PkgManager struct {
	// Name is what messages call it: dpkg, rpm.
	Name string
	// Health exits 0 when the database is healthy; otherwise it prints
	// what is wrong.
	Health string
	// Recover finishes or cleans up an interrupted transaction.
	Recover string
	// Manual is what a person runs when Recover does not bring the
	// database back.
	Manual string
}

// Package managers.
var (
	Dpkg = PkgManager{
		Name: "dpkg",
		Health: "n=$(find /var/lib/dpkg/updates -type f 2>/dev/null | wc -l); a=$(dpkg --audit 2>&1); " +
			"if [ \"$n\" = 0 ] && [ -z \"$a\" ]; then echo 'dpkg: healthy'; else " +
			"echo \"dpkg was interrupted: $n entries in its journal (/var/lib/dpkg/updates)\"; printf '%s\\n' \"$a\" | head -n 20; exit 1; fi",
		// Each stage runs whatever the one before said: a power cut in
		// the middle of an unpack leaves a package half-installed, which
		// dpkg --configure -a refuses and apt-get -f install may leave;
		// those are unpacked again from apt's cache, then configured.
		Recover: dpkgConfigureCmd + "; DEBIAN_FRONTEND=noninteractive apt-get -y " + aptConfOpts + " -f install; " +
			"r=$(dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package}\\n' | awk '$1 ~ /^..R/ || $1 ~ /^.H/ {print $2}'); " +
			"if [ -n \"$r\" ]; then DEBIAN_FRONTEND=noninteractive apt-get -y " + aptConfOpts + " install --reinstall $r; fi; " +
			dpkgConfigureCmd,
		Manual: "dpkg --configure -a; apt-get -f install; dpkg --audit",
	}
	// Rpm's interrupted transaction shows as two versions of one package
	// (the install-only ones aside). The recovery is Fedora's: remove the
	// older of each pair, then distro-sync the rest to the release the
	// database now says (the new one once its release package went in),
	// which finishes an interrupted upgrade.
	Rpm = PkgManager{
		Name: "rpm",
		Health: "d=$(rpm -qa --qf '%{NAME}.%{ARCH}\\n' | grep -Ev '^(gpg-pubkey|kernel|kernel-core|kernel-modules|kernel-modules-extra|kernel-devel)\\.' | sort | uniq -d); " +
			"if [ -z \"$d\" ]; then echo 'rpm: healthy'; else echo 'rpm: an interrupted transaction left two versions of:'; printf '%s\\n' \"$d\" | head -n 20; exit 1; fi",
		Recover: "dnf -y remove --duplicates && dnf -y distro-sync",
		Manual:  "dnf remove --duplicates; dnf check; rpm --rebuilddb",
	}
)

// healthy runs pm.Health on box: ok, and what it printed.
func (pm PkgManager) healthy(ctx context.Context, env *Env, box string) (bool, string, error) {
	res, err := execute(ctx, env, box, "checking the "+pm.Name+" package database", pm.Health, false)
	if err != nil {
		return false, "", err
	}
	return res.Exit == 0, strings.Join(tailOf(res.Stdout, 5), "; "), nil
}

// recover runs pm.Recover detached on box (unit UNIT-recover, kept as a
// fact BOX/recovery/ID with what it saw and how it ended) and checks the
// database again. An error means a person must look.
func (pm PkgManager) recover(ctx context.Context, env *Env, box, id, seen string) error {
	f, err := facts(env)
	if err != nil {
		return err
	}
	progress(env, "%s: the package database needs recovery (%s): running %s", box, seen, pm.Recover)
	d := detached{box: box, unit: UnitName(id) + "-recover", label: pm.Name + " recovery", cmd: pm.Recover}
	end, err := d.attach(ctx, env)
	if err == nil && end.Earlier {
		end, err = d.start(ctx, env)
	}
	if err != nil {
		return err
	}
	key := box + "/recovery/" + id
	prev, _ := f.Get(key)
	line := fmt.Sprintf("%s: %s; ran %s: exit %d", time.Now().UTC().Format(time.RFC3339), seen, pm.Recover, end.Exit)
	if err := f.Set(key, strings.TrimSpace(prev+"\n"+line)); err != nil {
		return fmt.Errorf("%s: recording the recovery: %w", box, err)
	}
	ok, why, err := pm.healthy(ctx, env, box)
	if err != nil {
		return err
	}
	if !ok {
		return pm.needsPerson(box, fmt.Sprintf("%s: the package database is still not healthy after the %s recovery (exit %d)", box, pm.Name, end.Exit),
			why+"; ran: "+pm.Recover)
	}
	return nil
}

// needsPerson is the error of a database the recovery did not heal: the
// box was changed (a transaction ran part way, the recovery ran), so it is
// ErrHalted; the operator's line says what, the hint what to run, the
// record keeps what the health check saw (more).
func (pm PkgManager) needsPerson(box, msg, more string) error {
	return &hinted{msg: msg, err: ErrHalted, more: more,
		hint: fmt.Sprintf("this needs a person: run %s on %s, then boxswap resume", pm.Manual, box)}
}

type pkgHealthStep struct {
	base
	box string
	pm  PkgManager
}

// PkgHealth checks box's package database before or after the release
// change; when a transaction was interrupted it says so and runs the
// recovery (pm.Recover, detached). Undo does nothing.
func PkgHealth(id, box string, pm PkgManager) Step {
	return &pkgHealthStep{box: box, pm: pm, base: base{id: id, desc: Description{
		Box: box, Text: fmt.Sprintf("check the package database (%s) of %s; recover an interrupted transaction", pm.Name, box),
		Commands: []string{pm.Health, pm.Recover}, Retry: true,
	}}}
}

func (s *pkgHealthStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	ok, why, err := s.pm.healthy(ctx, env, s.box)
	return ok, why, err
}

func (s *pkgHealthStep) Apply(ctx context.Context, env *Env) error {
	ok, why, err := s.pm.healthy(ctx, env, s.box)
	if err != nil || ok {
		return err
	}
	return s.pm.recover(ctx, env, s.box, s.id, why)
}

func (s *pkgHealthStep) Undo(context.Context, *Env) error { return nil }

// txStep is a package transaction (apt-get full-upgrade, dnf upgrade, dnf
// install, dnf system-upgrade download) run detached: it re-attaches after
// a lost link, never starts a second copy, and recovers the database
// before running again after an interruption.
type txStep struct {
	base
	box string
	pm  PkgManager
	d   detached
	// already says, when no run of this step is recorded, whether the
	// effect is there anyway (work an operator did by hand).
	already func(ctx context.Context, env *Env) (bool, string, error)
	undo    string // "" means nothing to undo
}

func (s *txStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	st, ours, err := s.d.ours(ctx, env)
	if err != nil {
		return false, "", err
	}
	if ours && st.alive {
		return false, s.d.unit + " still runs", nil
	}
	ok, why, err := s.pm.healthy(ctx, env, s.box)
	if err != nil {
		return false, "", err
	}
	if !ok {
		return false, why, nil
	}
	if ours && st.rc == 0 {
		return true, fmt.Sprintf("%s (%s) exited 0; %s", s.d.label, s.d.unit, why), nil
	}
	if s.already != nil {
		return s.already(ctx, env)
	}
	return false, "not run yet", nil
}

func (s *txStep) Apply(ctx context.Context, env *Env) error {
	// A run of ours still going is followed before anything else: its
	// database is busy, not broken.
	st, ours, err := s.d.ours(ctx, env)
	if err != nil {
		return err
	}
	// A run of ours that started (running, ended, or interrupted) is
	// attached to first: its database may be busy or half done, which the
	// loop below says and recovers. Otherwise: never a transaction on a
	// broken database.
	if !ours || !st.started {
		if err := s.heal(ctx, env, "before "+s.d.label); err != nil {
			return err
		}
	}
	end, err := s.d.attach(ctx, env)
	if err != nil {
		return err
	}
	for again := 0; !end.ok(); again++ {
		ok, why, err := s.pm.healthy(ctx, env, s.box)
		if err != nil {
			return err
		}
		switch {
		case again > 0 && ok:
			// It failed twice on a sound database: the package
			// manager's own error, nothing to recover.
			return end.err(s.d)
		case !end.Earlier && ok:
			// Failed with the database intact: the package manager
			// killed between two packages looks like this (apt: "dpkg
			// exited unexpectedly"). Once more; a real error fails again.
			progress(env, "%s: %s exited %d with the package database intact: running it once more", s.box, s.d.label, end.Exit)
		case !ok:
			what := fmt.Sprintf("%s exited %d", s.d.label, end.Exit)
			if end.Interrupted {
				what = s.d.label + " was interrupted"
			}
			if again > 0 {
				return s.pm.needsPerson(s.box, fmt.Sprintf("%s: %s again after a recovery", s.box, what), why)
			}
			progress(env, "%s: %s and left the package database unhealthy: recovering, then running it again", s.box, what)
			if err := s.pm.recover(ctx, env, s.box, s.id, what+": "+why); err != nil {
				return err
			}
		default:
			// An earlier run failed or was interrupted with the database
			// intact (before any package changed): run again.
			progress(env, "%s: the last run of %s did not end well (exit %d); running it again", s.box, s.d.label, end.Exit)
		}
		if end, err = s.d.start(ctx, env); err != nil {
			return err
		}
	}
	return s.heal(ctx, env, "after "+s.d.label)
}

// heal recovers an unhealthy database (once), saying when.
func (s *txStep) heal(ctx context.Context, env *Env, when string) error {
	ok, why, err := s.pm.healthy(ctx, env, s.box)
	if err != nil || ok {
		return err
	}
	return s.pm.recover(ctx, env, s.box, s.id, why+" ("+when+")")
}

func (s *txStep) Undo(ctx context.Context, env *Env) error {
	if err := s.d.forget(env); err != nil || s.undo == "" {
		return err
	}
	_, err := stream(ctx, env, s.box, "undoing "+s.d.label, s.undo, false)
	return err
}

// note writes a line to box's output, so that it goes into the step's
// record (its tail) and the log.
func note(env *Env, box, format string, args ...any) {
	if env == nil || env.Output == nil {
		return
	}
	if w := env.Output(box); w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

func nowText() string { return time.Now().UTC().Format(time.RFC3339) }

// releaseAtLeast says whether box runs release n or later.
func releaseAtLeast(ctx context.Context, env *Env, box string, n int) (bool, string, error) {
	res, err := run(ctx, env, box, "reading /etc/os-release", osReleaseCmd, true)
	if err != nil {
		return false, "", err
	}
	got, name, err := releaseOf(res.Stdout)
	if err != nil {
		return false, "", fmt.Errorf("%s: %w", box, err)
	}
	return got >= n, fmt.Sprintf("%s runs %s %d", box, name, got), nil
}
