package steps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"boxswap/boxes"
)

func TestRsyncCommand(t *testing.T) {
	p := SyncParams{Src: "thurst", Dst: "thermals", DstHost: "thermals.inria.fr", DstPort: 22, DstUser: "root",
		Folder: "students", Root: "/nbhosting", SrcUnit: "nbhosting-addr"}
	for _, tc := range []struct {
		name string
		p    func(SyncParams) SyncParams
		dry  bool
		want string
	}{
		{"real", nil, false,
			`rsync -a --delete --protect-args -e 'ssh -p 22 -o BatchMode=yes -o StrictHostKeyChecking=yes' -- /nbhosting/students/ root@thermals.inria.fr:/nbhosting/students/`},
		{"dry", nil, true,
			`rsync -a --delete --protect-args --dry-run --stats -e 'ssh -p 22 -o BatchMode=yes -o StrictHostKeyChecking=yes' -- /nbhosting/students/ root@thermals.inria.fr:/nbhosting/students/`},
		{"port and no user", func(p SyncParams) SyncParams { p.DstPort, p.DstUser = 2222, ""; return p }, false,
			`rsync -a --delete --protect-args -e 'ssh -p 2222 -o BatchMode=yes -o StrictHostKeyChecking=yes' -- /nbhosting/students/ thermals.inria.fr:/nbhosting/students/`},
		{"default port", func(p SyncParams) SyncParams { p.DstPort = 0; return p }, false,
			`rsync -a --delete --protect-args -e 'ssh -p 22 -o BatchMode=yes -o StrictHostKeyChecking=yes' -- /nbhosting/students/ root@thermals.inria.fr:/nbhosting/students/`},
		{"local", func(p SyncParams) SyncParams { p.DstHost, p.DstRoot = "", "/backup"; return p }, false,
			`rsync -a --delete --protect-args -- /nbhosting/students/ /backup/students/`},
		{"hostile folder", func(p SyncParams) SyncParams { p.Folder = "a b;rm -rf ~"; return p }, false,
			`rsync -a --delete --protect-args -e 'ssh -p 22 -o BatchMode=yes -o StrictHostKeyChecking=yes' -- '/nbhosting/a b;rm -rf ~/' 'root@thermals.inria.fr:/nbhosting/a b;rm -rf ~/'`},
		{"hostile host", func(p SyncParams) SyncParams { p.DstHost = "$(x)"; return p }, false,
			`rsync -a --delete --protect-args -e 'ssh -p 22 -o BatchMode=yes -o StrictHostKeyChecking=yes' -- /nbhosting/students/ 'root@$(x):/nbhosting/students/'`},
		{"quote in root", func(p SyncParams) SyncParams { p.Root = "/it's"; return p }, false,
			`rsync -a --delete --protect-args -e 'ssh -p 22 -o BatchMode=yes -o StrictHostKeyChecking=yes' -- '/it'\''s/students/' 'root@thermals.inria.fr:/it'\''s/students/'`},
	} {
		q := p
		if tc.p != nil {
			q = tc.p(p)
		}
		got := RsyncCommand(q, tc.dry)
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
		words := shellWords(t, got)
		if dst := words[len(words)-1]; dst != q.dstDir() && dst != q.DstUser+map[bool]string{true: "@"}[q.DstUser != ""]+q.DstHost+":"+q.dstDir() {
			t.Errorf("%s: destination arrives as %q", tc.name, words[len(words)-1])
		}
		if words[len(words)-2] != q.srcDir() {
			t.Errorf("%s: source arrives as %q", tc.name, words[len(words)-2])
		}
		if words[len(words)-3] != "--" {
			t.Errorf("%s: no -- before the paths: %q", tc.name, words)
		}
	}
}

// shellWords asks the real sh how it splits cmd (with rsync replaced by a
// printer of its arguments).
func shellWords(t *testing.T, cmd string) []string {
	t.Helper()
	r := newShRunner(t)
	r.stub(t, "rsync", `for a in "$@"; do printf '%s\0' "$a"; done`)
	var out strings.Builder
	exit, err := r.Run(context.Background(), cmd, &out, os.Stderr)
	if err != nil || exit != 0 {
		t.Fatalf("%s: exit %d %v", cmd, exit, err)
	}
	return strings.Split(strings.TrimSuffix(out.String(), "\x00"), "\x00")
}

