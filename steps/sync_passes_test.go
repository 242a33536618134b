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

	"boxswap/boxes"
)

// liveSource makes the source "live": rsync is the real one, and after
// each real (not --dry-run) run number k the stub adds adds[k-1] new
// files to the source, as users writing during a pass would. It returns a
// function counting the real runs so far.
func liveSource(t *testing.T, ls *localSync, adds []int) func() int {
	t.Helper()
	real, err := exec.LookPath("rsync")
	if err != nil {
		t.Fatalf("rsync is needed for this test (apt-get install -y rsync): %v", err)
	}
	count := filepath.Join(t.TempDir(), "runs")
	mustWrite(t, count, "")
	script := fmt.Sprintf(`%s "$@"; rc=$?
case " $* " in *" --dry-run "*) exit $rc;; esac
echo x >> %s
k=$(wc -l < %s)
set -- %s
i=1; n=0
for a in "$@"; do [ $i -eq $k ] && n=$a; i=$((i+1)); done
j=0
mkdir -p %s/students/new$k
while [ $j -lt $n ]; do echo $j > %s/students/new$k/f$j; j=$((j+1)); done
exit $rc`, real, count, count, strings.Trim(fmt.Sprint(adds), "[]"), ls.src, ls.src)
	ls.r.stub(t, "rsync", script)
	return func() int {
		b, err := os.ReadFile(count)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(b), "\n")
	}
}

// seed writes n files into the source; the destination folder exists, as
// the lab's and the real boxes' do.
func seed(t *testing.T, dir string, n int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(filepath.Dir(dir), "dev", "students"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		mustWrite(t, filepath.Join(dir, "students", fmt.Sprintf("u%d", i%7), fmt.Sprintf("nb%d", i)), fmt.Sprint(i))
	}
}

func TestSyncPassesWhileTheDeltaShrinks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		passes   int
		adds     []int
		runs     int // real rsync runs
		lastLeft int // files added by the last run, left for the final sync
	}{
		{"shrinking: bounded by passes", 3, []int{300, 150, 120}, 3, 120},
		{"few after the first pass", 3, []int{50}, 1, 50},
		{"not shrinking", 3, []int{600, 10}, 1, 600},
		{"one pass", 1, []int{300}, 1, 300},
		{"zero means one pass", 0, []int{300}, 1, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls := newLocalSync(t, "active")
			ls.p.MaxDelete = 10
			ls.p.Passes = tc.passes
			seed(t, ls.src, 500)
			runs := liveSource(t, ls, tc.adds)
			if err := Sync("redirect/sync/students", ls.p).Apply(context.Background(), ls.te.Env); err != nil {
				t.Fatal(err)
			}
			if got := runs(); got != tc.runs {
				t.Errorf("real rsync runs = %d, want %d", got, tc.runs)
			}
			// Everything up to the last pass arrived; what the last pass let
			// in is left for the final sync.
			if !exists(filepath.Join(ls.dst, "students", "u2", "nb499")) {
				t.Error("first pass did not copy")
			}
			for k := 1; k < tc.runs; k++ {
				if !exists(filepath.Join(ls.dst, "students", fmt.Sprintf("new%d", k), "f0")) {
					t.Errorf("files added during pass %d did not arrive", k)
				}
			}
			if exists(filepath.Join(ls.dst, "students", fmt.Sprintf("new%d", tc.runs), "f0")) {
				t.Errorf("files added during the last pass arrived: there was one pass too many")
			}
			if _, ok := ls.te.facts.Get(ls.p.countedKey()); !ok {
				t.Error("the pre-sync left no counted fact")
			}
		})
	}
}

func TestSyncPassRefusesDeletionsOfALaterPass(t *testing.T) {
	ls := newLocalSync(t, "active")
	ls.p.MaxDelete, ls.p.Passes = 2, 3
	seed(t, ls.src, 1000) // u1 holds 143 of them: more than a few
	real, _ := exec.LookPath("rsync")
	// After the first real run, 150 source files vanish: the second pass
	// would delete them on the destination.
	ls.r.stub(t, "rsync", fmt.Sprintf(`%s "$@"; rc=$?
case " $* " in *" --dry-run "*) exit $rc;; esac
rm -f %s/students/u1/*
exit $rc`, real, ls.src))
	err := Sync("id", ls.p).Apply(context.Background(), ls.te.Env)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "more than max_delete (2)") {
		t.Fatalf("err = %v", err)
	}
	if !exists(filepath.Join(ls.dst, "students", "u1", "nb1")) {
		t.Fatal("a refused pass deleted files")
	}
}

