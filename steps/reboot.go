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
	bootIDCmd        = "cat /proc/sys/kernel/random/boot_id"
	upgradeRebootCmd = "dnf system-upgrade reboot"
	defaultPoll      = 2 * time.Second
	defaultTimeout   = 60 * time.Minute
	// pollAttempt bounds one probe, so a half-open connection does not
	// hold the wait past its timeout.
	pollAttempt   = 30 * time.Second
	progressEvery = 30 * time.Second
)

type rebootStep struct {
	base
	box           string
	release       int
	timeout, poll time.Duration
}

// Reboot reboots box into the downloaded release (dnf system-upgrade
// reboot) and waits until it answers with a new boot id. The boot id from
// before is kept in the fact BOX/boot-id-before, so a resumed Apply knows
// whether the reboot already happened. It cannot be undone.
func Reboot(id, box string, release int, timeout, poll time.Duration) Step {
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	if poll <= 0 {
		poll = defaultPoll
	}
	return &rebootStep{box: box, release: release, timeout: timeout, poll: poll, base: base{id: id, desc: Description{
		Box:          box,
		Text:         fmt.Sprintf("reboot %s into Fedora %d and wait up to %s for it to come back", box, release, timeout),
		Commands:     []string{bootIDCmd, upgradeRebootCmd, bootIDCmd},
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

func (s *rebootStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	f, err := facts(env)
	if err != nil {
		return false, "", err
	}
	before, ok := f.Get(s.factKey())
	if !ok {
		return false, "no boot id recorded before the reboot", nil
	}
	cur, err := s.bootID(ctx, env)
	if err != nil {
		// Still rebooting, or down: Apply waits for it.
		return false, fmt.Sprintf("%s does not answer yet: %v", s.box, err), nil
	}
	if cur != before {
		return true, fmt.Sprintf("%s has rebooted (boot id %s, was %s)", s.box, cur, before), nil
	}
	return false, fmt.Sprintf("%s has not rebooted yet (boot id %s)", s.box, cur), nil
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
		return nil // rebooted while boxswap was away
	}
	if curErr == nil {
		// Not rebooted yet (or not known to be going down): ask for it.
		// The connection dropping under the command is the expected end.
		_, err := stream(ctx, env, s.box, "", upgradeRebootCmd, false)
		if err != nil && !errors.Is(err, boxes.ErrOutcomeUnknown) {
			return err
		}
	}
	return s.wait(ctx, env, before)
}

// wait polls until box answers with a boot id other than before.
func (s *rebootStep) wait(ctx context.Context, env *Env, before string) error {
	// All of it is a wait: the operator's stop ends it (resume waits again).
	ctx, stopWaiting := boxes.Waiting(ctx)
	defer stopWaiting()
	start := time.Now()
	deadline := start.Add(s.timeout)
	var lastReport time.Time
	for {
		if now := time.Now(); lastReport.IsZero() || now.Sub(lastReport) >= progressEvery {
			progress(env, "waiting for %s to come back on f%d: %s of %s",
				s.box, s.release, now.Sub(start).Round(time.Second), s.timeout)
			lastReport = now
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for the reboot: %w; run boxswap resume to wait again", s.box, context.Cause(ctx))
		case <-time.After(s.poll):
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%s did not come back within %s after %s; check its console (it may be applying the upgrade), then run boxswap resume",
				s.box, s.timeout, upgradeRebootCmd)
		}
		actx, cancel := context.WithTimeout(ctx, min(left, pollAttempt))
		cur, err := s.bootID(actx, env)
		cancel()
		if err == nil && cur != before {
			return nil
		}
	}
}

func (s *rebootStep) Undo(context.Context, *Env) error {
	return fmt.Errorf("%s: the reboot into Fedora %d: %w (the upgrade is installed; rolling back a release is done by hand)",
		s.box, s.release, ErrIrreversible)
}