// localSync sets up two data roots on this machine and a source box whose
// address unit answers what active says.
type localSync struct {
	r        *shRunner
	dr       *shRunner // the destination box (its guard's commands)
	te       *testEnv
	p        SyncParams
	src, dst string
}

func newLocalSync(t *testing.T, active string) *localSync {
	t.Helper()
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Fatalf("rsync is needed for this test (apt-get install -y rsync): %v", err)
	}
	r := newShRunner(t)
	root := t.TempDir()
	ls := &localSync{r: r, src: filepath.Join(root, "prod"), dst: filepath.Join(root, "dev")}
	r.stub(t, "systemctl", fmt.Sprintf(`[ "$1 $2 $3" = "is-active -- nbhosting-addr" ] || exit 99; echo %s; [ %s = active ]`, active, active))
	// The destination box is this machine too: it does not hold the
	// function unless a test says so (dstUnit).
	ls.dr = newShRunner(t)
	ls.dstUnit(t, "inactive")
	ls.te = newEnv(map[string]boxes.Runner{"thurst": r, "thermals": ls.dr})
	ls.p = SyncParams{Src: "thurst", Dst: "thermals", Folder: "students", Root: ls.src, DstRoot: ls.dst,
		SrcUnit: "nbhosting-addr", MaxDelete: 2}
	return ls
}

// dstUnit makes the destination's nbhosting-addr answer state.
func (ls *localSync) dstUnit(t *testing.T, state string) {
	t.Helper()
	ls.dr.stub(t, "systemctl", fmt.Sprintf(`[ "$1 $2 $3" = "is-active -- nbhosting-addr" ] || exit 99; echo %s; [ %s = active ]`, state, state))
}

func TestSyncLocalRsync(t *testing.T) {
	ctx := context.Background()
	ls := newLocalSync(t, "active")
	mustWrite(t, filepath.Join(ls.src, "students", "alice", "nb.ipynb"), "{}")
	mustWrite(t, filepath.Join(ls.src, "students", "bob", "x.py"), "print(1)\n")
	mustWrite(t, filepath.Join(ls.dst, "students", "gone"), "old")
	s := Sync("redirect/sync/students", ls.p)

	done, why, err := s.Check(ctx, ls.te.Env)
	if err != nil || done {
		t.Fatalf("check before = %v %q %v", done, why, err)
	}
	if !strings.Contains(why, "2 files to transfer") || !strings.Contains(why, "1 to delete") {
		t.Errorf("why = %q", why)
	}
	if err := s.Apply(ctx, ls.te.Env); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(ls.dst, "students", "bob", "x.py")); got != "print(1)\n" {
		t.Errorf("copied = %q", got)
	}
	if exists(filepath.Join(ls.dst, "students", "gone")) {
		t.Error("--delete did not delete")
	}
	if done, why, err := s.Check(ctx, ls.te.Env); !done || err != nil {
		t.Fatalf("check after = %v %q %v", done, why, err)
	}
	if err := s.Apply(ctx, ls.te.Env); err != nil {
		t.Fatalf("second apply: %v", err)
	}
	if err := s.Undo(ctx, ls.te.Env); err != nil || !exists(filepath.Join(ls.dst, "students", "alice", "nb.ipynb")) {
		t.Fatalf("undo must leave the copy: %v", err)
	}
	if len(ls.te.progress) == 0 {
		t.Error("no progress reported")
	}
}

func TestSyncRefusesWrongDirection(t *testing.T) {
	ls := newLocalSync(t, "inactive")
	mustWrite(t, filepath.Join(ls.src, "students", "a"), "a")
	mustWrite(t, filepath.Join(ls.dst, "students", "b"), "b")
	err := Sync("id", ls.p).Apply(context.Background(), ls.te.Env)
	want := "refusing to sync students from thurst: it does not hold production (nbhosting-addr is inactive); wrong direction?"
	if err == nil || err.Error() != want || !errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v, want %s", err, want)
	}
	if !exists(filepath.Join(ls.dst, "students", "b")) {
		t.Fatal("the destination was touched")
	}
	for _, c := range ls.r.cmds {
		if strings.HasPrefix(c, "rsync") {
			t.Errorf("rsync ran after the guard refused: %s", c)
		}
	}
}