// presynced runs the pre-sync of ls and returns the final sync step.
func presynced(t *testing.T, ls *localSync) Step {
	t.Helper()
	seed(t, ls.src, 20)
	if err := Sync("redirect/sync/students", ls.p).Apply(context.Background(), ls.te.Env); err != nil {
		t.Fatal(err)
	}
	fp := ls.p
	fp.Final = true
	ls.r.cmds = nil
	return Sync("redirect/final-sync/students", fp)
}

func rsyncRuns(cmds []string) (real, dry int) {
	for _, c := range cmds {
		switch {
		case strings.HasPrefix(c, "rsync") && strings.Contains(c, "--dry-run"):
			dry++
		case strings.HasPrefix(c, "rsync"):
			real++
		}
	}
	return
}

func TestFinalSyncAfterPresyncScansOnce(t *testing.T) {
	ctx := context.Background()
	ls := newLocalSync(t, "active")
	s := presynced(t, ls)
	if done, why, err := s.Check(ctx, ls.te.Env); done || err != nil || len(ls.r.cmds) != 0 {
		t.Fatalf("final check = %v %q %v, sent %q; want not done and nothing sent", done, why, err, ls.r.cmds)
	}
	mustWrite(t, filepath.Join(ls.src, "students", "u0", "nb0"), "changed")
	mustWrite(t, filepath.Join(ls.src, "students", "late"), "new")
	if err := s.Apply(ctx, ls.te.Env); err != nil {
		t.Fatal(err)
	}
	if real, dry := rsyncRuns(ls.r.cmds); real != 1 || dry != 0 {
		t.Errorf("rsync runs: %d real, %d dry; want one real run, no dry run: %q", real, dry, ls.r.cmds)
	}
	if mustRead(t, filepath.Join(ls.dst, "students", "u0", "nb0")) != "changed" || !exists(filepath.Join(ls.dst, "students", "late")) {
		t.Error("the final sync did not transfer")
	}
}

func TestFinalSyncDeletesWithinMaxDelete(t *testing.T) {
	ls := newLocalSync(t, "active")
	s := presynced(t, ls)
	os.Remove(filepath.Join(ls.src, "students", "u0", "nb0"))
	if err := s.Apply(context.Background(), ls.te.Env); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(ls.dst, "students", "u0", "nb0")) {
		t.Error("not deleted")
	}
	if real, dry := rsyncRuns(ls.r.cmds); real != 2 || dry != 0 {
		t.Errorf("rsync runs: %d real, %d dry; want 2 real (no deletion, then deletion): %q", real, dry, ls.r.cmds)
	}
}

func TestFinalSyncRefusesAboveMaxDeleteBeforeDeleting(t *testing.T) {
	ctx := context.Background()
	ls := newLocalSync(t, "active") // max_delete 2
	s := presynced(t, ls)
	for _, n := range []string{"nb0", "nb7", "nb14"} {
		os.Remove(filepath.Join(ls.src, "students", "u0", n))
	}
	err := s.Apply(ctx, ls.te.Env)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "would delete 3 files") || !strings.Contains(err.Error(), "nothing was deleted") {
		t.Fatalf("err = %v", err)
	}
	for _, n := range []string{"nb0", "nb7", "nb14"} {
		if !exists(filepath.Join(ls.dst, "students", "u0", n)) {
			t.Fatalf("%s deleted despite the refusal", n)
		}
	}
	ls.te.Force[ForceMaxDelete] = true
	if err := s.Apply(ctx, ls.te.Env); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(ls.dst, "students", "u0", "nb0")) {
		t.Error("forced final sync did not delete")
	}
}

func TestFinalSyncWithoutPresyncDryRunsFirst(t *testing.T) {
	ls := newLocalSync(t, "active")
	seed(t, ls.src, 5)
	for i := range 3 {
		mustWrite(t, filepath.Join(ls.dst, "students", fmt.Sprintf("extra%d", i)), "x")
	}
	fp := ls.p
	fp.Final = true
	err := Sync("id", fp).Apply(context.Background(), ls.te.Env)
	if !errors.Is(err, ErrRefused) || !exists(filepath.Join(ls.dst, "students", "extra0")) {
		t.Fatalf("err = %v; extra0 kept: %v", err, exists(filepath.Join(ls.dst, "students", "extra0")))
	}
	if real, dry := rsyncRuns(ls.r.cmds); real != 0 || dry != 1 {
		t.Errorf("rsync runs: %d real, %d dry; want the dry run only: %q", real, dry, ls.r.cmds)
	}
}

