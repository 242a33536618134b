package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	bolt "go.etcd.io/bbolt"

	"boxswap/internal/golden"
	"boxswap/state"
)

func TestMain(m *testing.M) {
	if os.Getenv("BOXSWAP_TEST_MAIN") == "1" {
		// The test binary run as boxswap itself, under a pty (terminal_test.go).
		processSignals()
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	testscript.Main(m, map[string]func(){
		"boxswap":    main,
		"holdlock":   holdLockMain,
		"setphase":   setPhaseMain,
		"damage":     damageMain,
		"rolledback": rolledBackMain,
	})
}

// TestScripts runs the CLI scripts under testdata/script. Each gets
// boxes.yaml, a copy of the shipped file (whose hosts are never dialled by
// these scripts), and lab.yaml, the same pair on loopback ports where
// nothing listens, for the verbs that may reach a box.
func TestScripts(t *testing.T) {
	shipped, err := os.ReadFile(filepath.Join("..", "..", "boxes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		UpdateScripts:       golden.Updating(),
		Setup: func(env *testscript.Env) error {
			if err := os.WriteFile(filepath.Join(env.WorkDir, "boxes.yaml"), shipped, 0o644); err != nil {
				return err
			}
			lab, err := labConfig(string(shipped))
			if err != nil {
				return err
			}
			for name, body := range map[string]string{"lab.yaml": lab, "known_hosts": "", "ssh_config": ""} {
				if err := os.WriteFile(filepath.Join(env.WorkDir, name), []byte(body), 0o644); err != nil {
					return err
				}
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":    cmdExits,
			"waitfile": cmdWaitFile,
		},
	})
}

// labConfig turns the shipped boxes.yaml into one whose boxes are on
// loopback, port 1 (nothing listens), with SSH files in the work folder.
func labConfig(shipped string) (string, error) {
	r := strings.NewReplacer(
		"host: thurst.inria.fr", "host: 127.0.0.1",
		"host: thermals.inria.fr", "host: 127.0.0.2",
		"port: 22", "port: 1",
		"known_hosts: ~/.ssh/known_hosts", "known_hosts: ./known_hosts",
		"identity: ~/.ssh/id_ed25519", "identity: ./id_ed25519",
		"config: ~/.ssh/config", "config: ./ssh_config",
	)
	lab := r.Replace(shipped)
	for _, s := range []string{"inria.fr\n    port", "~/.ssh"} {
		if strings.Contains(lab, s) {
			return "", fmt.Errorf("lab.yaml still holds %q: the shipped boxes.yaml changed shape", s)
		}
	}
	return lab, nil
}

// cmdExits runs a command and checks its exit code: exits CODE CMD ARGS...
// Its stdout and stderr are then checked with stdout and stderr.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: %v", err)
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// cmdWaitFile waits for a file a background command creates when ready.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile FILE")
	}
	path := ts.MkAbs(args[0])
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	ts.Fatalf("waitfile: %s did not appear", args[0])
}

// holdLockMain is a second operator: holdlock STATE takes the operator lock
// of STATE as "boxswap next", writes STATE.held, and holds the lock until
// it is interrupted (or killed, leaving a stale lock file).
func holdLockMain() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: holdlock STATE")
		os.Exit(2)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	l, err := state.Lock(os.Args[1], state.CurrentHolder("boxswap next"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.WriteFile(os.Args[1]+".held", []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("holding the lock as pid %d\n", os.Getpid())
	<-sigs
	if err := l.Unlock(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// setPhaseMain writes the phase of a cycle f27 to f29: setphase STATE PHASE.
// It stands for the transitions before it having run.
func setPhaseMain() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: setphase STATE PHASE")
		os.Exit(2)
	}
	m := state.Meta{Phase: state.Phase(os.Args[2]), Cycle: 1, From: 27, To: 29}
	if err := state.Open(os.Args[1]).Init(m); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// damageMain writes a state with a failed attempt of redirect whose
// history record 1 is not JSON: damage that where, plan, resume and
// rollback never read, and log does (issue 10, item 2). damage STATE.
func damageMain() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: damage STATE")
		os.Exit(2)
	}
	err := redirectAttempt(os.Args[1], state.Failed)
	if err == nil {
		var db *bolt.DB
		if db, err = bolt.Open(os.Args[1], 0o600, nil); err == nil {
			err = db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("history")).Put([]byte{0, 0, 0, 0, 0, 0, 0, 1}, []byte("{not json"))
			})
			err = errors.Join(err, db.Close())
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// rolledBackMain writes a state at dev-upgraded whose redirect was rolled
// back: rolledback STATE.
func rolledBackMain() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: rolledback STATE")
		os.Exit(2)
	}
	if err := redirectAttempt(os.Args[1], state.RolledBack); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// redirectAttempt writes a cycle at dev-upgraded with one attempt of
// redirect in status.
func redirectAttempt(path string, status state.Status) error {
	s := state.Open(path)
	err := s.Init(state.Meta{Phase: "dev-upgraded", Cycle: 1, From: 27, To: 29})
	if err == nil {
		_, err = s.Begin(&state.Attempt{Cycle: 1, Event: "redirect", From: "dev-upgraded", To: "redirected", Command: "next",
			Steps: []state.StepRecord{{ID: "redirect/approve", Text: "approve"}}})
	}
	if err == nil {
		err = s.UpdateAttempt(1, func(a *state.Attempt) error { a.Status = status; return nil })
	}
	return err
}

// runCLI runs a command line in this process, as main would.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb strings.Builder
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}