func TestSyncRefusesEmptyOrMissingSource(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		setup      func(ls *localSync)
	}{
		{"missing", "does not exist there", func(*localSync) {}},
		{"empty", "is empty there, and --delete would empty", func(ls *localSync) {
			if err := os.MkdirAll(filepath.Join(ls.src, "students"), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		ls := newLocalSync(t, "active")
		mustWrite(t, filepath.Join(ls.dst, "students", "keep"), "k")
		tc.setup(ls)
		s := Sync("id", ls.p)
		err := s.Apply(context.Background(), ls.te.Env)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
		if done, why, err := s.Check(context.Background(), ls.te.Env); done || err != nil || !strings.Contains(why, tc.want) {
			t.Errorf("%s: check = %v %q %v", tc.name, done, why, err)
		}
		if !exists(filepath.Join(ls.dst, "students", "keep")) {
			t.Errorf("%s: destination touched", tc.name)
		}
	}
}

func TestSyncMaxDelete(t *testing.T) {
	ctx := context.Background()
	ls := newLocalSync(t, "active")
	mustWrite(t, filepath.Join(ls.src, "students", "a"), "a")
	for i := range 3 {
		mustWrite(t, filepath.Join(ls.dst, "students", fmt.Sprintf("extra%d", i)), "x")
	}
	s := Sync("id", ls.p)
	err := s.Apply(ctx, ls.te.Env)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"would delete 3 files on thermals", "max_delete (2)", "--force max-delete"} {
		if !strings.Contains(Detail(err), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !exists(filepath.Join(ls.dst, "students", "extra0")) {
		t.Fatal("files deleted despite the refusal")
	}
	ls.te.Force[ForceMaxDelete] = true
	if err := s.Apply(ctx, ls.te.Env); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(ls.dst, "students", "extra0")) {
		t.Fatal("forced sync did not delete")
	}
}

func TestSyncValidatesParams(t *testing.T) {
	for _, p := range []SyncParams{
		{Src: "a", Folder: "students", Root: "relative", SrcUnit: "u"},
		{Src: "a", Folder: "..", Root: "/d", SrcUnit: "u"},
		{Src: "a", Folder: "x/y", Root: "/d", SrcUnit: "u"},
		{Src: "a", Folder: "x", Root: "/d"},
	} {
		f := &fakeRunner{}
		te := newEnv(map[string]boxes.Runner{"a": f})
		if err := Sync("id", p).Apply(context.Background(), te.Env); !errors.Is(err, ErrRefused) {
			t.Errorf("%+v: err = %v", p, err)
		}
		if len(f.sent()) != 0 {
			t.Errorf("%+v: sent %q", p, f.sent())
		}
	}
}

func TestSyncDescribe(t *testing.T) {
	p := SyncParams{Src: "thurst", Dst: "thermals", DstHost: "thermals.inria.fr", DstUser: "root", Folder: "raw",
		Root: "/nbhosting", SrcUnit: "nbhosting-addr", MaxDelete: 1000, Final: true}
	d := Sync("redirect/final-sync/raw", p).Describe()
	e := ` -e 'ssh -p 22 -o BatchMode=yes -o StrictHostKeyChecking=yes' -- /nbhosting/raw/ root@thermals.inria.fr:/nbhosting/raw/`
	want := []string{
		`printf 'unit %s\n' "$(systemctl is-active -- nbhosting-addr)"; if test -d /nbhosting/raw; then echo there; find /nbhosting/raw -mindepth 1 -maxdepth 1 -print -quit; else echo missing; fi`,
		"rsync -a --delete --protect-args --max-delete=-1" + e,
		"rsync -a --delete --protect-args --max-delete=1000" + e,
		`printf 'unit %s\n' "$(systemctl is-active -- nbhosting-addr)"; ` +
			`df -P -B1 -- /nbhosting 2>/dev/null | sed 's/^/df /'; ` +
			`printf 'entries %s\n' "$(find /nbhosting/raw -mindepth 1 2>/dev/null | wc -l)"`,
		"rsync -a --delete --protect-args --dry-run --stats" + e,
	}
	if !equalStrings(d.Commands, want) || d.Box != "thurst" || !d.Retry || d.Irreversible || len(d.Undo) != 0 {
		t.Errorf("describe = %+v", d)
	}
	if !strings.HasPrefix(d.Text, "final sync of /nbhosting/raw from thurst to thermals") {
		t.Errorf("text = %q", d.Text)
	}
}

func TestSyncSSHFailureHint(t *testing.T) {
	f := &fakeRunner{script: func(cmd string) reply {
		switch {
		case strings.HasPrefix(cmd, "printf 'unit %s"):
			return reply{out: "unit active\nthere\n/nbhosting/students/alice\n"}
		case strings.HasPrefix(cmd, "rsync"):
			return reply{errout: "Host key verification failed.\nrsync error: unexplained error (code 255)\n", exit: 255}
		}
		return reply{}
	}}
	d := &fakeRunner{script: func(cmd string) reply {
		return reply{out: "unit inactive\ndf Filesystem 1-blocks Used Available Capacity Mounted on\ndf /dev/vda 2000000000 1000000000 1000000 50% /\nentries 3\n"}
	}}
	te := newEnv(map[string]boxes.Runner{"thurst": f, "thermals": d})
	p := SyncParams{Src: "thurst", Dst: "thermals", DstHost: "thermals.inria.fr", Folder: "students", Root: "/nbhosting", SrcUnit: "nbhosting-addr"}
	err := Sync("id", p).Apply(context.Background(), te.Env)
	if exitCode(err) != 255 || !strings.Contains(err.Error(), "thurst could not reach thermals over ssh: run boxswap check") {
		t.Fatalf("err = %v", err)
	}
}

// The last cycle's backup on the destination (students.prod) is the basis
// of the real runs: its identical files are copied there, not sent. The
// check's dry run leaves it out, or an empty destination would look in
// sync; the backup itself is left as it was.
func TestSyncStartsFromTheBackupBasis(t *testing.T) {
	ctx := context.Background()
	ls := newLocalSync(t, "active")
	ls.p.Basis = "students.prod"
	mustWrite(t, filepath.Join(ls.src, "students", "alice", "nb.ipynb"), "{}")
	mustWrite(t, filepath.Join(ls.src, "students", "bob", "x.py"), "print(2)\n")
	// The backup holds alice's file as it is and an older bob.
	if err := os.MkdirAll(ls.dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", filepath.Join(ls.src, "students"), filepath.Join(ls.dst, "students.prod")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	old := filepath.Join(ls.dst, "students.prod", "bob", "x.py")
	mustWrite(t, old, "print(1)\n")
	// Older, as a backup from the last cycle is: rsync tells files apart by
	// size and time.
	if err := os.Chtimes(old, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	s := Sync("redirect/sync/students", ls.p)
	if done, why, err := s.Check(ctx, ls.te.Env); err != nil || done {
		t.Fatalf("check with an empty destination and a full basis = %v %q %v", done, why, err)
	}
	if err := s.Apply(ctx, ls.te.Env); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(ls.dst, "students", "alice", "nb.ipynb")); got != "{}" {
		t.Errorf("alice = %q", got)
	}
	if got := mustRead(t, filepath.Join(ls.dst, "students", "bob", "x.py")); got != "print(2)\n" {
		t.Errorf("bob = %q", got)
	}
	if got := mustRead(t, filepath.Join(ls.dst, "students.prod", "bob", "x.py")); got != "print(1)\n" {
		t.Errorf("the backup changed: bob = %q", got)
	}
	var dry, real int
	for _, c := range ls.r.cmds {
		if !strings.HasPrefix(c, "rsync ") {
			continue
		}
		has := strings.Contains(c, "'--copy-dest=../students.prod'")
		if strings.Contains(c, "--dry-run") {
			dry++
			if has {
				t.Errorf("a dry run uses the basis: %s", c)
			}
		} else {
			real++
			if !has {
				t.Errorf("a real run does not use the basis: %s", c)
			}
		}
	}
	if dry == 0 || real == 0 {
		t.Fatalf("%d dry runs, %d real runs", dry, real)
	}
	if done, why, err := s.Check(ctx, ls.te.Env); !done || err != nil {
		t.Fatalf("check after = %v %q %v", done, why, err)
	}
}

// The source's guard is one round trip; an answer it cannot read, or a
// folder find cannot list, is an error, never a sync nor a refusal that
// says nothing was there.
func TestSyncGuardAnswers(t *testing.T) {
	p := SyncParams{Src: "thurst", Dst: "thermals", DstHost: "h", Folder: "students", Root: "/nbhosting", SrcUnit: "nbhosting-addr", MaxDelete: 10}
	for _, tc := range []struct {
		name string
		r    reply
		want string
		kind error
	}{
		{"wrong direction", reply{out: "unit inactive\nthere\n/nbhosting/students/a\n"}, "it does not hold production", ErrRefused},
		{"missing", reply{out: "unit active\nmissing\n"}, "/nbhosting/students does not exist there", ErrRefused},
		{"empty", reply{out: "unit active\nthere\n"}, "is empty there", ErrRefused},
		{"no systemctl answer", reply{out: "unit \nthere\n/nbhosting/students/a\n"}, `unexpected answer from systemctl is-active: ""`, nil},
		{"cut short", reply{out: "unit active\n"}, `unexpected answer "unit active\n"`, nil},
		{"not ours", reply{out: "active\nthere\n"}, `unexpected answer "active\nthere\n"`, nil},
		{"unreadable", unreadableGuard(t), "Permission denied", nil},
	} {
		f := &fakeRunner{script: func(string) reply { return tc.r }}
		te := newEnv(map[string]boxes.Runner{"thurst": f})
		err := Sync("redirect/sync/students", p).Apply(context.Background(), te.Env)
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.kind != nil) != errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v, want %q (refused: %v)", tc.name, err, tc.want, tc.kind != nil)
		}
		if s := f.sent(); len(s) != 1 {
			t.Errorf("%s: sent %q, want the guard alone", tc.name, s)
		}
	}
}

// unreadableGuard runs the guard's real command with sh over a folder its
// user cannot list (as nobody when the test runs as root, who reads
// anything), systemctl stubbed, and returns what it answered.
func unreadableGuard(t *testing.T) reply {
	t.Helper()
	top := t.TempDir()
	root, stubs := filepath.Join(top, "nbhosting"), filepath.Join(top, "bin")
	mustWrite(t, filepath.Join(root, "students", "alice"), "a")
	mustWrite(t, filepath.Join(stubs, "systemctl"), "#!/bin/sh\necho active\n")
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{filepath.Dir(top), 0o755}, {top, 0o755}, {root, 0o755}, {stubs, 0o755}, {filepath.Join(stubs, "systemctl"), 0o755}, {filepath.Join(root, "students"), 0o000}} {
		if err := os.Chmod(c.path, c.mode); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(root, "students"), 0o755) })
	cmd := guardCmd(SyncParams{Folder: "students", Root: root, SrcUnit: "nbhosting-addr"})
	argv := []string{"sh", "-c", cmd}
	if os.Geteuid() == 0 {
		argv = append([]string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}, argv...)
	}
	c := exec.Command(argv[0], argv[1:]...)
	c.Env = []string{"PATH=" + stubs + ":/usr/bin:/bin"}
	var out, errout strings.Builder
	c.Stdout, c.Stderr = &out, &errout
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%q: %v", argv, err)
	}
	if code == 0 || !strings.HasPrefix(out.String(), "unit active\nthere\n") {
		t.Fatalf("the guard over an unreadable folder: exit %d, %q, %q", code, out.String(), errout.String())
	}
	return reply{out: out.String(), errout: errout.String(), exit: code}
}