func TestFinalSyncStillGuardsDirection(t *testing.T) {
	ls := newLocalSync(t, "active")
	s := presynced(t, ls)
	ls.r.stub(t, "systemctl", `echo inactive; exit 3`)
	if err := s.Apply(context.Background(), ls.te.Env); !errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v", err)
	}
	if real, dry := rsyncRuns(ls.r.cmds); real+dry != 0 {
		t.Errorf("rsync ran after the guard refused: %q", ls.r.cmds)
	}
}

// TestSkippedDeletes reads rsync's output as the final sync does: through
// its scanner.
func TestSkippedDeletes(t *testing.T) {
	for _, tc := range []struct {
		tail []string
		n    int64
		ok   bool
	}{
		{[]string{"Deletions stopped due to --max-delete limit (2 skipped)", "rsync error: the --max-delete limit stopped deletions (code 25) at main.c(1394) [sender=3.5.0]"}, 2, true},
		{[]string{"Deletions stopped due to --max-delete limit (1,234 skipped)"}, 1234, true},
		{[]string{"rsync error: the --max-delete limit stopped deletions (code 25)"}, 0, false},
		{[]string{"Deletions stopped due to --max-delete limit (x skipped)"}, 0, false},
		{nil, 0, false},
	} {
		sc := &rsyncScanner{}
		fmt.Fprint(sc, strings.Join(tc.tail, "\n"))
		r := sc.report()
		if n, ok := r.Skipped, r.HasSkipped; n != tc.n || ok != tc.ok {
			t.Errorf("%q: %d %v, want %d %v", tc.tail, n, ok, tc.n, tc.ok)
		}
	}
}

func TestMuxCommand(t *testing.T) {
	p := SyncParams{Src: "thurst", Dst: "thermals", DstHost: "thermals.inria.fr", DstPort: 22, DstUser: "root",
		Folder: "students", Root: "/nbhosting", SrcUnit: "nbhosting-addr", MaxDelete: 1000, Mux: true}
	mp := muxPath(p)
	if !strings.HasPrefix(mp, "~/.ssh/boxswap-mux-") || len(mp) != len("~/.ssh/boxswap-mux-")+16 {
		t.Fatalf("mux path %q", mp)
	}
	ssh := "ssh -p 22 -o BatchMode=yes -o StrictHostKeyChecking=yes -o ControlPath=" + mp
	want := ssh + " -O check -- root@thermals.inria.fr >/dev/null 2>&1 || { rm -f -- " + mp + "; " +
		ssh + " -o ControlMaster=yes -o ControlPersist=900 -f -N -- root@thermals.inria.fr </dev/null >/dev/null 2>&1; }; true"
	if got := MuxCommand(p); got != want {
		t.Errorf("mux:\n got %s\nwant %s", got, want)
	}
	if got := rsyncCmd(p, ""); !strings.Contains(got, "-e '"+ssh+"'") {
		t.Errorf("rsync does not use the shared connection: %s", got)
	}
	q := p
	q.DstHost = "$(touch pwned)"
	if got := MuxCommand(q); !strings.Contains(got, `-- 'root@$(touch pwned)'`) || muxPath(q) == mp {
		t.Errorf("hostile host: %s", got)
	}
	q = p
	q.Mux = false
	if MuxCommand(q) != "" || strings.Contains(rsyncCmd(q, ""), "ControlPath") {
		t.Error("no mux asked, yet one is used")
	}
	q = p
	q.Final = true
	for _, c := range Sync("id", q).Describe().Commands {
		if strings.Contains(c, "ControlMaster=yes") {
			t.Errorf("the final sync starts a master connection: %s", c)
		}
	}
	q.Final, q.Passes = false, 3
	d := Sync("id", q).Describe()
	// After the passes, before the destination's change watch (the last).
	if n := len(d.Commands); n < 2 || d.Commands[n-2] != want || !strings.Contains(d.Commands[n-1], " start ") || !strings.Contains(d.Commands[n-1], " dst\n") {
		t.Errorf("the pre-sync does not describe its master connection after its passes: %q", d.Commands)
	}
	if !strings.Contains(d.Text, "up to 3 passes") {
		t.Errorf("text = %q", d.Text)
	}
}

func TestPresyncOfAMoveAlwaysRuns(t *testing.T) {
	f := &fakeRunner{}
	te := newEnv(map[string]boxes.Runner{"thurst": f})
	p := SyncParams{Src: "thurst", Dst: "thermals", DstHost: "h", Folder: "students", Root: "/nbhosting", SrcUnit: "u", Mux: true}
	done, why, err := Sync("redirect/sync/students", p).Check(context.Background(), te.Env)
	if done || err != nil || !strings.Contains(why, "prepares the final sync") || len(f.sent()) != 0 {
		t.Fatalf("check = %v %q %v, sent %q", done, why, err, f.sent())
	}
}
