package steps

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"boxswap/boxes"
)

// rebootingBox answers the boot id; after `dnf system-upgrade reboot` it
// drops the command and is unreachable for down polls, then answers with
// a new boot id. With applying > 0 it first comes back in the boot that
// applies the offline update, for that many probes of updatePendingCmd.
type rebootingBox struct {
	mu       sync.Mutex
	bootID   string
	down     int // polls left while down; -1 means never comes back
	applying int // probes answered "pending" by the update boot; -1: forever
	reboots  int
	probes   int
	rebootRC reply
}

func (b *rebootingBox) script(cmd string) reply {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch cmd {
	case "cat /proc/sys/kernel/random/boot_id":
		if b.down != 0 {
			if b.down > 0 {
				b.down--
				if b.down == 0 {
					b.bootID = "new-boot"
					if b.applying != 0 {
						b.bootID = "update-boot"
					}
				}
			}
			return reply{err: errors.Join(boxes.ErrUnreachable, errors.New("connection refused"))}
		}
		return reply{out: b.bootID + "\n"}
	case updatePendingCmd:
		b.probes++
		if b.applying == 0 || b.bootID != "update-boot" {
			return reply{exit: 3}
		}
		if b.applying > 0 {
			b.applying--
			if b.applying == 0 {
				// The update boot reboots into the upgraded system.
				b.bootID, b.down = "new-boot", 2
			}
		}
		return reply{}
	case "dnf system-upgrade reboot":
		b.reboots++
		if b.rebootRC.err != nil || b.rebootRC.exit != 0 {
			return b.rebootRC
		}
		if b.down == 0 {
			b.down = 3
		}
		return reply{err: errors.Join(boxes.ErrOutcomeUnknown, errors.New("connection lost"))}
	}
	return reply{exit: 127}
}

// dnfReboot is the reboot of the dnf method, as the planner builds it.
func dnfReboot(timeout, poll time.Duration) Step {
	return Reboot("upgrade-dev/reboot", "thermals", RebootParams{
		Command: "dnf system-upgrade reboot", Into: "Fedora 29", Offline: true, Timeout: timeout, Poll: poll,
	})
}

func TestRebootWaitsForNewBootID(t *testing.T) {
	ctx := context.Background()
	b := &rebootingBox{bootID: "old-boot"}
	te := newEnv(map[string]boxes.Runner{"thermals": &fakeRunner{script: b.script}})
	s := dnfReboot(time.Minute, time.Millisecond)
	d := s.Describe()
	if !d.Irreversible || d.Retry || !equalStrings(d.Commands, []string{"cat /proc/sys/kernel/random/boot_id", "dnf system-upgrade reboot", "cat /proc/sys/kernel/random/boot_id",
		"test -e /system-update || test -e /etc/system-update || systemctl is-active --quiet system-update.target"}) {
		t.Errorf("describe = %+v", d)
	}
	if done, _, err := s.Check(ctx, te.Env); done || err != nil {
		t.Fatalf("check before: %v %v", done, err)
	}
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if v, _ := te.facts.Get("thermals/boot-id-before"); v != "old-boot" || b.reboots != 1 {
		t.Fatalf("fact %q, reboots %d", v, b.reboots)
	}
	if done, why, err := s.Check(ctx, te.Env); !done || err != nil {
		t.Fatalf("check after: %v %q %v", done, why, err)
	}
	// Resumed after success: no second reboot.
	if err := s.Apply(ctx, te.Env); err != nil || b.reboots != 1 {
		t.Fatalf("second apply: %v, %d reboots", err, b.reboots)
	}
	if len(te.progress) == 0 || !strings.HasPrefix(te.progress[0], "waiting for thermals to come back on Fedora 29: ") {
		t.Errorf("progress = %q", te.progress)
	}
	if err := s.Undo(ctx, te.Env); !errors.Is(err, ErrIrreversible) {
		t.Errorf("undo = %v", err)
	}
}

func TestRebootResumedWhileDown(t *testing.T) {
	b := &rebootingBox{bootID: "old-boot", down: 2}
	te := newEnv(map[string]boxes.Runner{"thermals": &fakeRunner{script: b.script}})
	te.facts.Set("thermals/boot-id-before", "old-boot")
	s := dnfReboot(time.Minute, time.Millisecond)
	if done, why, err := s.Check(context.Background(), te.Env); done || err != nil || !strings.Contains(why, "does not answer") {
		t.Fatalf("check = %v %q %v", done, why, err)
	}
	if err := s.Apply(context.Background(), te.Env); err != nil {
		t.Fatal(err)
	}
	if b.reboots != 0 {
		t.Errorf("rebooted a box that was already going down (%d)", b.reboots)
	}
}

func TestRebootTimeout(t *testing.T) {
	b := &rebootingBox{bootID: "old-boot", down: -1}
	te := newEnv(map[string]boxes.Runner{"thermals": &fakeRunner{script: b.script}})
	te.facts.Set("thermals/boot-id-before", "old-boot")
	err := dnfReboot(20*time.Millisecond, time.Millisecond).Apply(context.Background(), te.Env)
	want := "thermals did not come back within 20ms after dnf system-upgrade reboot; check its console (it may be applying the upgrade), then run boxswap resume"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v", err)
	}
}

