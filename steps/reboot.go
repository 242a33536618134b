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
	// To, when set, is the release the box must run once back: the wait
	// also lasts until systemd has settled (systemctl is-system-running:
	// running, or degraded with its failed units recorded), and a box
	// back on another release is a failed upgrade, shown with the end of
	// LogCmd. It also lets Check recognise a reboot done by hand: the box
	// runs To, no offline update is pending, and (apt) it booted after the
	// last package change.
	To int
	// LogCmd prints the upgrade's log ("dnf system-upgrade log
	// --number=-1", "tail -n 30 /var/log/apt/term.log"); LogName is what
	// errors call it (default LogCmd).
	LogCmd, LogName string
}

const (
	// settleCmd prints systemd's state, then the failed units.
	settleCmd = "systemctl is-system-running 2>/dev/null; systemctl --failed --plain --no-legend --no-pager 2>/dev/null | awk '{print \"failed \" $1}'"
	// stagedCmd exits 0 when an offline upgrade is staged for the next boot.
	stagedCmd = "test -L /system-update || test -L /etc/system-update"
	// bootedAfterDpkgCmd exits 0 when the box booted (PID 1 started) after
	// the last change of the dpkg database.
	bootedAfterDpkgCmd = "bt=$(awk '/^btime/{print $2}' /proc/stat); st=$(sed 's/.*) //' /proc/1/stat | awk '{print $20}'); " +
		"hz=$(getconf CLK_TCK); [ \"$(stat -c %Y /var/lib/dpkg/status)\" -lt $((bt + st / hz)) ]"
)

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
	if p.To > 0 {
		cmds = append(cmds, settleCmd, osReleaseCmd)
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
	res, err := run(ctx, env, s.box, "reading the boot id", bootIDCmd, false)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(res.Stdout)
	if id == "" || strings.ContainsAny(id, " \n") {
		return "", fmt.Errorf("%s: reading the boot id: unexpected answer %q", s.box, clip(id))
	}
	return id, nil
}

// bootState is where a box stands in its reboot.
type bootState int

const (
	sameBoot bootState = iota // down, or still on the boot from before
	applying                  // a new boot, applying an offline update
	settling                  // a new boot, systemd still starting units
	failedUp                  // a new boot, done, on the wrong release
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
		res, err := execute(ctx, env, s.box, "checking whether the offline upgrade is still pending", updatePendingCmd, false)
		if err != nil {
			return sameBoot, fmt.Sprintf("%s answers (boot id %s) but not whether the upgrade is applied: %v", s.box, cur, err)
		}
		if res.Exit == 0 {
			return applying, fmt.Sprintf("%s is applying the upgrade (boot id %s; /system-update or system-update.target present)", s.box, cur)
		}
	}
	why := fmt.Sprintf("%s has rebooted (boot id %s, was %s)", s.box, cur, before)
	if s.p.To == 0 {
		return newBoot, why
	}
	return s.settled(ctx, env, why)
}

// settled says whether a box back from its reboot has settled on the
// release it should run, and why.
func (s *rebootStep) settled(ctx context.Context, env *Env, why string) (bootState, string) {
	res, err := execute(ctx, env, s.box, "checking that it settled after the reboot", settleCmd, false)
	if err != nil {
		return settling, fmt.Sprintf("%s; systemd's state unknown: %v", why, err)
	}
	state, failed := "", []string(nil)
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		if u, ok := strings.CutPrefix(line, "failed "); ok {
			failed = append(failed, u)
		} else if state == "" {
			state = strings.TrimSpace(line)
		}
	}
	switch state {
	case "initializing", "starting":
		return settling, fmt.Sprintf("%s; systemd is %s", why, state)
	case "degraded":
		why += fmt.Sprintf("; systemd is degraded, failed units: %s", strings.Join(failed, ", "))
	case "running":
		why += "; systemd is running"
	default:
		why += fmt.Sprintf("; systemd says %q", clip(state))
	}
	on, rel, err := releaseAtLeast(ctx, env, s.box, s.p.To)
	if err != nil {
		return settling, fmt.Sprintf("%s; release unknown: %v", why, err)
	}
	if !on {
		return failedUp, why + "; but " + rel
	}
	return newBoot, why + "; " + rel
}

