//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestMain lets the test binary be the lab binary: supervisors, inits and
// the shims inside the boxes are this binary re-executed.
func TestMain(m *testing.M) {
	if code, ok := Child(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// requireLab skips the test where the lab cannot run, except in CI, where
// a lab test that cannot run is a failure.
func requireLab(t *testing.T) {
	t.Helper()
	skipOrFail(t, Supported())
}

// skipOrFail ends the test when err says the lab cannot run: a failure in
// CI (CI=true or BOXSWAP_LAB_REQUIRED=1), a skip elsewhere.
func skipOrFail(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("BOXSWAP_LAB_REQUIRED") == "1" || os.Getenv("CI") == "true" {
		t.Fatalf("lab test required (CI or BOXSWAP_LAB_REQUIRED=1) but cannot run: %v", err)
	}
	t.Skipf("%v", err)
}

func run(t *testing.T, l *Lab, box, cmd string) (string, int) {
	t.Helper()
	out, code, err := l.Run(box, cmd)
	if err != nil {
		t.Fatalf("%s: %s: %v", box, cmd, err)
	}
	return out, code
}

func mustRun(t *testing.T, l *Lab, box, cmd string) string {
	t.Helper()
	out, code := run(t, l, box, cmd)
	if code != 0 {
		t.Fatalf("%s: %s: exit %d: %s", box, cmd, code, out)
	}
	return strings.TrimSpace(out)
}

func get(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

func TestLab(t *testing.T) {
	requireLab(t)
	ctx := context.Background()
	l, err := Up(ctx, t.TempDir(), Options{Files: 20, FileSize: 512, RebootDelay: 500 * time.Millisecond, BootTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { checkDown(t, l) })
	port := l.Info.Boxes[Thurst].Port

	t.Run("files", func(t *testing.T) {
		for _, f := range []string{"boxes.yaml", "id_ed25519", "known_hosts", "lab.json"} {
			if _, err := os.Stat(filepath.Join(l.Dir, f)); err != nil {
				t.Error(err)
			}
		}
		o, err := Open(l.Dir)
		if err != nil {
			t.Fatal(err)
		}
		if o.Info.Boxes[Thermals].Host != ThermalsHost || o.Info.Boxes[Thermals].Disk != filepath.Join(l.Dir, Thermals, "upper") {
			t.Errorf("lab.json: %+v", o.Info)
		}
	})

	t.Run("boxes", func(t *testing.T) {
		for _, b := range BoxNames {
			if got := mustRun(t, l, b, "hostname"); got != b {
				t.Errorf("%s: hostname %q", b, got)
			}
			if got := mustRun(t, l, b, ". /etc/os-release && echo $ID $VERSION_ID"); got != "fedora 27" {
				t.Errorf("%s: os-release %q", b, got)
			}
			if got := mustRun(t, l, b, "python3 --version"); got != "Python 3.6.8" {
				t.Errorf("%s: python3 --version %q", b, got)
			}
			if got := mustRun(t, l, b, `python3 -c 'print(6*7)'`); got != "42" {
				t.Errorf("%s: real python3: %q", b, got)
			}
			if got := mustRun(t, l, b, "ls /nbhosting/students | wc -l"); got == "0" {
				t.Errorf("%s: no students", b)
			}
			if got := mustRun(t, l, b, "cd /root/nbhosting && git status --porcelain && grep -c '^server_name = ' django/nbh_main/sitesettings.py"); got != "1" {
				t.Errorf("%s: checkout: %q", b, got)
			}
		}
		prod := mustRun(t, l, Thurst, "grep '^server_name' /root/nbhosting/django/nbh_main/sitesettings.py")
		dev := mustRun(t, l, Thermals, "grep '^server_name' /root/nbhosting/django/nbh_main/sitesettings.py")
		if prod != `server_name = "nbhosting.lab"` || dev != `server_name = "nbhosting-dev.lab"` {
			t.Errorf("settings: thurst %q, thermals %q", prod, dev)
		}
		if a, b := mustRun(t, l, Thurst, "docker ps -aq"), mustRun(t, l, Thermals, "docker ps -aq"); a == b {
			t.Errorf("docker: both boxes have %q", a)
		}
	})

	t.Run("strict host keys", func(t *testing.T) {
		// thurst's address with only thermals' keys known must be refused.
		raw, err := os.ReadFile(l.Info.KnownHosts)
		if err != nil {
			t.Fatal(err)
		}
		var wrong []string
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			if strings.HasPrefix(line, "["+ThermalsHost+"]") {
				wrong = append(wrong, strings.Replace(line, ThermalsHost, ThurstHost, 1))
			}
		}
		bad := *l
		bad.Info.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(bad.Info.KnownHosts, []byte(strings.Join(wrong, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := bad.Dial(Thurst); err == nil {
			t.Fatal("thurst accepted with thermals' host keys")
		}
	})

	t.Run("box to box", func(t *testing.T) {
		if got := mustRun(t, l, Thurst, fmt.Sprintf("ssh -p %d root@%s hostname", port, ThermalsHost)); got != Thermals {
			t.Errorf("thurst → thermals: %q", got)
		}
		if got := mustRun(t, l, Thermals, "ssh thurst hostname"); got != Thurst {
			t.Errorf("thermals → thurst: %q", got)
		}
		mustRun(t, l, Thurst, fmt.Sprintf("rsync -a -e 'ssh -p %d' /nbhosting/students/ root@%s:/root/copy/", port, ThermalsHost))
		a := mustRun(t, l, Thurst, "cd /nbhosting/students && find . -type f | sort | xargs cat | md5sum")
		b := mustRun(t, l, Thermals, "cd /root/copy && find . -type f | sort | xargs cat | md5sum")
		if a != b {
			t.Errorf("rsync: thurst %s, thermals %s", a, b)
		}
	})

	t.Run("addresses", func(t *testing.T) {
		if got, err := get(l.Info.ProductionURL); err != nil || got != "thurst f27 production" {
			t.Fatalf("production: %q %v", got, err)
		}
		if got, err := get(l.Info.DevelopmentURL); err != nil || got != "thermals f27 development" {
			t.Fatalf("development: %q %v", got, err)
		}
		// The address is held: thermals cannot take it, and says so as systemd does.
		if _, code := run(t, l, Thermals, "systemctl start nbhosting-addr"); code != 1 {
			t.Errorf("start held address: exit %d, want 1", code)
		}
		if out, code := run(t, l, Thermals, "systemctl is-active nbhosting-addr"); strings.TrimSpace(out) != "failed" || code != 3 {
			t.Errorf("is-active after failed start: %q exit %d", out, code)
		}
		// Move it: stop on thurst releases it.
		mustRun(t, l, Thurst, "systemctl stop nbhosting-addr")
		if out, code := run(t, l, Thurst, "systemctl is-active nbhosting-addr"); strings.TrimSpace(out) != "inactive" || code != 3 {
			t.Errorf("is-active after stop: %q exit %d", out, code)
		}
		if _, err := get(l.Info.ProductionURL); err == nil {
			t.Error("production still answers after stop")
		}
		mustRun(t, l, Thermals, "systemctl start nbhosting-addr")
		if got, err := get(l.Info.ProductionURL); err != nil || got != "thermals f27 production" {
			t.Errorf("production on thermals: %q %v", got, err)
		}
		mustRun(t, l, Thermals, "systemctl stop nbhosting-addr")
		mustRun(t, l, Thurst, "systemctl start nbhosting-addr")
		if out, code := run(t, l, Thermals, "systemctl is-enabled nbhosting-addr"); strings.TrimSpace(out) != "disabled" || code != 1 {
			t.Errorf("is-enabled: %q exit %d", out, code)
		}
	})

	t.Run("shims", func(t *testing.T) {
		for _, c := range []struct {
			cmd  string
			code int
			out  string
		}{
			{"systemctl start nosuch", 5, ""},
			{"systemctl is-active nosuch", 3, "inactive"},
			{"systemctl is-enabled nbh-uwsgi", 0, "enabled"},
			{"systemctl stop docker && docker ps", 1, ""},
			{"systemctl start docker && docker ps -q | wc -l", 0, "2"},
			{"docker rm 3f4e1a2b9c01", 1, ""},
			{"dnf upgrade --refresh </dev/null", 1, "Fedora 27 - x86_64 - Updates\nDependencies resolved.\nIs this ok [y/N]: Operation aborted."},
			{"dnf system-upgrade reboot", 1, ""},
			{"pip3 install labpkg==1.2 >/dev/null && pip3 freeze | grep labpkg", 0, "labpkg==1.2"},
			{"rpm -q nosuch", 1, "package nosuch is not installed"},
		} {
			out, code := run(t, l, Thurst, c.cmd)
			if code != c.code || c.out != "" && strings.TrimSpace(out) != c.out {
				t.Errorf("%s: exit %d %q, want exit %d %q", c.cmd, code, out, c.code, c.out)
			}
		}
	})

	t.Run("upgrade and reboot", func(t *testing.T) {
		if _, code := run(t, l, Thermals, "dnf system-upgrade download --releasever=29 -y"); code == 0 {
			t.Error("system-upgrade without its plugin succeeded")
		}
		mustRun(t, l, Thermals, "dnf upgrade --refresh -y && dnf install -y dnf-plugin-system-upgrade && rpm -q dnf-plugin-system-upgrade")
		mustRun(t, l, Thermals, "dnf system-upgrade download --releasever=29 -y")
		mustRun(t, l, Thermals, "echo kept > /root/marker")
		old, err := l.BootID(Thermals)
		if err != nil {
			t.Fatal(err)
		}
		// The reboot may end the session before its exit status is sent.
		if _, _, err := l.Run(Thermals, "dnf system-upgrade reboot"); err != nil && !errors.Is(err, io.EOF) {
			t.Logf("reboot command: %v", err)
		}
		id, err := l.WaitBoot(ctx, Thermals, old)
		if err != nil {
			t.Fatal(err)
		}
		if id == old {
			t.Fatal("same boot id after reboot")
		}
		if got := mustRun(t, l, Thermals, ". /etc/os-release && echo $VERSION_ID; python3 --version; cat /root/marker; pip3 freeze | wc -l"); got != "29\nPython 3.7.2\nkept\n0" {
			t.Errorf("after upgrade: %q", got)
		}
		if got := mustRun(t, l, Thermals, "systemctl is-active nbhosting-dev-addr sshd"); got != "active\nactive" {
			t.Errorf("units after reboot: %q", got)
		}
		if got, err := get(l.Info.DevelopmentURL); err != nil || got != "thermals f29 development" {
			t.Errorf("development after reboot: %q %v", got, err)
		}
	})

	t.Run("crash and start", func(t *testing.T) {
		if err := l.Crash(Thurst); err != nil {
			t.Fatal(err)
		}
		if _, err := get(l.Info.ProductionURL); err == nil {
			t.Error("production answers while thurst is down")
		}
		if _, _, err := l.Run(Thurst, "true"); err == nil {
			t.Error("ssh to a crashed box works")
		}
		if err := l.Start(Thurst); err != nil {
			t.Fatal(err)
		}
		if got, err := get(l.Info.ProductionURL); err != nil || got != "thurst f27 production" {
			t.Errorf("production after start: %q %v", got, err)
		}
		old, err := l.BootID(Thurst)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Reboot(Thurst); err != nil {
			t.Fatal(err)
		}
		if id, err := l.BootID(Thurst); err != nil || id == old {
			t.Errorf("boot id after reboot: %q (was %q) %v", id, old, err)
		}
		if got, err := get(l.Info.ProductionURL); err != nil || got != "thurst f27 production" {
			t.Errorf("production after reboot: %q %v", got, err)
		}
	})

	t.Run("cut", func(t *testing.T) {
		c, err := l.Dial(Thermals)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		out, _ := s.StdoutPipe()
		if err := s.Start("echo started; sleep 60"); err != nil {
			t.Fatal(err)
		}
		// Wait until the command runs, so the cut hits a live session.
		buf := make([]byte, 8)
		if _, err := io.ReadFull(out, buf); err != nil {
			t.Fatal(err)
		}
		n, err := l.Cut(Thermals)
		if err != nil || n == 0 {
			t.Fatalf("cut: %d %v", n, err)
		}
		err = s.Wait()
		var exit *ssh.ExitError
		if err == nil || errors.As(err, &exit) {
			t.Fatalf("session survived the cut: %v", err)
		}
		// The listener is untouched: new connections work.
		if got := mustRun(t, l, Thermals, "hostname"); got != Thermals {
			t.Errorf("after cut: %q", got)
		}
	})
}

// checkDown takes the lab down and checks nothing of it is left.
// keepOnFailure keeps the logs of a failed t's lab and says where.
func keepOnFailure(t *testing.T, l *Lab) {
	if t.Failed() {
		d, err := l.KeepLogs(t.Name())
		t.Logf("lab logs of this failed test kept in %s (%v)", d, err)
	}
}

func checkDown(t *testing.T, l *Lab) {
	procs := l.Procs()
	starts := map[int]string{}
	for _, p := range procs {
		starts[p] = startTime(p)
	}
	if len(procs) < 4 {
		t.Errorf("lab processes before down: %v", procs)
	}
	if err := l.Down(); err != nil {
		t.Error(err)
	}
	keepOnFailure(t, l)
	if m := l.Mounts(); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	for _, p := range procs {
		if st := startTime(p); st != "" && st == starts[p] {
			t.Errorf("process %d left after down", p)
		}
	}
}

// startTime identifies a process beyond its PID (field 22 of stat).
func startTime(pid int) string {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}
