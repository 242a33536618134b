package steps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRsyncScannerReadsMessages(t *testing.T) {
	out := strings.Join([]string{
		`file has vanished: "/nbhosting/students/a/.~nb.ipynb"`,
		`file has vanished: "/nbhosting/students/b/x y"`,
		`rsync: [receiver] rename "/d/students/bob/.f.RDXrIm" -> "bob/f": Operation not permitted (1)`,
		`rsync: [sender] send_files failed to open "/s/g": Permission denied (13)`,
		`Deletions stopped due to --max-delete limit (1,204 skipped)`,
		`rsync warning: some files vanished before they could be transferred (code 24) at main.c(1338) [sender=3.2.7]`,
		`rsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1394) [sender=3.5.0]`,
	}, "\n")
	sc := &rsyncScanner{dst: "/d/students/"}
	// In pieces that split lines, as a stream does.
	for len(out) > 0 {
		n := min(7, len(out))
		if _, err := sc.Write([]byte(out[:n])); err != nil {
			t.Fatal(err)
		}
		out = out[n:]
	}
	r := sc.report()
	if r.Vanished != 2 || strings.Join(r.VanishedNames, "|") != "/nbhosting/students/a/.~nb.ipynb|/nbhosting/students/b/x y" {
		t.Errorf("vanished = %d %q", r.Vanished, r.VanishedNames)
	}
	want := `/d/students/bob/f (Operation not permitted (1))|/s/g (Permission denied (13))`
	if r.Failed != 2 || strings.Join(r.FailedNames, "|") != want {
		t.Errorf("failed = %d %q, want %s", r.Failed, r.FailedNames, want)
	}
	if !r.HasSkipped || r.Skipped != 1204 {
		t.Errorf("skipped = %v %d", r.HasSkipped, r.Skipped)
	}
	many := &rsyncScanner{}
	for i := range 25 {
		fmt.Fprintf(many, "file has vanished: \"/s/f%d\"\n", i)
	}
	if r := many.report(); r.Vanished != 25 || len(r.VanishedNames) != namedMax {
		t.Errorf("25 vanished: %d counted, %d named", r.Vanished, len(r.VanishedNames))
	}
}

// vanishing puts a big file and n small ones after it (in rsync's order)
// in the source folder, and deletes the small ones as soon as a process
// has the big one open: rsync listed them all before it transfers the
// first, and opens each only when its turn comes, so they vanish between
// its listing and their transfer, as a live tree's temporary files do.
// It returns how many times the deletion happened.
func vanishing(t *testing.T, dir string, n int) func() int {
	t.Helper()
	big := filepath.Join(dir, "zz", "a-big")
	if err := os.MkdirAll(filepath.Dir(big), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	// Long enough to copy that the poll below sees it open.
	if err := f.Truncate(256 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var victims []string
	for i := range n {
		v := filepath.Join(dir, "zz", fmt.Sprintf("tmp%03d", i))
		mustWrite(t, v, "x")
		victims = append(victims, v)
	}
	var fired atomic.Int32
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			default:
			}
			if fired.Load() == 0 && openedByAny(big) {
				for _, v := range victims {
					_ = os.Remove(v)
				}
				fired.Add(1)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
	return func() int { return int(fired.Load()) }
}

// openedByAny says whether a process of this machine has path open.
func openedByAny(path string) bool {
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && l == path {
			return true
		}
	}
	return false
}

// Files vanishing from a live source during a pre-sync pass (rsync exit
// 24) are a warning recorded with their count, not a failure; the same
// during the final sync is recorded and accepted.
func TestSyncVanishedFilesAreRecordedAndAccepted(t *testing.T) {
	for _, tc := range []struct {
		name           string
		final, counted bool
	}{{"pre-sync", false, false}, {"final", true, false}, {"final after a pre-sync, with deletions", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			ls := newLocalSync(t, "active")
			ls.p.Final, ls.p.MaxDelete = tc.final, 100
			mustWrite(t, filepath.Join(ls.src, "students", "alice", "nb.ipynb"), "{}")
			if err := os.MkdirAll(filepath.Join(ls.dst, "students"), 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.counted {
				// The final sync's one-scan path (finalApply): its first run
				// deletes nothing and says how many deletions it skipped,
				// with exit 24 rather than 25 when files also vanished.
				ls.te.facts.m[ls.p.countedKey()] = "1 passes, dry run counted 1 deletions"
				mustWrite(t, filepath.Join(ls.dst, "students", "gone"), "old")
			}
			fired := vanishing(t, filepath.Join(ls.src, "students"), 30)
			s := Sync("redirect/sync/students", ls.p)
			if err := s.Apply(context.Background(), ls.te.Env); err != nil {
				t.Fatalf("apply: %v", err)
			}
			if fired() != 1 {
				t.Fatal("the files were not deleted during the transfer")
			}
			got, ok := ls.te.facts.m["sync-vanished/redirect/sync/students"]
			if !ok || !strings.HasPrefix(got, "30 files vanished (rsync exit 24), accepted") {
				t.Errorf("recorded %q (%v); facts %v", got, ok, ls.te.facts.m)
			}
			if !strings.Contains(strings.Join(ls.te.progress, "\n"), "warning: 30 files vanished from "+filepath.Join(ls.src, "students")) {
				t.Errorf("no warning in the progress: %q", ls.te.progress)
			}
			if mustRead(t, filepath.Join(ls.dst, "students", "alice", "nb.ipynb")) != "{}" || !exists(filepath.Join(ls.dst, "students", "zz", "a-big")) {
				t.Error("the rest was not copied")
			}
			if exists(filepath.Join(ls.dst, "students", "gone")) {
				t.Error("the deletion was not done")
			}
		})
	}
}

// A file rsync cannot write on the destination (exit 23) fails the sync,
// naming it and counting.
func TestSyncPartialTransferNamesTheFiles(t *testing.T) {
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Fatalf("chattr (e2fsprogs) is needed for this test: %v", err)
	}
	ls := newLocalSync(t, "active")
	ls.p.MaxDelete = 100
	var locked []string
	for i := range 12 {
		name := fmt.Sprintf("f%02d", i)
		mustWrite(t, filepath.Join(ls.src, "students", "bob", name), "new")
		old := filepath.Join(ls.dst, "students", "bob", name)
		mustWrite(t, old, "old!")
		locked = append(locked, old)
	}
	mustWrite(t, filepath.Join(ls.src, "students", "alice", "ok"), "fine")
	// Immutable, even for root: rsync's rename onto it fails.
	if out, err := exec.Command("chattr", append([]string{"+i"}, locked...)...).CombinedOutput(); err != nil {
		t.Fatalf("chattr +i on %s: %v %s", ls.dst, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("chattr", append([]string{"-i"}, locked...)...).CombinedOutput(); err != nil {
			t.Errorf("chattr -i: %v %s", err, out)
		}
	})
	err := Sync("redirect/sync/students", ls.p).Apply(context.Background(), ls.te.Env)
	if exitCode(err) != rsyncPartial || errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "12 files of "+filepath.Join(ls.src, "students")+" were not synced from thurst to thermals: ") {
		t.Errorf("error does not count the files: %s", msg)
	}
	// The whole list and the advice are the record's (Detail), not the
	// operator's line.
	msg := Detail(err)
	for _, want := range []string{
		filepath.Join(ls.dst, "students", "bob", "f00") + " (Operation not permitted (1)); ",
		"; and 2 more]",
		"; fix them (on thurst or thermals), then run boxswap resume",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if mustRead(t, filepath.Join(ls.dst, "students", "alice", "ok")) != "fine" {
		t.Error("the other files were not copied")
	}
}
