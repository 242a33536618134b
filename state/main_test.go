package state

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests re-exec their own binary as a child process that takes the lock
// or writes the state, so that the parent can SIGKILL it at a known point.
const (
	childEnv = "STATE_TEST_CHILD"
	pathEnv  = "STATE_TEST_PATH"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode, os.Getenv(pathEnv)))
	}
	os.Exit(m.Run())
}

// runChild does its part, prints "ready" and waits until stdin closes or it
// is killed. Closing stdin (the parent died) ends it.
func runChild(mode, path string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	switch mode {
	case "lock":
		l, err := Lock(path, CurrentHolder("boxswap next"))
		if err != nil {
			return fail(err)
		}
		fmt.Println("ready", os.Getpid())
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = l.Unlock()
	case "steps":
		s := Open(path)
		id, err := s.Begin(&Attempt{Event: "upgrade-dev", From: "start", Command: "next", Steps: []StepRecord{
			{ID: "upgrade-dev/preflight"}, {ID: "upgrade-dev/dnf-upgrade"}, {ID: "upgrade-dev/reboot", Irreversible: true},
		}})
		if err != nil {
			return fail(err)
		}
		for _, u := range []struct {
			step   string
			status StepStatus
		}{
			{"upgrade-dev/preflight", StepRunning},
			{"upgrade-dev/preflight", StepDone},
			{"upgrade-dev/dnf-upgrade", StepRunning},
		} {
			err := s.UpdateStep(id, u.step, func(r *StepRecord) error {
				r.Status = u.status
				if u.status == StepRunning {
					r.Attempts++
					r.Started = time.Now()
				} else {
					r.Ended = time.Now()
					r.Tail = tailLines("checked\nall good\n", 0)
				}
				return nil
			})
			if err != nil {
				return fail(err)
			}
		}
		fmt.Println("ready", id)
		_, _ = io.Copy(io.Discard, os.Stdin)
	case "writer":
		s := Open(path)
		done := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(done)
		}()
		for i := 0; ; i++ {
			if err := s.SetFact("counter", strconv.Itoa(i)); err != nil {
				return fail(err)
			}
			if err := s.Record(Event{Kind: "tick", Detail: strings.Repeat("x", i%3000)}); err != nil {
				return fail(err)
			}
			if i == 0 {
				fmt.Println("ready", os.Getpid())
			}
			select {
			case <-done:
				return 0
			default:
			}
		}
	default:
		return fail(fmt.Errorf("unknown mode %q", mode))
	}
	return 0
}

// child is a running helper process.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *bytes.Buffer
	ready  string // what followed "ready"
}

// startChild runs the test binary in mode on path and waits for it to say
// it is ready. The child is killed at the end of the test if still running.
func startChild(t *testing.T, mode, path string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, pathEnv+"="+path)
	c := &child{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.stdin.Close()
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "ready") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child %s did not get ready: %q, %v; stderr: %s", mode, line, err, c.stderr)
	}
	c.ready = strings.TrimSpace(strings.TrimPrefix(line, "ready"))
	return c
}

// kill SIGKILLs the child and waits for it, checking it did die of it.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v; stderr: %s", c.cmd.ProcessState, c.stderr)
	}
}

// newStore is a store in a fresh directory whose file, if the test creates
// it, must pass bbolt's consistency check at the end.
func newStore(t *testing.T) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "boxswap.db")
	t.Cleanup(func() { checkConsistent(t, path) })
	return Open(path)
}

func checkConsistent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return
	}
	if err := Open(path).Check(); err != nil {
		t.Errorf("consistency: %v", err)
	}
}
