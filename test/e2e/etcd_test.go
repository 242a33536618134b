package e2e

import (
	"os"
	"syscall"
	"testing"
	"time"

	"boxswap/internal/etcdtest"
	"boxswap/test/lab/lab"
)

// TestCycleDebianEtcd (issue 15): the whole Debian 12 → 13 cycle on real
// boxes with its state on a three-member etcd cluster running in the
// lab's network namespace, named by boxes.yaml's state section (no
// --state: as a team's operator runs it) and created with state init. The
// cluster's leader is SIGKILLed once in the middle of upgrade-dev (during
// its reboot wait); the run goes on after the re-election. Each phase is
// checked on the boxes and in `where`, as TestCycleDebian does, and no
// bbolt file is ever created.
func TestCycleDebianEtcd(t *testing.T) {
	r := newRehearsal(t, lab.Options{Kind: lab.KindSystemd, OS: lab.OSDebian, Files: 12, FileSize: 512})
	c := etcdtest.StartWith(t, 3, etcdtest.Options{Host: lab.BridgeAddr, BasePort: 23790, Command: r.h.Lab.Command})
	url := c.URL("/boxswap/e2e")
	r.h.EditConfig(func(s string) string { return s + "\nstate:\n  url: " + url + "\n" })
	if res := r.h.Run("where"); res.Code != 8 {
		t.Fatalf("where before state init: want exit 8 (no state at the prefix): %s", res)
	}
	r.h.MustRun("state", "init")
	r.special = map[string]func(t *testing.T){"1/upgrade-dev": func(t *testing.T) {
		p := r.h.Start(nil, "--yes", "next")
		if !r.h.WaitRunning(p, "upgrade-dev/reboot", 10*time.Minute) {
			t.Fatalf("upgrade-dev/reboot never seen running: %s", p.Wait())
		}
		leader := c.Leader()
		c.Kill(leader, syscall.SIGKILL)
		res := p.Wait()
		r.moving += res.Took
		if res.Code != 0 {
			t.Fatalf("upgrade-dev with the etcd leader (member %d) killed during the reboot wait: %s", leader, res)
		}
		t.Logf("FIGURE etcd leader (member %d) SIGKILLed during upgrade-dev's reboot wait; the run ended right", leader)
		c.Restart(leader)
		c.WaitReady()
	}}
	r.cycle(t, 1, 12, 13)
	if _, err := os.Stat(r.h.State); err == nil {
		t.Errorf("a bbolt state %s was created beside boxes.yaml", r.h.State)
	}
}
