//go:build linux

package lab

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// initBox is PID 1 of a box: it mounts the box's filesystem, provisions it
// on first boot, applies a staged upgrade, chroots, starts sshd and the
// enabled units, reaps orphans, and exits on reboot or power-off. Its exit
// ends every process of the box (the kernel kills a PID namespace with
// its init) and drops every mount (the mount namespace dies with them).
func initBox(dir, box string) int {
	logf := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "%s init %s: %s\n", time.Now().Format(time.RFC3339), box, fmt.Sprintf(format, a...))
	}
	if os.Getpid() != 1 {
		logf("not PID 1 of a new PID namespace: refusing to run")
		return 1
	}
	if err := bootBox(dir, box); err != nil {
		logf("boot: %v", err)
		return 1
	}
	return runInit(box, logf)
}

// bootBox prepares the box's root and chroots into it.
func bootBox(dir, box string) error {
	// Belt and braces: the supervisor asked for a private namespace already.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	bd := filepath.Join(dir, box)
	raw, err := os.ReadFile(filepath.Join(bd, "box.json"))
	if err != nil {
		return err
	}
	var spec boxSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return fmt.Errorf("%s/box.json: %w", bd, err)
	}
	upper, work, root := filepath.Join(bd, "upper"), filepath.Join(bd, "work"), filepath.Join(bd, "root")
	for _, d := range []string{upper, work, root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	provisioned := true
	if _, err := os.Stat(filepath.Join(upper, provisionedPath)); err != nil {
		provisioned = false
		if err := hide(upper); err != nil {
			return err
		}
	}
	opts := "lowerdir=/,upperdir=" + upper + ",workdir=" + work
	for i := 0; ; i++ {
		err = syscall.Mount("overlay", root, "overlay", 0, opts)
		// The last boot's overlay may still be going away with its namespace.
		if err == nil || !errors.Is(err, syscall.EBUSY) || i > 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("mount overlay %s: %w", opts, err)
	}
	if err := writeSSHD(root, &spec); err != nil {
		return fmt.Errorf("sshd config: %w", err)
	}
	if err := syscall.Sethostname([]byte(box)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	mounts := []struct {
		src, dst, fstype string
		flags            uintptr
		data             string
	}{
		{"proc", "proc", "proc", syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC, ""},
		{"/dev", "dev", "", syscall.MS_BIND | syscall.MS_REC, ""},
		{"/sys", "sys", "", syscall.MS_BIND, ""},
		{"tmpfs", "run", "tmpfs", syscall.MS_NOSUID | syscall.MS_NODEV, "mode=755"},
		{"tmpfs", "tmp", "tmpfs", syscall.MS_NOSUID | syscall.MS_NODEV, "mode=1777"},
	}
	for _, m := range mounts {
		dst := filepath.Join(root, m.dst)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount(m.src, dst, m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.src, dst, err)
		}
	}
	_ = syscall.Mount("", filepath.Join(root, "sys"), "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, "")
	if !provisioned {
		if err := provision(root, &spec); err != nil {
			return fmt.Errorf("provision: %w", err)
		}
	}
	if err := applyStaged(root, box); err != nil {
		return fmt.Errorf("apply staged upgrade: %w", err)
	}
	// The boot id is kernel-wide: give the box its own, new on each boot.
	if err := os.MkdirAll(filepath.Join(root, "run/lab/units"), 0o755); err != nil {
		return err
	}
	bootID := filepath.Join(root, "run/lab/boot_id")
	if err := os.WriteFile(bootID, []byte(newUUID()+"\n"), 0o444); err != nil {
		return err
	}
	if err := syscall.Mount(bootID, filepath.Join(root, "proc/sys/kernel/random/boot_id"), "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind boot id: %w", err)
	}
	// The shims are this binary, fresh on each boot.
	if err := syscall.Mount(filepath.Join(dir, "bin", "lab"), filepath.Join(root, labBinary), "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind lab binary: %w", err)
	}
	if err := syscall.Chroot(root); err != nil {
		return fmt.Errorf("chroot %s: %w", root, err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return err
	}
	return nil
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// reaper reaps every child of init (its own and the orphans of the box)
// and hands exit statuses to those who wait for them.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan syscall.WaitStatus
	exited  map[int]syscall.WaitStatus
}

