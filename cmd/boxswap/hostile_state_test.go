package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"

	"boxswap/internal/etcdtest"
	"boxswap/state"
)

// The second hostile sweep (issue 23), state side: each class is a table
// of members below, the sweep's generator; every member runs against every
// verb that reaches it, each in a fresh t.TempDir(). Re-run it with
//
//	go test -count=1 -v -run 'TestHostileState' ./cmd/boxswap
//
// and copy the FIGURE lines into docs/reliability.md ("Hostile operator,
// second sweep"). None of these inputs makes boxswap read without bound
// (a state is mapped, a lock read up to 64 KiB, an etcd value is bounded
// by etcd), so they run in this process; the config-side sweep, whose
// inputs can, runs its members in a memory-capped child.

// hostileVerbs are the verbs that read or write the state, with the
// arguments that reach it. mark-done names the fixture's first step.
var hostileVerbs = [][]string{
	{"where"}, {"where", "--json"}, {"log"}, {"plan", "--offline"},
	{"--yes", "next"}, {"--yes", "resume"}, {"rollback"},
	{"mark-done", "upgrade-dev/preflight/reach/thurst", "--reason", "test"},
	{"unlock", "--force", "--reason", "test"},
}

// writesState tells the verbs that write the state or take its lock.
func writesState(verb []string) bool {
	switch verb[len(verb)-1] {
	case "next", "resume", "rollback":
		return true
	}
	return verb[0] == "mark-done" || verb[0] == "unlock"
}

// firstStep is where the fixture's attempt stops: before anything runs.
const firstStep = "upgrade-dev/preflight/reach/thurst"

// shippedYAML is the shipped boxes.yaml, found before a test moves to
// another folder.
var shippedYAML, _ = filepath.Abs(filepath.Join("..", "..", "boxes.yaml"))

