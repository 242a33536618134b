package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"boxswap/internal/etcdtest"
	"boxswap/state"
	"boxswap/state/etcdstate"
)

// etcdConfig writes the shipped boxes.yaml in a temporary folder.
func etcdConfig(t *testing.T) string {
	t.Helper()
	shipped, err := os.ReadFile(filepath.Join("..", "..", "boxes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "boxes.yaml")
	if err := os.WriteFile(cfg, shipped, 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Issue 15: a mistyped prefix is an error, state init creates it, and a
// password in the URL is refused without being printed.
func TestEtcdStateInit(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cfg := etcdConfig(t)
	url := c.URL("/boxswap/site-a")
	code, _, stderr := runCLI(t, "-c", cfg, "--state", url, "where")
	if code != exitState || !strings.Contains(stderr, "no boxswap state at "+url) || !strings.Contains(stderr, "state init") {
		t.Fatalf("where on a missing prefix: exit %d, %s", code, stderr)
	}
	if code, out, stderr := runCLI(t, "-c", cfg, "--state", url, "state", "init"); code != 0 || !strings.Contains(out, "created") {
		t.Fatalf("state init: exit %d, %s%s", code, out, stderr)
	}
	if code, _, _ := runCLI(t, "-c", cfg, "--state", url, "state", "init"); code == 0 {
		t.Error("a second state init on the same prefix succeeded")
	}
	code, out, stderr := runCLI(t, "-c", cfg, "--state", url, "where")
	if code != 0 || !strings.Contains(out, "phase: start") {
		t.Fatalf("where after init: exit %d, %s%s", code, out, stderr)
	}
	bad := strings.Replace(url, "etcd://", "etcd://ann:hunter2@", 1)
	code, out, stderr = runCLI(t, "-c", cfg, "--state", bad, "where")
	if code != exitUsage || strings.Contains(out+stderr, "hunter2") {
		t.Errorf("a password in the URL: exit %d, printed %q", code, out+stderr)
	}
}

// With authentication on, the password from the environment or a file
// works, a wrong one is refused, and neither is printed.
func TestEtcdAuth(t *testing.T) {
	c := etcdtest.Start(t, 1)
	enableEtcdAuth(t, c)
	cfg := etcdConfig(t)
	url := c.URL("/boxswap/auth")
	t.Setenv("BOXSWAP_ETCD_USER", "root")
	t.Setenv("BOXSWAP_ETCD_PASSWORD", "hunter2")
	code, out, stderr := runCLI(t, "-c", cfg, "--state", url, "state", "init")
	if code == 0 || strings.Contains(out+stderr, "hunter2") {
		t.Errorf("a wrong password: exit %d, printed %q", code, out+stderr)
	}
	t.Setenv("BOXSWAP_ETCD_PASSWORD", "")
	pwfile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwfile, []byte("rootpw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = runCLI(t, "-c", cfg, "--state", url, "--etcd-password-file", pwfile, "state", "init")
	if code != 0 || strings.Contains(out+stderr, "rootpw") {
		t.Fatalf("the right password from a file: exit %d, %s%s", code, out, stderr)
	}
	if code, out, stderr := runCLI(t, "-c", cfg, "--state", url, "--etcd-password-file", pwfile, "where"); code != 0 {
		t.Errorf("where with auth: exit %d, %s%s", code, out, stderr)
	}
}

// state push and pull copy a state both ways and check the copy; a locked
// source is refused.
func TestEtcdStatePushPull(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cfg := etcdConfig(t)
	dir := filepath.Dir(cfg)
	src := filepath.Join(dir, "boxswap.db")
	b := state.Open(src)
	if err := b.Init(state.Meta{Phase: "dev-upgraded", Cycle: 1, From: 12, To: 13}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Begin(&state.Attempt{Event: "redirect", From: "dev-upgraded", Command: "next",
		Steps: []state.StepRecord{{ID: "redirect/sync/students"}}}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetFact("c1/python", "3.11"); err != nil {
		t.Fatal(err)
	}
	url := c.URL("/boxswap/pushed")
	lock, err := b.Lock(state.Holder{User: "ann", Host: "elsewhere", PID: 1, Command: "boxswap next"})
	if err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, "-c", cfg, "state", "push", url); code != exitLocked {
		t.Fatalf("push of a locked state: exit %d, %s", code, stderr)
	}
	lock.Unlock()
	code, out, stderr := runCLI(t, "-c", cfg, "state", "push", url)
	if code != 0 || !strings.Contains(out, "identical") {
		t.Fatalf("push: exit %d, %s%s", code, out, stderr)
	}
	if code, _, _ := runCLI(t, "-c", cfg, "state", "push", url); code == 0 {
		t.Error("a second push onto a prefix holding a state succeeded")
	}
	back := filepath.Join(dir, "back.db")
	code, out, stderr = runCLI(t, "-c", cfg, "--state", url, "state", "pull", back)
	if code != 0 || !strings.Contains(out, "identical") {
		t.Fatalf("pull: exit %d, %s%s", code, out, stderr)
	}
	d1, err := state.ReadDump(state.Open(src))
	if err != nil {
		t.Fatal(err)
	}
	d2, err := state.ReadDump(state.Open(back))
	if err != nil {
		t.Fatal(err)
	}
	if same, part := state.SameDump(d1, d2); !same {
		t.Errorf("pushed then pulled, the state differs in its %s", part)
	}
	code, out, _ = runCLI(t, "-c", cfg, "--state", url, "log")
	if code != 0 || !strings.Contains(out, "redirect") {
		t.Errorf("log on etcd: exit %d, %s", code, out)
	}
}

// unlock --force on etcd ends the gone holder's lease, is recorded, and
// that holder, if it still runs, is refused at its next write.
func TestEtcdUnlockForce(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cfg := etcdConfig(t)
	url := c.URL("/boxswap/site-b")
	if code, _, stderr := runCLI(t, "-c", cfg, "--state", url, "state", "init"); code != 0 {
		t.Fatal(stderr)
	}
	other, err := etcdstate.Open(etcdstate.Options{Endpoints: c.Endpoints(), Prefix: "/boxswap/site-b"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Lock(state.Holder{User: "bob", Host: "laptop", PID: 4242, Command: "boxswap next"}); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI(t, "-c", cfg, "--state", url, "where")
	if code != 0 || !strings.Contains(out, "bob@laptop") {
		t.Errorf("where shows no holder: %s", out)
	}
	if code, _, stderr := runCLI(t, "-c", cfg, "--state", url, "unlock", "--force", "--reason", "laptop died"); code != 0 {
		t.Fatalf("unlock --force: exit %d, %s", code, stderr)
	}
	h, err := other.History()
	if err != nil || len(h) != 1 || h[0].Kind != "unlock" || !strings.Contains(h[0].Detail, "laptop died") || !strings.Contains(h[0].Detail, "bob@laptop") {
		t.Fatalf("history after unlock --force: %+v, %v", h, err)
	}
	if err := other.Record(state.Event{Kind: "stale"}); err == nil || !strings.Contains(err.Error(), "lock lost") {
		t.Errorf("the removed holder's next write = %v, want the lock lost", err)
	}
}

// pairs lists each state under a root prefix with its phase, pending step
// and holder; --json too.
func TestEtcdPairs(t *testing.T) {
	c := etcdtest.Start(t, 1)
	open := func(prefix string) *etcdstate.Store {
		s, err := etcdstate.Open(etcdstate.Options{Endpoints: c.Endpoints(), Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Create(); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := open("/boxswap/site-a"), open("/boxswap/staging/b")
	if err := a.Init(state.Meta{Phase: "redirected", Cycle: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Begin(&state.Attempt{Event: "upgrade-dev", From: "start", Command: "next",
		Steps: []state.StepRecord{{ID: "upgrade-dev/a", Status: state.StepDone}, {ID: "upgrade-dev/b"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock(state.Holder{User: "carol", Host: "desk", PID: 77, Command: "boxswap next"}); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "--state", c.URL("/boxswap"), "pairs", "--json")
	if code != 0 {
		t.Fatalf("pairs --json: exit %d, %s", code, stderr)
	}
	var pairs []etcdstate.Pair
	if err := json.Unmarshal([]byte(out), &pairs); err != nil {
		t.Fatal(err)
	}
	if len(pairs) != 2 || pairs[0].Prefix != "/boxswap/site-a" || pairs[0].Phase != "redirected" || pairs[0].Holder != nil ||
		pairs[1].Prefix != "/boxswap/staging/b" || pairs[1].Step != "upgrade-dev/b" || pairs[1].Holder == nil || !pairs[1].Alive {
		t.Fatalf("pairs --json = %s", out)
	}
	code, out, _ = runCLI(t, "--state", c.URL("/boxswap"), "pairs")
	if code != 0 || !strings.Contains(out, "carol@desk pid 77") || !strings.Contains(out, "upgrade-dev running at upgrade-dev/b") {
		t.Errorf("pairs: exit %d\n%s", code, out)
	}
}

// A lease under a second is refused however it is given (a flag, the
// environment), as boxes.yaml's state.lease is, before any dial.
func TestEtcdLeaseUnderASecond(t *testing.T) {
	cfg := etcdConfig(t)
	base := []string{"-c", cfg, "--state", "etcd://127.0.0.1:1/boxswap/lease"}
	if code, _, stderr := runCLI(t, append(base, "--etcd-lease", "500ms", "where")...); code != exitUsage || !strings.Contains(stderr, "at least 1s") {
		t.Errorf("--etcd-lease 500ms: exit %d, %s", code, stderr)
	}
	t.Setenv("BOXSWAP_ETCD_LEASE", "500ms")
	if code, _, stderr := runCLI(t, append(base, "where")...); code != exitUsage || !strings.Contains(stderr, "at least 1s") {
		t.Errorf("BOXSWAP_ETCD_LEASE=500ms: exit %d, %s", code, stderr)
	}
}
