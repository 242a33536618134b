package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"boxswap/boxes/sshtest"
	"boxswap/state"
)

// deadBox is a box that accepts TCP connections and hangs up at once (or,
// silent, holds them and never speaks): every connection attempt of boxswap
// is one accept, and each fails as unreachable (after connect_timeout when
// silent), which the engine retries after a backoff.
type deadBox struct {
	ln     net.Listener
	silent bool
	mu     sync.Mutex
	times  []time.Time
	held   []net.Conn
}

func newDeadBox(t *testing.T, addr string, silent bool) *deadBox {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b := &deadBox{ln: ln, silent: silent}
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, c := range b.held {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.times = append(b.times, time.Now())
			if b.silent {
				b.held = append(b.held, c)
			} else {
				c.Close()
			}
			b.mu.Unlock()
		}
	}()
	return b
}

func (b *deadBox) port() int { return b.ln.Addr().(*net.TCPAddr).Port }

// attempts returns how many connections arrived, and how many after t.
func (b *deadBox) attempts(after time.Time) (all, since int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, at := range b.times {
		if at.After(after) {
			since++
		}
	}
	return len(b.times), since
}

// waitAttempt waits for a first connection attempt on b by the boxswap
// cmd runs; none within 30 s kills it and fails the test.
func waitAttempt(t *testing.T, b *deadBox, cmd *exec.Cmd, stderr fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for n, _ := b.attempts(time.Time{}); n == 0; n, _ = b.attempts(time.Time{}) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("boxswap never tried the box\n%s", stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// exitCode is the exit code of a command whose Wait returned err.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return 0
}

// deadPairConfig is the shipped pair with both boxes dead boxes on
// loopback, SSH files in dir.
func deadPairConfig(t *testing.T, dir string, prod, dev *deadBox) string {
	t.Helper()
	shipped, err := os.ReadFile(filepath.Join("..", "..", "boxes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer(
		"host: thurst.inria.fr\n    port: 22", fmt.Sprintf("host: 127.0.0.1\n    port: %d", prod.port()),
		"host: thermals.inria.fr\n    port: 22", fmt.Sprintf("host: 127.0.0.2\n    port: %d", dev.port()),
		"~/.ssh/known_hosts", "./known_hosts",
		"~/.ssh/id_ed25519", "./id_ed25519",
		"~/.ssh/config", "./ssh_config",
	).Replace(string(shipped))
	// A key to offer: the boxes hang up before asking for it.
	sshtest.New(t).WriteIdentity(filepath.Join(dir, "id_ed25519"))
	for name, body := range map[string]string{"boxes.yaml": cfg, "known_hosts": "", "ssh_config": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "boxes.yaml")
}

// Issue 10, item 5: one SIGTERM (or Ctrl-C) during a step whose box does
// not answer stops waiting at once, in a backoff (the box hangs up) as in
// a connection attempt (the box never speaks): no new connection attempt
// starts after the signal, the exit code is 143 (130), the lock is
// released, and the state records the interruption. Before, the engine
// slept its backoff and tried again, and exited 6 15 s later.
func TestOneSignalEndsTheWaitsOfAnUnreachableStep(t *testing.T) {
	for _, tc := range []struct {
		sig    syscall.Signal
		silent bool
	}{{syscall.SIGTERM, false}, {syscall.SIGINT, false}, {syscall.SIGTERM, true}} {
		sig := tc.sig
		name := signalName(sig) + "/backoff"
		if tc.silent {
			name = signalName(sig) + "/connecting"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			dev := newDeadBox(t, "127.0.0.2:0", tc.silent)
			prod := newDeadBox(t, "127.0.0.1:0", tc.silent)
			cfg := deadPairConfig(t, dir, prod, dev)
			self, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(self, "-c", cfg, "--yes", "next")
			cmd.Env = append(os.Environ(), "BOXSWAP_TEST_MAIN=1", "SSH_AUTH_SOCK=")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait for the first attempt, and for the engine to be in its
			// backoff before the next one.
			waitAttempt(t, prod, cmd, &stderr)
			time.Sleep(200 * time.Millisecond)
			sent := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			code := exitCode(t, cmd.Wait())
			took := time.Since(sent)
			t.Logf("%s: stopped %s after the signal", name, took.Round(time.Millisecond))
			if want := 128 + int(sig); code != want {
				t.Errorf("exit %d, want %d\n%s\n%s", code, want, &stdout, &stderr)
			}
			for _, b := range []*deadBox{dev, prod} {
				if _, since := b.attempts(sent); since != 0 {
					t.Errorf("%d connection attempts started after the signal", since)
				}
			}
			db := filepath.Join(dir, "boxswap.db")
			if _, err := os.Lstat(state.LockPath(db)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the lock file is left: %v", err)
			}
			if h, _, err := state.ReadLock(db); h != nil || err != nil {
				t.Errorf("lock still held: %v, %v", h, err)
			}
			a, err := state.Open(db).Last()
			if err != nil || a == nil {
				t.Fatalf("no attempt recorded: %v", err)
			}
			if a.Status != state.Interrupted || a.FailedStep == "" || !strings.Contains(a.Error, "stopped by the operator") {
				t.Errorf("attempt %s at %q: %q; want interrupted, naming the step and the stop", a.Status, a.FailedStep, a.Error)
			}
			hist, err := state.Open(db).History()
			if err != nil {
				t.Fatal(err)
			}
			if last := hist[len(hist)-1]; last.Kind != "signal" || !strings.Contains(last.Detail, signalName(sig)) {
				t.Errorf("last history event %+v; want the signal", last)
			}
		})
	}
}
