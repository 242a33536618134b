package sshtest

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// procSignaler delivers "signal" requests to the running command's process
// group; signals before the start or after the end are dropped.
type procSignaler struct {
	mu  sync.Mutex
	pid int
}

func (p *procSignaler) set(pid int) {
	p.mu.Lock()
	p.pid = pid
	p.mu.Unlock()
}

var signals = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "KILL": syscall.SIGKILL,
	"TERM": syscall.SIGTERM, "QUIT": syscall.SIGQUIT, "USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
}

func (p *procSignaler) signal(name string) {
	sig, ok := signals[name]
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pid > 0 {
		syscall.Kill(-p.pid, sig)
	}
}

// runShell runs cmd with /bin/sh -c in its own process group, killed with
// the group when ctx ends, and returns its exit status (128+N for a signal,
// 127 when it cannot start).
func (s *Server) runShell(ctx context.Context, cmd string, env []string, stdout, stderr io.Writer, proc *procSignaler) int {
	c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
	c.Dir = s.dir
	c.Env = s.environ(env)
	c.Stdout = stdout
	c.Stderr = stderr
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	// A background child holding stdout must not hold the session forever.
	c.WaitDelay = 2 * time.Second
	if err := c.Start(); err != nil {
		io.WriteString(stderr, "sshtest: "+err.Error()+"\n")
		return 127
	}
	proc.set(c.Process.Pid)
	err := c.Wait()
	proc.set(0)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if err != nil {
		return 255
	}
	return 0
}
