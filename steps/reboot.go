package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"boxswap/boxes"
)

const (
	bootIDCmd = "cat /proc/sys/kernel/random/boot_id"
	// updatePendingCmd exits 0 while a box is in, or headed for, the boot
	// that applies an offline update (systemd.offline-updates(7)): the
	// magic symlink is there, or the update target is running (dnf removes
	// the symlink as soon as it starts applying).
	updatePendingCmd = "test -e /system-update || test -e /etc/system-update || systemctl is-active --quiet system-update.target"
	defaultPoll      = 2 * time.Second
	defaultTimeout   = 60 * time.Minute
	// pollAttempt bounds one probe, so a half-open connection does not
	// hold the wait past its timeout.
	pollAttempt   = 30 * time.Second
	progressEvery = 30 * time.Second
)

// RebootParams says how a box reboots into its new release.
type RebootParams struct {
	// Command asks for the reboot: "dnf system-upgrade reboot",
	// "systemctl reboot".
	Command string
	// Into names the new release in texts: "Fedora 29", "trixie (release 13)".
	Into string
	// Offline says the upgrade is applied by an offline update (dnf
	// system-upgrade): the first boot applies it, without sshd, and reboots
	// again. A new boot id is not the end of the wait while updatePendingCmd
	// says that boot is still to come or running.
	Offline bool
	// Timeout bounds the wait (default 60m); Poll is the probe interval
	// (default 2s).
	Timeout, Poll time.Duration
}

type rebootStep struct {
	base
	box string
	p   RebootParams
}

// Reboot reboots box into its new release with p.Command and waits until
// it answers with a new boot id (and, for an offline update, has finished
// applying it). The boot id from before is kept in the fact
// BOX/boot-id-before, so a resumed Apply knows whether the reboot already
// happened. It cannot be undone.
func Reboot(id, box string, p RebootParams) Step {
	if p.Timeout <= 0 {
		p.Timeout = defaultTimeout
	}
	if p.Poll <= 0 {
		p.Poll = defaultPoll
	}
	cmds := []string{bootIDCmd, p.Command, bootIDCmd}
	if p.Offline {
		cmds = append(cmds, updatePendingCmd)
	}
	return &rebootStep{box: box, p: p, base: base{id: id, desc: Description{
		Box:          box,
		Text:         fmt.Sprintf("reboot %s into %s and wait up to %s for it to come back", box, p.Into, p.Timeout),
		Commands:     cmds,
		Irreversible: true,
	}}}
}

func (s *rebootStep) factKey() string { return s.box + "/boot-id-before" }

func (s *rebootStep) bootID(ctx context.Context, env *Env) (string, error) {
	res, err := run(ctx, env, s.box, "", bootIDCmd, false)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(res.Stdout)
	if id == "" || strings.ContainsAny(id, " \n") {
		return "", fmt.Errorf("%s: %s: unexpected answer %q", s.box, bootIDCmd, clip(id))
	}
	return id, nil
}

// bootState is where a box stands in its reboot.
type bootState int

const (
	sameBoot bootState = iota // down, or still on the boot from before
	applying                  // a new boot, applying an offline update
	newBoot                   // a new boot, done
)

// probe says where box stands against the boot id before, and why.
func (s *rebootStep) probe(ctx context.Context, env *Env, before string) (bootState, string) {
	cur, err := s.bootID(ctx, env)
	if err != nil {
		return sameBoot, fmt.Sprintf("%s does not answer yet: %v", s.box, err)
	}
	if cur == before {
		return sameBoot, fmt.Sprintf("%s has not rebooted yet (boot id %s)", s.box, cur)
	}
	if s.p.Offline {
		res, err := execute(ctx, env, s.box, "", updatePendingCmd, false)
		if err != nil {
			return sameBoot, fmt.Sprintf("%s answers (boot id %s) but not whether the upgrade is applied: %v", s.box, cur, err)
		}
		if res.Exit == 0 {
			return applying, fmt.Sprintf("%s is applying the upgrade (boot id %s; /system-update or system-update.target present)", s.box, cur)
		}
	}
	return newBoot, fmt.Sprintf("%s has rebooted (boot id %s, was %s)", s.box, cur, before)
}

func (s *rebootStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	f, err := facts(env)
	if err != nil {
		return false, "", err
	}
	before, ok := f.Get(s.factKey())
	if !ok {
		return false, "no boot id recorded before the reboot", nil
	}
	// Still rebooting, or down: Apply waits for it.
	st, why := s.probe(ctx, env, before)
	return st == newBoot, why, nil
}

func (s *rebootStep) Apply(ctx context.Context, env *Env) error {
	f, err := facts(env)
	if err != nil {
		return err
	}
	before, ok := f.Get(s.factKey())
	cur, curErr := s.bootID(ctx, env)
	switch {
	case !ok && curErr != nil:
		return curErr
	case !ok:
		if err := f.Set(s.factKey(), cur); err != nil {
			return fmt.Errorf("%s: recording the boot id: %w", s.box, err)
		}
		before = cur
	case curErr == nil && cur != before:
		// Rebooted while boxswap was away; an offline update may still
		// be applying.
		return s.wait(ctx, env, before)
	}
	if curErr == nil {
		// Not rebooted yet (or not known to be going down): ask for it.
		// The connection dropping under the command is the expected end.
		_, err := stream(ctx, env, s.box, "", s.p.Command, false)
		if err != nil && !errors.Is(err, boxes.ErrOutcomeUnknown) {
			return err
		}
	}
	return s.wait(ctx, env, before)
}

// wait polls until box answers with a boot id other than before and, for
// an offline update, has finished applying it.
func (s *rebootStep) wait(ctx context.Context, env *Env, before string) error {
	// All of it is a wait: the operator's stop ends it (resume waits again).
	ctx, stopWaiting := boxes.Waiting(ctx)
	defer stopWaiting()
	start := time.Now()
	deadline := start.Add(s.p.Timeout)
	var lastReport time.Time
	st, reported := sameBoot, sameBoot
	for {
		if now := time.Now(); lastReport.IsZero() || st != reported || now.Sub(lastReport) >= progressEvery {
			what := "to come back on"
			if st == applying {
				what = "to finish applying the upgrade to"
			}
			progress(env, "waiting for %s %s %s: %s of %s",
				s.box, what, s.p.Into, now.Sub(start).Round(time.Second), s.p.Timeout)
			lastReport, reported = now, st
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for the reboot: %w; run boxswap resume to wait again", s.box, context.Cause(ctx))
		case <-time.After(s.p.Poll):
		}
		left := time.Until(deadline)
		if left <= 0 {
			if st == applying {
				return fmt.Errorf("%s came back but was still applying the upgrade %s after %s; check its console, then run boxswap resume",
					s.box, s.p.Timeout, s.p.Command)
			}
			return fmt.Errorf("%s did not come back within %s after %s; check its console (it may be applying the upgrade), then run boxswap resume",
				s.box, s.p.Timeout, s.p.Command)
		}
		actx, cancel := context.WithTimeout(ctx, min(left, pollAttempt))
		st, _ = s.probe(actx, env, before)
		cancel()
		if st == newBoot {
			return nil
		}
	}
}

func (s *rebootStep) Undo(context.Context, *Env) error {
	return fmt.Errorf("%s: the reboot into %s: %w (the upgrade is installed; rolling back a release is done by hand)",
		s.box, s.p.Into, ErrIrreversible)
}
