//go:build linux

package lab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// nspawn's exit status when the box asked for a reboot.
const nspawnReboot = 133

// sdSupervise boots box with systemd-nspawn again and again: at once after
// a reboot the box asked for, not after a crash until Start removes
// DIR/BOX/crashed, never again after a poweroff or once told to stop
// (SIGTERM from Down), when it kills the box first.
func sdSupervise(dir, box string) int {
	l, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bd := l.boxDir(box)
	sv := newSupervisor(box, bd)
	logf, exists, sigs := sv.logf, sv.exists, sv.sigs
	for {
		if exists("stopping") {
			return 0
		}
		if exists("crashed") || exists("failed") {
			if sv.stoppedWhileDown() {
				return 0
			}
			continue
		}
		if err := l.powerOn(box); err != nil {
			logf("power on: %v", err)
			_ = os.WriteFile(filepath.Join(bd, "failed"), []byte(err.Error()+"\n"), 0o644)
			continue
		}
		console, err := os.OpenFile(filepath.Join(bd, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			logf("console: %v", err)
			return 1
		}
		cmd := exec.Command("systemd-nspawn", "-D", filepath.Join(bd, "root"), "-M", box, "-b",
			"--register=no", "--keep-unit", "--console=pipe", "--link-journal=no",
			"--resolv-conf=off", "--timezone=off",
			"--network-namespace-path=/run/netns/"+l.Info.Boxes[box].Netns,
			"--capability=CAP_NET_ADMIN")
		cmd.Stdout, cmd.Stderr = console, console
		cmd.Env = cleanEnv()
		if err := cmd.Start(); err != nil {
			console.Close()
			logf("start systemd-nspawn: %v", err)
			_ = os.WriteFile(filepath.Join(bd, "failed"), []byte(err.Error()+"\n"), 0o644)
			continue
		}
		_ = writeFile(filepath.Join(bd, "nspawn.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
		logf("booting (systemd-nspawn pid %d)", cmd.Process.Pid)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-sigs:
			logf("stopping: killing the box")
			if p := l.initPID(box); p > 0 {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			console.Close()
			_ = os.Remove(filepath.Join(bd, "nspawn.pid"))
			return 0
		case err = <-done:
		}
		console.Close()
		code := cmd.ProcessState.ExitCode()
		_ = os.Remove(filepath.Join(bd, "nspawn.pid"))
		switch {
		case exists("stopping"):
			logf("stopped")
			return 0
		case exists("crashed"):
			logf("crashed: down until start")
		case code == nspawnReboot:
			logf("rebooting")
		case code == 0:
			logf("powered off")
			return 0
		default:
			logf("systemd-nspawn ended: %v: down until start", err)
			_ = os.WriteFile(filepath.Join(bd, "failed"), []byte(fmt.Sprintf("systemd-nspawn: %v\n", err)), 0o644)
		}
	}
}

// sdServe serves the mirror on MirrorAddr:80 from the lab's namespace:
// spec is "URLPATH=DIR,URLPATH=DIR".
func sdServe(spec string) int {
	mux := http.NewServeMux()
	for _, kv := range strings.Split(spec, ",") {
		p, d, ok := strings.Cut(kv, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "lab: mirror: bad mapping %q\n", kv)
			return 2
		}
		mux.Handle(p, http.StripPrefix(p, http.FileServer(http.Dir(d))))
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(MirrorAddr, "80"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "lab: mirror: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	fmt.Fprintf(os.Stdout, "%s mirror: serving %s on %s\n", time.Now().Format(time.RFC3339), spec, ln.Addr())
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintf(os.Stderr, "lab: mirror: %v\n", err)
		return 1
	}
	return 0
}
