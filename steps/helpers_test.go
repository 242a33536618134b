package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"boxswap/boxes"
)

// reply is what the fake runner answers to one command.
type reply struct {
	out, errout string
	exit        int
	err         error
}

// fakeRunner answers commands from a script and records them.
type fakeRunner struct {
	mu     sync.Mutex
	script func(cmd string) reply
	cmds   []string
}

func (f *fakeRunner) Run(_ context.Context, cmd string, stdout, stderr io.Writer) (int, error) {
	f.mu.Lock()
	f.cmds = append(f.cmds, cmd)
	f.mu.Unlock()
	r := reply{}
	if f.script != nil {
		r = f.script(cmd)
	}
	io.WriteString(stdout, r.out)
	io.WriteString(stderr, r.errout)
	return r.exit, r.err
}

func (f *fakeRunner) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds...)
}

// answers scripts a fake runner from a table: exact command → reply;
// anything else fails the test.
func answers(t *testing.T, table map[string]reply) func(string) reply {
	return func(cmd string) reply {
		r, ok := table[cmd]
		if !ok {
			t.Errorf("unexpected command: %s", cmd)
			return reply{exit: 127, errout: "unexpected"}
		}
		return r
	}
}

// mapFacts is an in-memory Facts.
type mapFacts struct {
	mu sync.Mutex
	m  map[string]string
}

func newFacts() *mapFacts { return &mapFacts{m: map[string]string{}} }

func (f *mapFacts) Get(k string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.m[k]
	return v, ok
}
func (f *mapFacts) Set(k, v string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[k] = v
	return nil
}
func (f *mapFacts) Delete(k string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, k)
	return nil
}

// testEnv gives every box the same runner and collects output per box.
type testEnv struct {
	*Env
	out      map[string]*bytes.Buffer
	facts    *mapFacts
	progress []string
}

func newEnv(runners map[string]boxes.Runner) *testEnv {
	te := &testEnv{out: map[string]*bytes.Buffer{}, facts: newFacts()}
	var mu sync.Mutex
	te.Env = &Env{
		Boxes: func(name string) (boxes.Runner, error) {
			r, ok := runners[name]
			if !ok {
				return nil, errors.New("no such box")
			}
			return r, nil
		},
		Output: func(box string) io.Writer {
			mu.Lock()
			defer mu.Unlock()
			if te.out[box] == nil {
				te.out[box] = &bytes.Buffer{}
			}
			return te.out[box]
		},
		Facts: te.facts,
		Progress: func(format string, args ...any) {
			te.progress = append(te.progress, strings.TrimSpace(fmt.Sprintf(format, args...)))
		},
		Force: map[Guard]bool{},
	}
	return te
}

// shRunner runs commands with the local /bin/sh, PATH starting with bin
// (stub commands standing in for systemctl, dnf... where needed).
type shRunner struct {
	bin  string
	dir  string
	env  []string // more environment (HOME for the change watches)
	mu   sync.Mutex
	cmds []string
}

func (r *shRunner) Run(ctx context.Context, cmd string, stdout, stderr io.Writer) (int, error) {
	r.mu.Lock()
	r.cmds = append(r.cmds, cmd)
	r.mu.Unlock()
	c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
	c.Stdout, c.Stderr = stdout, stderr
	c.Dir = r.dir
	c.Env = append(append(os.Environ(), "PATH="+r.bin+":"+os.Getenv("PATH"), "LC_ALL=C"), r.env...)
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, errors.Join(boxes.ErrOutcomeUnknown, err)
	}
	return 0, nil
}

// newShRunner makes a runner whose PATH starts with a temp bin folder;
// stub writes a stub command there.
func newShRunner(t *testing.T) *shRunner {
	t.Helper()
	return &shRunner{bin: t.TempDir(), dir: t.TempDir()}
}

func (r *shRunner) stub(t *testing.T, name, script string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(r.bin, name), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// hostile values that must reach a remote command as one word.
var hostile = []string{
	"; rm -rf /",
	"$(touch pwned)",
	"`touch pwned`",
	`it's "quoted"`,
	"new\nline",
	"-x",
	"a b\tc",
}
