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
// a new boot id.
type rebootingBox struct {
	mu       sync.Mutex
	bootID   string
	down     int // polls left while down; -1 means never comes back
	reboots  int
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
				}
			}
			return reply{err: errors.Join(boxes.ErrUnreachable, errors.New("connection refused"))}
		}
		return reply{out: b.bootID + "\n"}
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

func TestRebootWaitsForNewBootID(t *testing.T) {
	ctx := context.Background()
	b := &rebootingBox{bootID: "old-boot"}
	te := newEnv(map[string]boxes.Runner{"thermals": &fakeRunner{script: b.script}})
	s := Reboot("upgrade-dev/reboot", "thermals", 29, time.Minute, time.Millisecond)
	d := s.Describe()
	if !d.Irreversible || d.Retry || !equalStrings(d.Commands, []string{"cat /proc/sys/kernel/random/boot_id", "dnf system-upgrade reboot", "cat /proc/sys/kernel/random/boot_id"}) {
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
	if len(te.progress) == 0 || !strings.HasPrefix(te.progress[0], "waiting for thermals to come back on f29: ") {
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
	s := Reboot("r", "thermals", 29, time.Minute, time.Millisecond)
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
	err := Reboot("r", "thermals", 29, 20*time.Millisecond, time.Millisecond).Apply(context.Background(), te.Env)
	want := "thermals did not come back within 20ms after dnf system-upgrade reboot; check its console (it may be applying the upgrade), then run boxswap resume"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v", err)
	}
}

func TestRebootCommandFails(t *testing.T) {
	b := &rebootingBox{bootID: "old-boot", rebootRC: reply{errout: "Error: system is not ready for upgrade\n", exit: 1}}
	te := newEnv(map[string]boxes.Runner{"thermals": &fakeRunner{script: b.script}})
	err := Reboot("r", "thermals", 29, time.Minute, time.Millisecond).Apply(context.Background(), te.Env)
	if err == nil || err.Error() != "thermals: dnf system-upgrade reboot: exit 1: Error: system is not ready for upgrade" {
		t.Fatalf("err = %v", err)
	}
}

func TestRebootUnreachableAtStart(t *testing.T) {
	b := &rebootingBox{bootID: "x", down: -1}
	te := newEnv(map[string]boxes.Runner{"thermals": &fakeRunner{script: b.script}})
	err := Reboot("r", "thermals", 29, time.Minute, time.Millisecond).Apply(context.Background(), te.Env)
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
	err := Reboot("r", "thermals", 29, time.Hour, time.Millisecond).Apply(ctx, te.Env)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}
