package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"boxswap/boxes"
	"boxswap/test/lab/lab"
)

// boxswapBin is the boxswap binary TestMain built for every test.
var boxswapBin string

// TestMain lets the test binary be the lab binary (the boxes' processes
// re-execute it), then builds boxswap once.
func TestMain(m *testing.M) {
	if code, ok := lab.Child(); ok {
		os.Exit(code)
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "boxswap-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	boxswapBin = filepath.Join(dir, "boxswap")
	// go test puts its own go first in PATH for the processes it starts; no
	// VCS stamp, so a checkout owned by another user still builds.
	build := exec.Command("go", "build", "-buildvcs=false", "-o", boxswapBin, "boxswap/cmd/boxswap")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: build boxswap: %v\n", err)
		return 1
	}
	return m.Run()
}

// requireLab skips the test where the lab cannot run, except in CI, where a
// lab test that cannot run is a failure.
func requireLab(t *testing.T) {
	t.Helper()
	if err := lab.Supported(); err != nil {
		if os.Getenv("BOXSWAP_LAB_REQUIRED") == "1" || os.Getenv("CI") == "true" {
			t.Fatalf("lab test required (CI or BOXSWAP_LAB_REQUIRED=1) but cannot run: %v", err)
		}
		t.Skipf("%v", err)
	}
}

// startLab starts a small, fast lab in t.TempDir() and takes it down when
// the test ends, checking nothing is left.
func startLab(t *testing.T) *lab.Lab {
	t.Helper()
	l, err := lab.Up(t.Context(), t.TempDir(), lab.Options{
		Files:       12,
		FileSize:    512,
		RebootDelay: 300 * time.Millisecond,
		BootTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
		if m := l.Mounts(); len(m) > 0 {
			t.Errorf("lab down left mounts: %v", m)
		}
	})
	return l
}

// on runs cmd on box and fails the test unless it exits 0.
func on(t *testing.T, l *lab.Lab, box, cmd string) string {
	t.Helper()
	out, code, err := l.Run(box, cmd)
	if err != nil {
		t.Fatalf("%s: %s: %v", box, cmd, err)
	}
	if code != 0 {
		t.Fatalf("%s: %s: exit %d: %s", box, cmd, code, out)
	}
	return out
}

// exists reports whether path exists on box.
func exists(t *testing.T, l *lab.Lab, box, path string) bool {
	t.Helper()
	out, code, err := l.Run(box, "test -e "+boxes.Quote(path))
	if err != nil || code > 1 {
		t.Fatalf("%s: test -e %s: exit %d %v %s", box, path, code, err, out)
	}
	return code == 0
}

// cli runs the boxswap binary against one boxes.yaml (its state file is
// the default one, beside it).
type cli struct {
	t   *testing.T
	cfg string
	// moving adds up the time spent in next and resume, the transitions
	// themselves, to log the length of a cycle without the checks.
	moving *time.Duration
}

// run runs boxswap with args and returns its combined output and exit code.
func (c cli) run(args ...string) (string, int) {
	c.t.Helper()
	cmd := exec.Command(boxswapBin, append([]string{"-c", c.cfg}, args...)...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if c.moving != nil && slices.ContainsFunc(args, func(a string) bool { return a == "next" || a == "resume" }) {
		*c.moving += time.Since(start)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	if err != nil {
		c.t.Fatalf("boxswap %s: %v", strings.Join(args, " "), err)
	}
	return string(out), 0
}

// must runs boxswap and fails the test unless it exits 0.
func (c cli) must(args ...string) string {
	c.t.Helper()
	out, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("boxswap %s: exit %d\n%s", strings.Join(args, " "), code, tail(out, 40))
	}
	return out
}

// whereJSON is the part of `boxswap --json where` the tests read.
type whereJSON struct {
	Phase      string       `json:"phase"`
	Next       *string      `json:"next"`
	Cycle      int          `json:"cycle"`
	From       int          `json:"from"`
	To         int          `json:"to"`
	Transition *transition  `json:"transition"`
	Boxes      []whereBoxJS `json:"boxes"`
}

type transition struct {
	ID     uint64 `json:"id"`
	Event  string `json:"event"`
	Status string `json:"status"`
	Step   string `json:"step"`
}

type whereBoxJS struct {
	Name     string `json:"name"`
	Function string `json:"function"`
	Release  int    `json:"release"`
}

func (c cli) where() whereJSON {
	c.t.Helper()
	return decodeWhere(c.t, c.must("--json", "where"))
}

func decodeWhere(t *testing.T, out string) whereJSON {
	t.Helper()
	var w whereJSON
	if err := json.Unmarshal([]byte(out), &w); err != nil {
		t.Fatalf("boxswap --json where: %v\n%s", err, out)
	}
	return w
}

// attempt is the part of a `boxswap --json log` attempt the tests read.
type attempt struct {
	ID      uint64 `json:"id"`
	Cycle   int    `json:"cycle"`
	Event   string `json:"event"`
	Status  string `json:"status"`
	Command string `json:"command"`
}

func (c cli) attempts() []attempt {
	c.t.Helper()
	out := c.must("--json", "log")
	var log struct {
		Attempts []attempt `json:"attempts"`
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		c.t.Fatalf("boxswap --json log: %v\n%s", err, tail(out, 20))
	}
	return log.Attempts
}

// answer returns the body served at url, or "" when nothing answers.
func answer(url string) string {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// tail keeps the last n lines of s, for failure messages.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
