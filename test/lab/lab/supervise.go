//go:build linux

package lab

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Exit codes of a box's init, read by its supervisor.
const (
	initReboot   = 10 // reboot asked (reboot, dnf system-upgrade reboot)
	initPowerOff = 11 // SIGTERM: the lab goes down
)

func runInternal(cmd string, args []string) int {
	switch {
	case cmd == "supervise" && len(args) >= 2:
		delay := time.Second
		if len(args) > 2 {
			if d, err := time.ParseDuration(args[2]); err == nil {
				delay = d
			}
		}
		return supervise(args[0], args[1], delay)
	case cmd == "sd-supervise" && len(args) == 2:
		return sdSupervise(args[0], args[1])
	case cmd == "sd-serve" && len(args) == 2:
		return sdServe(args[1])
	case cmd == "init" && len(args) == 2:
		return initBox(args[0], args[1])
	case cmd == "serve" && len(args) == 2:
		return serve(args[0], args[1])
	case cmd == "sleep" && len(args) == 1:
		return sleepUnit()
	}
	fmt.Fprintf(os.Stderr, "lab: unknown internal command %q %q\n", cmd, args)
	return 2
}

// supervise runs box's init again and again: after a reboot (following a
// delay), not after a crash until Start removes DIR/BOX/crashed, and never
// again once told to stop (SIGTERM from Down), when it kills the box first.
func supervise(dir, box string, delay time.Duration) int {
	bd := filepath.Join(dir, box)
	sv := newSupervisor(box, bd)
	logf, exists, sigs := sv.logf, sv.exists, sv.sigs
	for {
		if exists("crashed") || exists("failed") {
			if sv.stoppedWhileDown() {
				return 0
			}
			continue
		}
		cmd := exec.Command(filepath.Join(dir, "bin", "lab"), childMarker, "init", dir, box)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Env = cleanEnv()
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS,
			// Go makes / recursively private in the new mount namespace
			// before exec, so no box mount reaches this machine.
			Unshareflags: syscall.CLONE_NEWNS,
		}
		if err := cmd.Start(); err != nil {
			logf("start init: %v", err)
			_ = os.WriteFile(filepath.Join(bd, "failed"), []byte(err.Error()+"\n"), 0o644)
			continue
		}
		_ = writeFile(filepath.Join(bd, "init.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
		logf("booting (init pid %d)", cmd.Process.Pid)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case <-sigs:
			logf("stopping: killing the box")
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			_ = os.Remove(filepath.Join(bd, "init.pid"))
			return 0
		case err = <-done:
		}
		code := cmd.ProcessState.ExitCode()
		crashed := exists("crashed")
		// Removed only now: Crash waits for it, so Start cannot clear the
		// marker before it was seen here.
		_ = os.Remove(filepath.Join(bd, "init.pid"))
		switch {
		case crashed:
			logf("crashed: down until start")
		case code == initReboot:
			logf("rebooting in %s", delay)
			select {
			case <-sigs:
				return 0
			case <-time.After(delay):
			}
		case code == initPowerOff:
			logf("powered off")
			return 0
		default:
			logf("init failed: %v: down until start", err)
			_ = os.WriteFile(filepath.Join(bd, "failed"), []byte(fmt.Sprintf("init: %v\n", err)), 0o644)
		}
	}
}

// supervisor is what both kinds' supervisors share: their log lines, the
// signals that stop them, and the box's marker files under DIR/BOX.
type supervisor struct {
	box, bd string
	sigs    chan os.Signal
}

func newSupervisor(box, bd string) *supervisor {
	sv := &supervisor{box: box, bd: bd, sigs: make(chan os.Signal, 1)}
	signal.Notify(sv.sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	return sv
}

func (sv *supervisor) logf(format string, a ...any) {
	fmt.Fprintf(os.Stdout, "%s supervisor %s: %s\n", time.Now().Format(time.RFC3339), sv.box, fmt.Sprintf(format, a...))
}

// exists says whether the marker DIR/BOX/name is there.
func (sv *supervisor) exists(name string) bool {
	_, err := os.Stat(filepath.Join(sv.bd, name))
	return err == nil
}

// stoppedWhileDown waits a moment while the box is down (crashed or
// failed, until Start removes the marker), and says whether the
// supervisor was told to stop meanwhile.
func (sv *supervisor) stoppedWhileDown() bool {
	select {
	case <-sv.sigs:
		sv.logf("stopped while down")
		return true
	case <-time.After(100 * time.Millisecond):
		return false
	}
}
