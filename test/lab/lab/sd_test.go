//go:build linux

package lab

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireReal skips (fails in CI) where the systemd kind cannot run, and
// takes the machine-wide lab lock for the test.
func requireReal(t *testing.T) {
	t.Helper()
	skipOrFail(t, sdSupported(Options{OS: OSDebian}))
	unlock, err := LockMachine()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unlock)
}

// httpGet fetches url from the operator's side: the status and body.
func httpGet(l *Lab, url string) (int, string, error) {
	resp, err := l.HTTPClient(5 * time.Second).Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

func holds(t *testing.T, l *Lab, box, addr string) bool {
	t.Helper()
	h, err := l.Holds(box, addr)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestRealLab boots two real boxes and checks what the lab promises:
// systemd as PID 1, SSH between the operator and the boxes and box to
// box, addresses held as kernel facts another box sees, nginx's 502 with
// the app stopped, reboots with a new boot id, a crash that loses the
// address, a cut of the operator's path only, and a down that leaves
// nothing behind even after the lab's own processes died.
func TestRealLab(t *testing.T) {
	requireReal(t)
	dir := t.TempDir()
	l, err := Up(context.Background(), dir, Options{Kind: KindSystemd, OS: OSDebian, Files: 10, FileSize: 256})
	if err != nil {
		t.Fatal(err)
	}
	downed := false
	t.Cleanup(func() {
		if !downed {
			_ = l.Down()
		}
		keepOnFailure(t, l)
	})

	if _, err := Up(context.Background(), dir, Options{Kind: KindSystemd}); err == nil || !strings.Contains(err.Error(), "already up") {
		t.Errorf("a second up on the same directory: %v, want refused as already up", err)
	}

	for _, b := range BoxNames {
		if got := mustRun(t, l, b, "cat /proc/1/comm; hostname; . /etc/os-release; echo $VERSION_ID; systemctl is-active ssh nginx nbh-uwsgi"); got != "systemd\n"+b+"\n12\nactive\nactive\nactive" {
			t.Errorf("%s: PID 1, hostname, release, units: %q", b, got)
		}
		// SSH as the operator, over the lab bridge.
		out, code, err := l.sshRun(b, "hostname")
		if err != nil || code != 0 || strings.TrimSpace(out) != b {
			t.Errorf("%s: ssh from the operator's side: %q exit %d %v", b, out, code, err)
		}
	}
	if got := mustRun(t, l, Thurst, "ssh -o BatchMode=yes "+sdThermals+" hostname"); got != Thermals {
		t.Errorf("thurst → thermals over ssh: %q", got)
	}

	// Addresses: held by the function's box, seen by the other as taken.
	if !holds(t, l, Thurst, sdProduction) || holds(t, l, Thermals, sdProduction) || !holds(t, l, Thermals, sdDevelopment) {
		t.Fatalf("at start: production on thurst %v, on thermals %v; development on thermals %v",
			holds(t, l, Thurst, sdProduction), holds(t, l, Thermals, sdProduction), holds(t, l, Thermals, sdDevelopment))
	}
	if _, code := run(t, l, Thermals, "arping -q -D -c 2 -w 3 -I host0 "+sdProduction); code != 1 {
		t.Errorf("thermals: arping -D %s: exit %d, want 1 (thurst holds it)", sdProduction, code)
	}
	if code, body, err := httpGet(l, l.Info.ProductionURL); err != nil || code != 200 || body != "thurst 12 production" {
		t.Errorf("production address: %d %q %v", code, body, err)
	}
	mustRun(t, l, Thurst, "systemctl stop nbh-uwsgi")
	if code, _, err := httpGet(l, l.Info.ProductionURL); err != nil || code != 502 {
		t.Errorf("production address with the app stopped: %d %v, want nginx's 502", code, err)
	}
	mustRun(t, l, Thurst, "systemctl start nbh-uwsgi")
	mustRun(t, l, Thurst, "systemctl stop nbhosting-addr")
	if holds(t, l, Thurst, sdProduction) {
		t.Errorf("thurst still holds %s after its unit stopped", sdProduction)
	}
	if _, code := run(t, l, Thermals, "arping -q -D -c 2 -w 3 -I host0 "+sdProduction); code != 0 {
		t.Errorf("thermals: arping -D %s with nobody holding it: exit %d, want 0", sdProduction, code)
	}
	mustRun(t, l, Thurst, "systemctl start nbhosting-addr")

	// A reboot: a new boot id, the enabled units again.
	before := mustRun(t, l, Thurst, "cat /proc/sys/kernel/random/boot_id")
	if err := l.Reboot(Thurst); err != nil {
		t.Fatal(err)
	}
	if after := mustRun(t, l, Thurst, "cat /proc/sys/kernel/random/boot_id"); after == before {
		t.Errorf("thurst: same boot id after reboot")
	}
	if !holds(t, l, Thurst, sdProduction) {
		t.Errorf("thurst does not hold %s after its reboot", sdProduction)
	}

	// A crash: down at once, the alias gone with it, back with start.
	if err := l.Crash(Thermals); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Run(Thermals, "true"); err == nil {
		t.Errorf("thermals answers while crashed")
	}
	if _, _, err := l.sshRun(Thermals, "true"); err == nil {
		t.Errorf("thermals answers ssh while crashed")
	}
	if err := l.Start(Thermals); err != nil {
		t.Fatal(err)
	}
	if !holds(t, l, Thermals, sdDevelopment) {
		t.Errorf("thermals does not hold %s after start", sdDevelopment)
	}

	// A cut: the operator's open session dies, a new one hangs; the box
	// still reaches its mirror and the other box.
	c, err := l.Dial(Thurst)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start("sleep 60"); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() { ended <- sess.Wait() }()
	if n, err := l.Cut(Thurst); err != nil || n == 0 {
		t.Fatalf("cut: %d connections reset, %v", n, err)
	}
	select {
	case err := <-ended:
		if err == nil {
			t.Errorf("the cut session ended cleanly")
		}
	case <-time.After(10 * time.Second):
		t.Errorf("the session open across the cut still runs after 10s")
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	conn, err := l.DialContext(ctx, "tcp", net.JoinHostPort(sdThurst, "22"))
	cancel()
	if err == nil {
		conn.Close()
		t.Errorf("a new connection to thurst was answered during the cut")
	} else if ne, ok := err.(net.Error); !errors.Is(err, context.DeadlineExceeded) && !(ok && ne.Timeout()) {
		// A hang ends at the context's deadline, reported either way
		// (which one depends on where the dial was when it passed); a
		// refusal or an unreachable network would be another error.
		t.Errorf("a new connection during the cut: %v, want it to hang (no answer)", err)
	}
	if got := mustRun(t, l, Thurst, "curl -s -o /dev/null -w '%{http_code}' http://"+MirrorAddr+"/debian/dists/bookworm/Release"); got != "200" {
		t.Errorf("thurst → its mirror during the cut: %q", got)
	}
	if got := mustRun(t, l, Thurst, "ssh -o BatchMode=yes -o ConnectTimeout=5 "+sdThermals+" hostname"); got != Thermals {
		t.Errorf("thurst → thermals during the cut: %q", got)
	}
	if err := l.Heal(Thurst); err != nil {
		t.Fatal(err)
	}
	if out, code, err := l.sshRun(Thurst, "hostname"); err != nil || code != 0 || strings.TrimSpace(out) != Thurst {
		t.Errorf("ssh after heal: %q %d %v", out, code, err)
	}

	// The lab's own processes die (a crash of the lab itself): down still
	// removes every box, namespace and mount.
	procs := []struct{ box, role string }{{Thurst, "sd-supervise"}, {Thermals, "sd-supervise"}, {"", "sd-serve"}}
	pids := make([]int, len(procs))
	for i, p := range procs {
		if pids[i] = l.pidOf(p.box, p.role); pids[i] == 0 {
			t.Fatalf("%s %s is missing before the lab crash", p.box, p.role)
		}
		_ = syscall.Kill(pids[i], syscall.SIGKILL)
	}
	// Down only once they are gone: waited for, not slept.
	for i, p := range procs {
		if err := l.waitGone(p.box, pids[i], p.role, 30*time.Second); err != nil {
			t.Fatalf("the lab crash: %v", err)
		}
	}
	l2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	downed = true
	if err := l2.Down(); err != nil {
		t.Fatalf("down after the lab crashed: %v", err)
	}
	checkRealDown(t, l2)
}

// checkRealDown checks that nothing of the lab is left: no process, no
// mount, no namespace.
func checkRealDown(t *testing.T, l *Lab) {
	t.Helper()
	if p := l.Procs(); len(p) > 0 {
		t.Errorf("processes left after down: %v", p)
	}
	if m := l.Mounts(); len(m) > 0 {
		t.Errorf("mounts left after down: %v", m)
	}
	for _, ns := range []string{l.Info.Netns, l.Info.Boxes[Thurst].Netns, l.Info.Boxes[Thermals].Netns} {
		if netnsExists(ns) {
			t.Errorf("network namespace %s left after down", ns)
		}
	}
}

// TestRealLabBadCache: an unusable cache says what is wrong and what to do,
// before anything is started.
func TestRealLabBadCache(t *testing.T) {
	requireReal(t)
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, err := Up(context.Background(), dir, Options{Kind: KindSystemd, Cache: filepath.Join(f, "cache")})
	if err == nil || !strings.Contains(err.Error(), "-cache") {
		t.Fatalf("up with a cache under a file: %v, want an error naming -cache", err)
	}
	if netnsExists(netnsName(dir, "")) {
		t.Errorf("a namespace was made before the cache was checked")
	}
}
