package e2e

import (
	"os"
	"syscall"
	"testing"
	"time"

	"boxswap/internal/etcdtest"
	"boxswap/test/lab/lab"
)

// TestCycleDebianEtcd (issue 15): a whole cycle on real Debian boxes with
// its state on a three-member etcd cluster running in the lab's network
// namespace, named by boxes.yaml's state section (no --state: as a team's
// operator runs it) and created with state init. The cycle moves
// production and back without a release change (upgrade.to = from): what
// it tests is the state on etcd, not the upgrade, which TestCycleDebian
// has. The cluster's leader is SIGKILLed once in the middle of upgrade-dev,
// while install.sh is held on thermals at its gate; the run goes on after
// the re-election. Each phase is checked on the boxes and in `where`, as
// TestCycleDebian does, and no bbolt file is ever created.
func TestCycleDebianEtcd(t *testing.T) {
	r := newRehearsal(t, lab.Options{Kind: lab.KindSystemd, OS: lab.OSDebian, Files: 12, FileSize: 512})
	rel := r.h.SameRelease()
	c := etcdtest.StartWith(t, 3, etcdtest.Options{Host: lab.BridgeAddr, BasePort: 23790, Command: r.h.Lab.Command})
	url := c.URL("/boxswap/e2e")
	r.h.EditConfig(func(s string) string { return s + "\nstate:\n  url: " + url + "\n" })
	if res := r.h.Run("where"); res.Code != 8 {
		t.Fatalf("where before state init: want exit 8 (no state at the prefix): %s", res)
	}
	r.h.MustRun("state", "init")
	r.special = map[string]func(t *testing.T){"1/upgrade-dev": func(t *testing.T) {
		g := r.h.Arm(lab.Thermals, "install")
		p := r.h.Start(nil, "--yes", "next")
		g.Wait(p, 5*time.Minute)
		if !r.h.WaitRunning(p, "upgrade-dev/install", time.Minute) {
			t.Fatalf("install.sh is held on thermals but upgrade-dev/install is not recorded running: %s", p.Wait())
		}
		leader := c.Leader()
		c.Kill(leader, syscall.SIGKILL)
		g.Release()
		res := p.Wait()
		r.moving += res.Took
		if res.Code != 0 {
			t.Fatalf("upgrade-dev with the etcd leader (member %d) killed during install.sh: %s", leader, res)
		}
		t.Logf("FIGURE etcd leader (member %d) SIGKILLed during upgrade-dev's install.sh; the run ended right", leader)
		c.Restart(leader)
		c.WaitReady()
	}}
	r.cycle(t, 1, rel, rel)
	if _, err := os.Stat(r.h.State); err == nil {
		t.Errorf("a bbolt state %s was created beside boxes.yaml", r.h.State)
	}
}