// logTail is the end of the upgrade's log, for errors.
// logName is " (LOG)", how a message names the upgrade's log, or "".
func (s *rebootStep) logName() string {
	name := s.p.LogName
	if name == "" {
		name = s.p.LogCmd
	}
	if name == "" {
		return ""
	}
	return " (" + name + ")"
}

func (s *rebootStep) logTail(ctx context.Context, env *Env) string {
	if s.p.LogCmd == "" {
		return ""
	}
	res, err := execute(ctx, env, s.box, "reading the upgrade's log", s.p.LogCmd, false)
	if err != nil {
		return ""
	}
	lines := tailOf(res.Stdout+"\n"+strings.Join(res.Tail, "\n"), 10)
	if len(lines) == 0 {
		return ""
	}
	name := s.p.LogName
	if name == "" {
		name = s.p.LogCmd
	}
	return "\n" + name + " ends with:\n  " + strings.Join(lines, "\n  ")
}

// byHand recognises a reboot into To done without boxswap.
func (s *rebootStep) byHand(ctx context.Context, env *Env) (bool, string, error) {
	if s.p.To == 0 {
		return false, "no boot id recorded before the reboot", nil
	}
	on, rel, err := releaseAtLeast(ctx, env, s.box, s.p.To)
	if err != nil || !on {
		return false, "no boot id recorded before the reboot; " + rel, err
	}
	probe := bootedAfterDpkgCmd
	if s.p.Offline {
		probe = "! { " + updatePendingCmd + "; }"
	}
	res, err := execute(ctx, env, s.box, "checking whether it booted after the upgrade", probe, false)
	if err != nil {
		return false, "", err
	}
	if res.Exit != 0 {
		return false, rel + ", but not rebooted since the upgrade", nil
	}
	st, why := s.settled(ctx, env, rel+" and has rebooted since the upgrade (done by hand)")
	return st == newBoot, why, nil
}

func (s *rebootStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	f, err := facts(env)
	if err != nil {
		return false, "", err
	}
	before, ok := f.Get(s.factKey())
	if !ok {
		return s.byHand(ctx, env)
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
		command := s.p.Command
		if s.p.Offline && s.p.To > 0 {
			// Staged by hand (dnf system-upgrade reboot refuses "upgrade
			// is already scheduled"): a plain reboot applies it.
			if res, err := execute(ctx, env, s.box, "checking whether an upgrade is staged", stagedCmd, false); err == nil && res.Exit == 0 {
				command = "systemctl reboot"
			}
		}
		_, err := stream(ctx, env, s.box, "asking for the reboot with "+command, command, false)
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
			switch st {
			case applying:
				what = "to finish applying the upgrade to"
			case settling:
				what = "to finish booting"
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
				return fmt.Errorf("%s came back but was still applying the upgrade %s after %s; check its console, then run boxswap resume%s",
					s.box, s.p.Timeout, s.p.Command, s.logTail(ctx, env))
			}
			if st == settling {
				return fmt.Errorf("%s came back but systemd had not finished starting %s after %s (systemctl is-system-running); look at it, then run boxswap resume",
					s.box, s.p.Timeout, s.p.Command)
			}
			return fmt.Errorf("%s did not come back within %s after %s; check its console (it may be applying the upgrade), then run boxswap resume",
				s.box, s.p.Timeout, s.p.Command)
		}
		actx, cancel := context.WithTimeout(ctx, min(left, pollAttempt))
		var why string
		st, why = s.probe(actx, env, before)
		cancel()
		switch st {
		case newBoot:
			note(env, s.box, "%s", why)
			return nil
		case failedUp:
			return &hinted{msg: fmt.Sprintf("%s: the upgrade did not take: %s", s.box, why),
				hint: "look at the log on " + s.box + s.logName() + ", fix, then boxswap resume (boxswap log shows its end)",
				more: strings.TrimSpace(s.logTail(ctx, env))}
		}
	}
}

func (s *rebootStep) Undo(context.Context, *Env) error {
	return fmt.Errorf("%s: the reboot into %s: %w (the upgrade is installed; rolling back a release is done by hand)",
		s.box, s.p.Into, ErrIrreversible)
}