func (r *reaper) loop() {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, syscall.SIGCHLD)
	for {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err != nil || pid <= 0 {
				break
			}
			r.mu.Lock()
			if w, ok := r.waiters[pid]; ok {
				w <- ws
				delete(r.waiters, pid)
			} else if len(r.exited) < 1000 {
				r.exited[pid] = ws
			}
			r.mu.Unlock()
		}
		select {
		case <-ch:
		case <-time.After(time.Second):
		}
	}
}

// spawn starts argv in its own session and returns a channel that gets
// its exit status.
func (r *reaper) spawn(argv []string, logPath string) (int, <-chan syscall.WaitStatus, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, nil, err
	}
	defer out.Close()
	null, err := os.Open("/dev/null")
	if err != nil {
		return 0, nil, err
	}
	defer null.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{
		Dir:   "/",
		Env:   append(cleanEnv(), "HOME=/root"),
		Files: []uintptr{null.Fd(), out.Fd(), out.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return 0, nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	ch := make(chan syscall.WaitStatus, 1)
	if ws, ok := r.exited[pid]; ok {
		delete(r.exited, pid)
		ch <- ws
	} else {
		r.waiters[pid] = ch
	}
	return pid, ch, nil
}

// runInit is init after chroot: sshd, the enabled units, then wait for a
// reboot or a power-off.
func runInit(box string, logf func(string, ...any)) int {
	r := &reaper{waiters: map[int]chan syscall.WaitStatus{}, exited: map[int]syscall.WaitStatus{}}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	go r.loop()
	_ = os.MkdirAll("/var/log/lab", 0o755)

	sshdDied := make(chan struct{}, 1)
	startSSHD := func() {
		pid, ch, err := r.spawn([]string{"/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/sshd_config"}, "/var/log/lab/sshd.log")
		if err != nil {
			logf("sshd: %v", err)
			return
		}
		_ = os.WriteFile("/run/lab/sshd.pid", []byte(fmt.Sprintf("%d\n", pid)), 0o644)
		go func() {
			ws := <-ch
			logf("sshd exited: %v", ws)
			sshdDied <- struct{}{}
		}()
	}
	// Enabled units first, then sshd: once a box answers SSH its boot is
	// over, so a caller waiting for SSH never races the address units.
	units, _ := enabledUnits()
	for _, u := range units {
		_, ch, err := r.spawn([]string{"/usr/local/sbin/systemctl", "start", u}, "/var/log/lab/boot.log")
		if err != nil {
			logf("start %s: %v", u, err)
			continue
		}
		if ws := <-ch; ws.ExitStatus() != 0 {
			logf("start %s: exit %d", u, ws.ExitStatus())
		}
	}
	startSSHD()
	logf("up: units %s", strings.Join(units, " "))
	for {
		select {
		case <-sshdDied:
			time.Sleep(200 * time.Millisecond)
			startSSHD()
		case s := <-sigs:
			if s == syscall.SIGUSR1 {
				logf("reboot")
				// The tests' gate (GateShell): an armed gate holds the box
				// up here, its reboot asked and not begun, so a test acts
				// while the one who asked waits for it.
				if _, ch, err := r.spawn([]string{"/bin/sh", "-c", GateShell("reboot")}, "/var/log/lab/boot.log"); err == nil {
					<-ch
				}
				// Let the command that asked for it see its own exit.
				time.Sleep(300 * time.Millisecond)
				syscall.Sync()
				return initReboot
			}
			logf("power off")
			syscall.Sync()
			return initPowerOff
		}
	}
}