func TestRebootCommandFails(t *testing.T) {
	b := &rebootingBox{bootID: "old-boot", rebootRC: reply{errout: "Error: system is not ready for upgrade\n", exit: 1}}
	te := newEnv(map[string]boxes.Runner{"thermals": &fakeRunner{script: b.script}})
	err := dnfReboot(time.Minute, time.Millisecond).Apply(context.Background(), te.Env)
	if err == nil || err.Error() != "thermals: asking for the reboot with dnf system-upgrade reboot: exit 1: Error: system is not ready for upgrade" {
		t.Fatalf("err = %v", err)
	}
}

func TestRebootUnreachableAtStart(t *testing.T) {
	b := &rebootingBox{bootID: "x", down: -1}
	te := newEnv(map[string]boxes.Runner{"thermals": &fakeRunner{script: b.script}})
	err := dnfReboot(time.Minute, time.Millisecond).Apply(context.Background(), te.Env)
	if !errors.Is(err, boxes.ErrUnreachable) || b.reboots != 0 {
		t.Fatalf("err = %v", err)
	}
	if _, ok := te.facts.Get("thermals/boot-id-before"); ok {
		t.Fatal("fact set without a boot id")
	}
}

func TestRebootCancelled(t *testing.T) {
	b := &rebootingBox{bootID: "old", down: -1}
	te := newEnv(map[string]boxes.Runner{"thermals": &fakeRunner{script: b.script}})
	te.facts.Set("thermals/boot-id-before", "old")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := dnfReboot(time.Hour, time.Millisecond).Apply(ctx, te.Env)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// Fedora's offline upgrade boots twice: the first boot (system-update.target,
// no sshd on a real box, but answering here) applies the upgrade and
// reboots. That boot's new id is not the end of the wait.
func TestRebootWaitsOutTheOfflineUpdateBoot(t *testing.T) {
	ctx := context.Background()
	b := &rebootingBox{bootID: "old-boot", applying: 3}
	te := newEnv(map[string]boxes.Runner{"thermals": &fakeRunner{script: b.script}})
	s := dnfReboot(time.Minute, time.Millisecond)
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if b.bootID != "new-boot" || b.reboots != 1 || b.probes < 4 {
		t.Fatalf("apply returned on boot %s after %d probes, %d reboots", b.bootID, b.probes, b.reboots)
	}
	found := false
	for _, p := range te.progress {
		found = found || strings.HasPrefix(p, "waiting for thermals to finish applying the upgrade to Fedora 29: ")
	}
	if !found {
		t.Errorf("progress never said the upgrade is being applied: %q", te.progress)
	}
	if done, why, err := s.Check(ctx, te.Env); !done || err != nil || !strings.Contains(why, "has rebooted") {
		t.Fatalf("check after = %v %q %v", done, why, err)
	}
}

// Resumed while the update boot runs: Check is not done, Apply waits.
func TestRebootUpdateBootStuck(t *testing.T) {
	ctx := context.Background()
	b := &rebootingBox{bootID: "update-boot", applying: -1}
	te := newEnv(map[string]boxes.Runner{"thermals": &fakeRunner{script: b.script}})
	te.facts.Set("thermals/boot-id-before", "old-boot")
	s := dnfReboot(20*time.Millisecond, time.Millisecond)
	if done, why, err := s.Check(ctx, te.Env); done || err != nil || !strings.Contains(why, "is applying the upgrade") {
		t.Fatalf("check = %v %q %v", done, why, err)
	}
	err := s.Apply(ctx, te.Env)
	want := "thermals came back but was still applying the upgrade 20ms after dnf system-upgrade reboot; check its console, then run boxswap resume"
	if err == nil || err.Error() != want || b.reboots != 0 {
		t.Fatalf("err = %v, %d reboots", err, b.reboots)
	}
}

// The apt method reboots with systemctl, names the release, and does not
// probe for an offline update.
func TestRebootApt(t *testing.T) {
	ctx := context.Background()
	f := &fakeRunner{}
	boot := "old-boot"
	f.script = func(cmd string) reply {
		switch cmd {
		case "cat /proc/sys/kernel/random/boot_id":
			return reply{out: boot + "\n"}
		case "systemctl reboot":
			boot = "new-boot"
			return reply{err: boxes.ErrOutcomeUnknown}
		}
		t.Errorf("unexpected %q", cmd)
		return reply{exit: 127}
	}
	te := newEnv(map[string]boxes.Runner{"thermals": f})
	s := Reboot("upgrade-dev/reboot", "thermals", RebootParams{Command: "systemctl reboot", Into: "trixie (release 13)", Poll: time.Millisecond})
	d := s.Describe()
	if d.Text != "reboot thermals into trixie (release 13) and wait up to 1h0m0s for it to come back" ||
		!equalStrings(d.Commands, []string{"cat /proc/sys/kernel/random/boot_id", "systemctl reboot", "cat /proc/sys/kernel/random/boot_id"}) {
		t.Errorf("describe = %+v", d)
	}
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if err := s.Undo(ctx, te.Env); err == nil || !strings.Contains(err.Error(), "the reboot into trixie (release 13)") {
		t.Errorf("undo = %v", err)
	}
}