// hostileDir is a folder with lab.yaml (the shipped pair on loopback port
// 1, where nothing listens) and its empty SSH files.
func hostileDir(t *testing.T) string {
	t.Helper()
	shipped, err := os.ReadFile(shippedYAML)
	if err != nil {
		t.Fatal(err)
	}
	lab, err := labConfig(string(shipped))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, body := range map[string]string{"lab.yaml": lab, "known_hosts": "", "ssh_config": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// interruptedState writes, in dir, the state of an upgrade-dev stopped
// before its first step: an attempt with its 19 steps, their commands and
// the boxes.yaml they were planned from, all recorded by boxswap itself.
func interruptedState(t *testing.T, dir string) string {
	t.Helper()
	code, out, stderr := runCLI(t, "-c", filepath.Join(dir, "lab.yaml"), "--yes", "next", "--stop-before", firstStep)
	if code != exitInterrupted {
		t.Fatalf("the fixture's next --stop-before: exit %d\n%s%s", code, out, stderr)
	}
	return filepath.Join(dir, "boxswap.db")
}

// tree is every file under the folders, with its bytes and mtime: what a
// refusal must leave as it was.
func tree(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			v := fi.Mode().String() // a folder's mtime moves with boxswap's own lock
			if fi.Mode().IsRegular() {
				v += " " + fi.ModTime().Format(time.RFC3339Nano)
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				v += " " + string(data)
			}
			files[p] = v
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// changed lists what differs between two trees.
func changed(before, after map[string]string) []string {
	var out []string
	for p, v := range after {
		if w, ok := before[p]; !ok {
			out = append(out, "created "+p)
		} else if v != w {
			out = append(out, "changed "+p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			out = append(out, "removed "+p)
		}
	}
	sort.Strings(out)
	return out
}

// checkWords checks a refusal as the operator reads it: one line of at
// most 200 characters naming want, then one hint line of at most 200
// (warnings before them aside). The test's folder, far longer than an
// operator's, is measured as /srv/boxswap.
func checkWords(t *testing.T, what, dir, stderr, want string) {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(strings.ReplaceAll(stderr, dir, "/srv/boxswap"), "\n"), "\n") {
		if !strings.HasPrefix(l, "boxswap: warning: ") {
			lines = append(lines, l)
		}
	}
	switch {
	case len(lines) != 2 || !strings.HasPrefix(lines[0], "boxswap: ") || !strings.HasPrefix(lines[1], "hint: "):
		t.Errorf("%s: want a message line and a hint line, got:\n%s", what, stderr)
	case len(strings.TrimPrefix(lines[0], "boxswap: ")) > 200 || len(strings.TrimPrefix(lines[1], "hint: ")) > 200:
		t.Errorf("%s: a line over 200 characters:\n%s", what, stderr)
	case !strings.Contains(lines[0], want):
		t.Errorf("%s: the message does not say %q:\n%s", what, want, stderr)
	}
}

// A hard link (class A) or a file another user could change (class E)
// planted at a file boxswap writes: the state, its lock, an attempt log.
// Every verb that reaches it refuses it (exit 8) before anything is
// written; the other name's file (the victim, outside the state's folder)
// and the state itself stay byte for byte.
func TestHostileStateFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the sweep plants files owned by another user: run it as root (as CI does)")
	}
	const nobody = 65534
	link := func(dir, victim, name string) error { return os.Link(victim, filepath.Join(dir, name)) }
	cases := []struct {
		class, member string
		// state: the fixture has an interrupted attempt (else no state file).
		state bool
		plant func(dir, victim string) error
		// reached: the verbs that must refuse it; the others must not see it.
		reached func(verb []string) bool
		want    string
	}{
		{"hard link", "state file, linked from a file outside", false, func(dir, victim string) error {
			// The victim is itself a state: only its second name is wrong.
			if err := os.Rename(interruptedState(t, hostileDir(t)), victim); err != nil {
				return err
			}
			return link(dir, victim, "boxswap.db")
		}, all, "has 2 names (a hard link)"},
		{"hard link", "state file, with a backup made by ln", true, func(dir, _ string) error {
			return os.Link(filepath.Join(dir, "boxswap.db"), filepath.Join(dir, "boxswap.db.bak"))
		}, all, "has 2 names (a hard link)"},
		{"hard link", "lock file", true, func(dir, victim string) error { return link(dir, victim, "boxswap.db.lock") },
			lockVerbs, "has 2 names (a hard link)"},
		{"hard link", "attempt log", false, func(dir, victim string) error {
			if err := os.Mkdir(filepath.Join(dir, "boxswap.db.logs"), 0o700); err != nil {
				return err
			}
			return link(dir, victim, "boxswap.db.logs/0001-upgrade-dev.log")
		}, func(v []string) bool { return v[len(v)-1] == "next" }, "has 2 names (a hard link)"},
		{"permissions", "state owned by another user", true, func(dir, _ string) error {
			return os.Chown(filepath.Join(dir, "boxswap.db"), nobody, nobody)
		}, all, "(uid 65534), not by you"},
		{"permissions", "state writable by all", true, func(dir, _ string) error {
			return os.Chmod(filepath.Join(dir, "boxswap.db"), 0o666)
		}, all, "is writable by group or others"},
		{"permissions", "state writable by its group", true, func(dir, _ string) error {
			return os.Chmod(filepath.Join(dir, "boxswap.db"), 0o620)
		}, all, "is writable by group or others"},
		{"permissions", "state owned by another user and writable by all", true, func(dir, _ string) error {
			p := filepath.Join(dir, "boxswap.db")
			return errors.Join(os.Chown(p, nobody, nobody), os.Chmod(p, 0o666))
		}, all, "(uid 65534), not by you"},
		{"permissions", "lock owned by another user", true, func(dir, _ string) error {
			p := filepath.Join(dir, "boxswap.db.lock")
			return errors.Join(os.WriteFile(p, nil, 0o600), os.Chown(p, nobody, nobody))
		}, lockVerbs, "(uid 65534), not by you"},
		{"permissions", "lock writable by all", true, func(dir, _ string) error {
			p := filepath.Join(dir, "boxswap.db.lock")
			return errors.Join(os.WriteFile(p, nil, 0o600), os.Chmod(p, 0o646))
		}, lockVerbs, "is writable by group or others"},
	}
	figures := map[string][3]int{} // class: inputs, refused, touched
	for _, c := range cases {
		for _, verb := range hostileVerbs {
			what := fmt.Sprintf("%s: %s: %s", c.class, c.member, strings.Join(verb, " "))
			dir, outside := hostileDir(t), t.TempDir()
			victim := filepath.Join(outside, "victim")
			if err := os.WriteFile(victim, []byte("keep\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if c.state {
				interruptedState(t, dir)
			}
			if err := c.plant(dir, victim); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			old := time.Now().Add(-time.Hour)
			for _, p := range []string{victim, filepath.Join(dir, "boxswap.db")} {
				_ = os.Chtimes(p, old, old)
			}
			before := tree(t, dir, outside)
			code, stdout, stderr := runCLI(t, append([]string{"-c", filepath.Join(dir, "lab.yaml")}, verb...)...)
			f := figures[c.class]
			f[0]++
			if c.reached(verb) {
				if code != exitState {
					t.Errorf("%s: exit %d, want %d\n%s%s", what, code, exitState, stdout, stderr)
				} else {
					f[1]++
					checkWords(t, what, dir, stderr, c.want)
				}
			} else if code == exitState || code == exitFailure {
				t.Errorf("%s: exit %d, though this verb does not use that file\n%s%s", what, code, stdout, stderr)
			}
			after := tree(t, dir, outside)
			// What a verb that does not reach the planted file may write
			// is its own business; the victim never changes.
			diff := changed(before, after)
			if c.reached(verb) && len(diff) > 0 || before[victim] != after[victim] {
				f[2]++
				t.Errorf("%s: files changed: %v", what, diff)
			}
			figures[c.class] = f
		}
	}
	for class, f := range figures {
		t.Logf("FIGURE hostile state, %s: %d inputs, %d refused with exit 8, %d with files changed", class, f[0], f[1], f[2])
	}
}

func all([]string) bool { return true }

// lockVerbs reach the lock: where reads it, the writers take it, unlock
// removes it.
func lockVerbs(verb []string) bool { return verb[0] == "where" || writesState(verb) }

// hostileURLs are state locations an operator may mistype for an etcd URL
// (class "state URL"), and blank ones: each is a usage error (exit 2)
// wherever a state location is read, never a new local file.
var hostileURLs = []string{
	"", " ", "\t",
	"ETCD://127.0.0.1:1/boxswap/a", "Etcd://127.0.0.1:1/boxswap/a", "ETCDS://127.0.0.1:1/boxswap/a",
	"etcd:/127.0.0.1:1/boxswap/a", "etcd:127.0.0.1:1/boxswap/a", "etcd//127.0.0.1:1/boxswap/a", "etcd:///boxswap/a",
	"http://127.0.0.1:1/boxswap/a", "https://ann:hunter2@127.0.0.1:1/boxswap/a", "file:///tmp/boxswap.db",
	"etcd://127.0.0.1:1", "etcd://127.0.0.1/boxswap/a", "etcd://127.0.0.1:1/boxswap/a?x=1",
}

// Every mistyped state URL, given as --state to a reading and a writing
// verb and to state init, as state push's DEST and as boxes.yaml's
// state.url: exit 2, nothing created (the current folder is the
// fixture's, so a relative file would land there), no password printed.
func TestHostileStateURLs(t *testing.T) {
	ways := []struct {
		name string
		args func(dir, u string) []string
	}{
		{"--state, where", func(dir, u string) []string { return []string{"--state", u, "where"} }},
		{"--state, next", func(dir, u string) []string { return []string{"--state", u, "--yes", "next"} }},
		{"--state, state init", func(dir, u string) []string { return []string{"--state", u, "state", "init"} }},
		{"state push DEST", func(dir, u string) []string { return []string{"state", "push", u} }},
		{"state pull FILE", func(dir, u string) []string {
			return []string{"--state", filepath.Join(dir, "boxswap.db"), "state", "pull", u}
		}},
		{"boxes.yaml state.url", func(dir, u string) []string {
			cfg := filepath.Join(dir, "lab.yaml")
			data, err := os.ReadFile(cfg)
			if err == nil {
				err = os.WriteFile(cfg, fmt.Appendf(data, "state:\n  url: %q\n", u), 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			return []string{"where"}
		}},
	}
	inputs, refused := 0, 0
	for _, u := range hostileURLs {
		for _, w := range ways {
			what := fmt.Sprintf("%q as %s", u, w.name)
			dir := hostileDir(t)
			interruptedState(t, dir)
			t.Chdir(dir)
			args := w.args(dir, u)
			before := tree(t, dir)
			code, stdout, stderr := runCLI(t, append([]string{"-c", filepath.Join(dir, "lab.yaml")}, args...)...)
			inputs++
			if code != exitUsage {
				t.Errorf("%s: exit %d, want %d\n%s%s", what, code, exitUsage, stdout, stderr)
				continue
			}
			refused++
			want := "state"
			if w.name == "boxes.yaml state.url" {
				want = "url"
				before[filepath.Join(dir, "lab.yaml")] = tree(t, dir)[filepath.Join(dir, "lab.yaml")]
			}
			checkWords(t, what, dir, stderr, want)
			if strings.Contains(stdout+stderr, "hunter2") {
				t.Errorf("%s: the password is printed:\n%s%s", what, stdout, stderr)
			}
			if diff := changed(before, tree(t, dir)); len(diff) > 0 {
				t.Errorf("%s: files changed: %v", what, diff)
			}
		}
	}
	t.Logf("FIGURE hostile state, state URL: %d inputs (%d spellings × %d ways), %d refused with exit 2", inputs, len(hostileURLs), len(ways), refused)
}

// editRecord changes the first record of bucket in the bbolt file at path
// as a disk or a hand would: the first old in it becomes new; with unseal,
// its checksum member goes too (a record written before records were
// sealed).
func editRecord(t *testing.T, path, bucket, old, new string, unseal bool) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		k, v := b.Cursor().First()
		if bucket == "meta" {
			k, v = []byte("meta"), b.Get([]byte("meta"))
		}
		if !bytes.Contains(v, []byte(old)) {
			return fmt.Errorf("the first %s record holds no %q", bucket, old)
		}
		w := bytes.Replace(v, []byte(old), []byte(new), 1)
		if unseal {
			if i := bytes.LastIndex(w, []byte(`,"crc":"`)); i >= 0 {
				w = append(w[:i:i], '}')
			}
		}
		return b.Put(k, w)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// One byte changed in a record of a state boxswap wrote (class "damage"):
// every verb refuses it, exit 8 "damaged", before it writes anything (the
// file stays byte for byte), and never blames boxes.yaml. The last two
// members are records written before records were sealed, whose damage
// only the verb that uses them can see: the stored boxes.yaml that
// rollback plans its undo from, the stored commands resume compares.
func TestHostileStateDamage(t *testing.T) {
	cases := []struct {
		member, bucket, old, new string
		unseal                   bool
		verbs                    [][]string
	}{
		{"the stored boxes.yaml", "attempts", "127.0.0.2", "127.0.0.3", false, hostileVerbs},
		{"a stored command", "attempts", "upgrade --refresh", "upgrade --refresg", false, hostileVerbs},
		{"a step's text", "attempts", "answers over ssh", "answers over sth", false, hostileVerbs},
		{"a step's status", "attempts", `"status":"pending"`, `"status":"pendinf"`, false, hostileVerbs},
		{"the attempt's summary", "summaries", "upgrade-dev", "upgrade-deu", false, hostileVerbs},
		{"a history event", "history", "cycle 1 begins", "cycle 2 begins", false, hostileVerbs},
		{"the meta record", "meta", `"cycle":1`, `"cycle":2`, false, hostileVerbs},
		{"an unsealed stored boxes.yaml", "attempts", "upgrade:", "upgrade;", true, [][]string{{"rollback"}}},
		{"an unsealed stored command", "attempts", "upgrade --refresh", "upgrade --refresg", true, [][]string{{"--yes", "resume"}}},
	}
	// An unsealed record that plans otherwise from the same boxes.yaml is
	// what another boxswap version also leaves: not called damage (exit 7,
	// resume --replan), with both causes named, and boxes.yaml not blamed.
	planned := map[string]bool{"an unsealed stored command": true}
	inputs, refused := 0, 0
	for _, c := range cases {
		for _, verb := range c.verbs {
			what := fmt.Sprintf("damage: %s: %s", c.member, strings.Join(verb, " "))
			dir := hostileDir(t)
			path := interruptedState(t, dir)
			editRecord(t, path, c.bucket, c.old, c.new, c.unseal)
			before := tree(t, dir)
			code, stdout, stderr := runCLI(t, append([]string{"-c", filepath.Join(dir, "lab.yaml")}, verb...)...)
			inputs++
			switch {
			case planned[c.member]:
				if code != exitPhase || !strings.Contains(stderr, "another boxswap version planned it, or its record") || !strings.Contains(stderr, "resume --replan") {
					t.Errorf("%s: exit %d, want %d naming another version or damage\n%s%s", what, code, exitPhase, stdout, stderr)
				}
			case code != exitState:
				t.Errorf("%s: exit %d, want %d\n%s%s", what, code, exitState, stdout, stderr)
			default:
				refused++
				checkWords(t, what, dir, stderr, "damaged")
			}
			if strings.Contains(stderr, "boxes.yaml has") || strings.Contains(stderr, "boxes.yaml changed") {
				t.Errorf("%s: blames boxes.yaml:\n%s", what, stderr)
			}
			if diff := changed(before, tree(t, dir)); len(diff) > 0 {
				t.Errorf("%s: files changed: %v", what, diff)
			}
		}
	}
	t.Logf("FIGURE hostile state, damage: %d inputs (%d members), %d refused with exit 8", inputs, len(cases), refused)
}

// etcd prefixes that nest (class "nesting"), on a real etcd: state init and
// state push refuse a prefix inside or above another pair's (exit 5,
// nothing written: the cluster's revision does not move); a pair already
// nested under another (made behind boxswap's back, as before this check)
// leaves the outer pair working, with a warning naming it, and the inner
// one working too; one nested among the outer pair's own records is
// damage (exit 8).
func TestHostileStateNesting(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client()
	dir := hostileDir(t)
	cfg := filepath.Join(dir, "lab.yaml")
	revision := func() int64 {
		resp, err := cli.Get(context.Background(), "/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	if code, out, stderr := runCLI(t, "-c", cfg, "--state", c.URL("/boxswap/site-a"), "state", "init"); code != 0 {
		t.Fatalf("state init: exit %d\n%s%s", code, out, stderr)
	}
	inputs, refused, byCode := 0, 0, map[int]int{}
	for _, m := range []struct {
		member string
		args   []string
		want   string
	}{
		{"state init inside", []string{"--state", c.URL("/boxswap/site-a/inner"), "state", "init"}, "is inside the prefix of the pair at /boxswap/site-a"},
		{"state init deep inside", []string{"--state", c.URL("/boxswap/site-a/x/y"), "state", "init"}, "is inside the prefix of the pair at /boxswap/site-a"},
		{"state init inside, among its records", []string{"--state", c.URL("/boxswap/site-a/a"), "state", "init"}, "is inside"},
		{"state init above", []string{"--state", c.URL("/boxswap"), "state", "init"}, "is above the pair at /boxswap/site-a"},
		{"state push inside", []string{"state", "push", c.URL("/boxswap/site-a/copy")}, "is inside the prefix of the pair at /boxswap/site-a"},
		{"state push above", []string{"state", "push", c.URL("/boxswap")}, "is above the pair at /boxswap/site-a"},
	} {
		rev := revision()
		code, out, stderr := runCLI(t, append([]string{"-c", cfg}, m.args...)...)
		inputs++
		byCode[code]++
		if code != exitRefused {
			t.Errorf("%s: exit %d, want %d\n%s%s", m.member, code, exitRefused, out, stderr)
		} else {
			refused++
			checkWords(t, m.member, dir, stderr, m.want)
		}
		if revision() != rev {
			t.Errorf("%s: the cluster was written", m.member)
		}
	}
	// A pair nested as before this check: its schema record, then a cycle
	// begun on it by boxswap itself.
	if _, err := cli.Put(context.Background(), "/boxswap/site-a/inner/m/schema", fmt.Sprint(state.SchemaVersion)); err != nil {
		t.Fatal(err)
	}
	inner := c.URL("/boxswap/site-a/inner")
	if code, out, stderr := runCLI(t, "-c", cfg, "--state", inner, "--yes", "next", "--stop-before", firstStep); code != exitInterrupted {
		t.Fatalf("next on the inner pair: exit %d\n%s%s", code, out, stderr)
	}
	outer := c.URL("/boxswap/site-a")
	for _, v := range []struct {
		verb []string
		code int
	}{
		{[]string{"where"}, 0}, {[]string{"where", "--json"}, 0}, {[]string{"log"}, 0}, {[]string{"plan", "--offline"}, 0},
		{[]string{"mark-done", firstStep, "--reason", "test"}, exitPhase}, // nothing pending on the outer pair
		{[]string{"unlock", "--force", "--reason", "test"}, 0},
		{[]string{"--yes", "next", "--stop-before", firstStep}, exitInterrupted},
		{[]string{"rollback"}, 0},
	} {
		what := "a nested pair, outer: " + strings.Join(v.verb, " ")
		code, out, stderr := runCLI(t, append([]string{"-c", cfg, "--state", outer}, v.verb...)...)
		inputs++
		if code != v.code {
			t.Errorf("%s: exit %d, want %d\n%s%s", what, code, v.code, out, stderr)
		}
		if w := "boxswap: warning: " + outer + " holds another pair's state at /boxswap/site-a/inner"; !strings.Contains(stderr, w) {
			t.Errorf("%s: no warning %q:\n%s", what, w, stderr)
		}
	}
	if code, out, stderr := runCLI(t, "-c", cfg, "--state", inner, "where"); code != 0 || !strings.Contains(out, "upgrade-dev is interrupted") {
		t.Errorf("where on the inner pair: exit %d\n%s%s", code, out, stderr)
	}
	// Nested among the outer pair's own records: its keys read as records.
	if _, err := cli.Put(context.Background(), "/boxswap/site-a/h/m/schema", fmt.Sprint(state.SchemaVersion)); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "-c", cfg, "--state", outer, "where")
	inputs++
	byCode[code]++
	if code != exitState {
		t.Errorf("a pair nested among the records: exit %d, want %d\n%s%s", code, exitState, out, stderr)
	} else {
		refused++
		checkWords(t, "a pair nested among the records", dir, stderr, "among this state's own records")
	}
	t.Logf("FIGURE hostile state, nesting: %d inputs, %d refused as wanted (exit codes of the refusals tried: %v), the other %d work with a warning",
		inputs, refused, byCode, inputs-7)
}
