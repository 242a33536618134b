package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The differential test of the final sync's change list: random mutation
// sequences on a source tree, during the pre-sync and after it (and a few
// on the destination, its app writing), then the final sync; its result
// must be what a full rsync -a --delete makes of the same destination.
// BOXSWAP_DIFF_SEEDS=N runs N seeds (default a sample of 6); the lab runs
// one seed through the real final-sync step between the boxes
// (test/reliability TestFinalSyncChangesRealBoxes).

// changesSync is a local move's pre-sync and final sync of one folder with
// real rsync, python3 and inotify; HOME is a temp folder (the watches'
// state).
type changesSync struct {
	*localSync
	home string
}

func newChangesSync(t *testing.T) *changesSync {
	t.Helper()
	for _, c := range []string{"python3", "rsync", "timeout"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("%s is needed for this test: %v", c, err)
		}
	}
	ls := newLocalSync(t, "active")
	cs := &changesSync{localSync: ls, home: t.TempDir()}
	// Both boxes are this machine, with one HOME: the watches' state.
	ls.r.env = []string{"HOME=" + cs.home}
	ls.dr.env = ls.r.env
	ls.p.Mux, ls.p.Passes, ls.p.MaxDelete = true, 3, -1
	t.Cleanup(func() { cs.killWatches(t) })
	return cs
}

// killWatches ends the watchers a test left running, watching or
// lingering.
func (cs *changesSync) killWatches(t *testing.T) {
	for _, role := range []string{watchSrc, watchDst} {
		for _, pid := range []int{cs.watcher(role), cs.lingering(role)} {
			if pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// watcher is the pid of the watch of role, 0 when none runs.
func (cs *changesSync) watcher(role string) int { return cs.pidIn(role, "pid") }

// lingering is the pid of the watcher of role that answered and lingers
// with its watches (changes.py linger), 0 when none does.
func (cs *changesSync) lingering(role string) int { return cs.pidIn(role, "linger") }

func (cs *changesSync) pidIn(role, name string) int {
	st := strings.Replace(cs.p.watchState(role), "~", cs.home, 1)
	b, err := os.ReadFile(filepath.Join(st, name))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(string(b))
	return pid
}

// inotifyWatches counts the inotify watches process pid holds, -1 when it
// is gone (or a zombie).
func inotifyWatches(pid int) int {
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil || strings.Contains(string(st), ") Z ") {
		return -1
	}
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fdinfo/*", pid))
	n := 0
	for _, f := range fds {
		b, _ := os.ReadFile(f)
		n += strings.Count(string(b), "inotify wd:")
	}
	return n
}

// A watcher that answered keeps its watches for a while (their teardown
// is not in the window), and the next pre-sync's start on the box ends
// it first.
func TestFinalSyncWatcherLingersOutOfTheWindow(t *testing.T) {
	cs := newChangesSync(t)
	src, dst := presyncedWatch(t, cs)
	folders := 0
	filepath.WalkDir(src, func(_ string, d os.DirEntry, _ error) error {
		if d.IsDir() {
			folders++
		}
		return nil
	})
	pids := map[string]int{watchSrc: cs.watcher(watchSrc), watchDst: cs.watcher(watchDst)}
	os.WriteFile(filepath.Join(src, "after"), []byte("x"), 0o644)
	if err := Sync("redirect/final-sync/students", cs.final()).Apply(context.Background(), cs.te.Env); err != nil {
		t.Fatal(err)
	}
	if how := cs.fact(cs.p.changesKey()); !strings.Contains(how, "paths changed") {
		t.Fatalf("final sync: %q", how)
	}
	if d := diffTrees(treeOf(t, dst), treeOf(t, src)); len(d) > 0 {
		t.Errorf("the destination differs: %q", d)
	}
	for role, pid := range pids {
		if pid <= 0 || cs.lingering(role) != pid || cs.watcher(role) != 0 {
			t.Fatalf("%s: watcher %d, lingering %d, watching %d", role, pid, cs.lingering(role), cs.watcher(role))
		}
		if n := inotifyWatches(pid); n != folders && !(role == watchDst && n > 0) {
			t.Errorf("%s: the lingering watcher holds %d watches, want the %d folders", role, n, folders)
		}
	}
	// The next move's pre-sync (the same folder, the other way is the
	// same on one machine) ends both before it watches.
	if err := Sync("redirect/sync/students", cs.p).Apply(context.Background(), cs.te.Env); err != nil {
		t.Fatal(err)
	}
	for role, pid := range pids {
		deadline := time.Now().Add(5 * time.Second)
		for inotifyWatches(pid) >= 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := inotifyWatches(pid); n >= 0 {
			t.Errorf("%s: the lingering watcher %d still runs (%d watches) after the next start", role, pid, n)
		}
		if p := cs.watcher(role); p <= 0 || p == pid {
			t.Errorf("%s: the new watch is %d", role, p)
		}
	}
}

func (cs *changesSync) final() SyncParams {
	q := cs.p
	q.Final = true
	return q
}

func (cs *changesSync) fact(key string) string {
	v, _ := cs.te.facts.Get(key)
	return v
}

// mutator applies random changes to a tree: every kind a user or an app
// makes, in names with spaces, newlines and bytes that are not UTF-8.
type mutator struct {
	rng   *rand.Rand
	root  string
	root0 bool // running as root: chown too
	n     int
}

var oddNames = []string{"a", "b b", "new\nline", "\xff\xfe raw", "ü.txt", "-dash", "x'q\"", "*", "deep", "nb.ipynb", " lead", "trail "}

func (m *mutator) name() string {
	m.n++
	return fmt.Sprintf("%s%d", oddNames[m.rng.Intn(len(oddNames))], m.n)
}

// entries lists the tree's paths (not the root), folders and the rest.
func (m *mutator) entries() (dirs, files []string) {
	filepath.WalkDir(m.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == m.root {
			return nil
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		} else {
			files = append(files, p)
		}
		return nil
	})
	return dirs, files
}

func (m *mutator) pick(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return l[m.rng.Intn(len(l))]
}

func (m *mutator) content() []byte {
	b := make([]byte, m.rng.Intn(3000))
	m.rng.Read(b)
	return b
}

// grow makes a tree of folders and files, some of them deep.
func (m *mutator) grow(files int) {
	dirs := []string{m.root}
	for range files {
		d := dirs[m.rng.Intn(len(dirs))]
		if m.rng.Intn(4) == 0 {
			nd := filepath.Join(d, m.name())
			if err := os.Mkdir(nd, 0o755); err == nil {
				dirs = append(dirs, nd)
				d = nd
			}
		}
		os.WriteFile(filepath.Join(d, m.name()), m.content(), 0o644)
	}
}

// step makes one random change; errors (a path gone meanwhile) are part
// of the game: the source is live.
func (m *mutator) step() { m.change(m.rng.Intn(16)) }

// liveKinds are the changes made while a pre-sync pass runs: none removes
// a path (rsync would stop at a file vanished under it, exit 24).
var liveKinds = []int{0, 1, 2, 3, 8, 9, 12, 13, 14}

func (m *mutator) liveStep() { m.change(liveKinds[m.rng.Intn(len(liveKinds))]) }

func (m *mutator) change(kind int) {
	dirs, files := m.entries()
	all := append(append([]string{}, dirs...), files...)
	d := m.pick(append(dirs, m.root))
	f := m.pick(files)
	switch kind {
	case 0, 1:
		os.WriteFile(filepath.Join(d, m.name()), m.content(), 0o644)
	case 2:
		if f != "" {
			fh, err := os.OpenFile(f, os.O_WRONLY|os.O_APPEND, 0)
			if err == nil {
				fh.Write(m.content())
				fh.Close()
			}
		}
	case 3:
		os.Truncate(f, int64(m.rng.Intn(10)))
	case 4:
		os.Remove(f)
	case 5: // rename a file, maybe to another folder
		os.Rename(f, filepath.Join(m.pick(append(dirs, m.root)), m.name()))
	case 6: // rename a folder, maybe into another one
		if x := m.pick(dirs); x != "" {
			os.Rename(x, filepath.Join(m.pick(append(dirs, m.root)), m.name()))
		}
	case 7:
		if x := m.pick(dirs); x != "" {
			os.RemoveAll(x)
		}
	case 8:
		os.Chmod(m.pick(all), os.FileMode([]int{0o600, 0o640, 0o755, 0o700, 0o444}[m.rng.Intn(5)]))
	case 9:
		if m.root0 {
			os.Lchown(m.pick(all), 1000+m.rng.Intn(3), 1000+m.rng.Intn(3))
		}
	case 10: // a file becomes a folder
		if f != "" && os.Remove(f) == nil && os.Mkdir(f, 0o755) == nil {
			os.WriteFile(filepath.Join(f, m.name()), m.content(), 0o644)
		}
	case 11: // a folder becomes a file
		if x := m.pick(dirs); x != "" && os.RemoveAll(x) == nil {
			os.WriteFile(x, m.content(), 0o644)
		}
	case 12: // a deep new path
		p := d
		for range 3 + m.rng.Intn(6) {
			p = filepath.Join(p, m.name())
		}
		if os.MkdirAll(p, 0o755) == nil {
			os.WriteFile(filepath.Join(p, m.name()), m.content(), 0o644)
		}
	case 13: // only the modification time
		tm := time.Unix(1600000000+int64(m.rng.Intn(1e8)), 0)
		os.Chtimes(m.pick(all), tm, tm)
	case 14:
		os.Symlink(m.pick([]string{"../x", "/nonexistent/boxswap-test-target", "nowhere", m.name()}), filepath.Join(d, m.name()))
	case 15: // a folder moves away and comes back (A, B, A)
		if x := m.pick(dirs); x != "" {
			tmp := filepath.Join(m.root, m.name())
			if os.Rename(x, tmp) == nil {
				os.WriteFile(filepath.Join(tmp, m.name()), m.content(), 0o644)
				os.Rename(tmp, x)
			}
		}
	}
}

// treeOf describes a tree for comparison: per path, its type, mode,
// owner, size, modification time and content or link target.
func treeOf(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		v := fmt.Sprintf("mode %o uid %d gid %d", st.Mode, st.Uid, st.Gid)
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += fmt.Sprintf(" size %d mtime %d.%09d content %x", st.Size, st.Mtim.Sec, st.Mtim.Nsec, b)
		case syscall.S_IFLNK:
			l, _ := os.Readlink(p)
			v += " -> " + l
		case syscall.S_IFDIR:
			// rsync leaves a folder's time alone within the same second.
			v += fmt.Sprintf(" mtime %d", st.Mtim.Sec)
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffTrees(got, want map[string]string) []string {
	var d []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			d = append(d, fmt.Sprintf("missing %q: %.80s", k, w))
		} else if g != w {
			d = append(d, fmt.Sprintf("differs %q: %.80s, want %.80s", k, g, w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("extra %q", k))
		}
	}
	return d
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", "--", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}
}

// fullRsync is the reference: rsync -a --delete of src over dst.
func fullRsync(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("rsync", "-a", "--delete", "--", src+"/", dst+"/").CombinedOutput(); err != nil {
		t.Fatalf("reference rsync: %v: %s", err, out)
	}
}

func diffSeeds() []int64 {
	n, err := strconv.Atoi(os.Getenv("BOXSWAP_DIFF_SEEDS"))
	if err != nil || n <= 0 {
		n = 6
	}
	seeds := make([]int64, n)
	for i := range seeds {
		seeds[i] = int64(i + 1)
	}
	return seeds
}

func TestFinalSyncChangesDifferential(t *testing.T) {
	for _, seed := range diffSeeds() {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) { differential(t, seed) })
	}
}

func differential(t *testing.T, seed int64) {
	ctx := context.Background()
	cs := newChangesSync(t)
	src := filepath.Join(cs.src, "students")
	dst := filepath.Join(cs.dst, "students")
	rng := rand.New(rand.NewSource(seed))
	m := &mutator{rng: rng, root: src, root0: os.Geteuid() == 0}
	os.MkdirAll(src, 0o755)
	m.grow(300)
	// A first copy, as the last cycle left: the pre-sync is a delta.
	os.MkdirAll(dst, 0o755)
	fullRsync(t, src, dst)
	m.grow(50)

	// Changes during the pre-sync itself, from another goroutine.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		live := &mutator{rng: rand.New(rand.NewSource(seed * 1000)), root: src, root0: m.root0, n: 100000}
		for {
			select {
			case <-stop:
				return
			default:
			}
			live.liveStep()
			time.Sleep(time.Millisecond)
		}
	}()
	err := Sync("redirect/sync/students", cs.p).Apply(ctx, cs.te.Env)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	for range 40 + rng.Intn(80) {
		m.step()
	}
	// The destination's app writes too, before the window.
	dm := &mutator{rng: rand.New(rand.NewSource(seed * 7)), root: dst, root0: m.root0, n: 200000}
	for range 1 + rng.Intn(5) {
		dm.step()
	}

	ref := filepath.Join(t.TempDir(), "ref")
	copyTree(t, dst, ref)
	if err := Sync("redirect/final-sync/students", cs.final()).Apply(ctx, cs.te.Env); err != nil {
		t.Fatalf("%v\n%s", err, cs.te.out["thurst"])
	}
	how := cs.fact(cs.p.changesKey())
	if !strings.Contains(how, "paths changed") {
		var errs []string
		for _, l := range strings.Split(cs.te.out["thurst"].String(), "\n") {
			if strings.Contains(l, "rsync") || strings.Contains(l, "vanished") || strings.Contains(l, "failed") {
				errs = append(errs, l)
			}
		}
		t.Fatalf("the final sync did not use the change list: %q\n%s", how, strings.Join(errs, "\n"))
	}
	fullRsync(t, src, ref)
	if d := diffTrees(treeOf(t, dst), treeOf(t, ref)); len(d) > 0 {
		list, _ := os.ReadFile(filepath.Join(strings.Replace(cs.p.watchState(watchSrc), "~", cs.home, 1), "list"))
		t.Fatalf("seed %d: after the final sync (%s), the destination differs from a full rsync's in %d paths:\n%s\nthe list: %q",
			seed, how, len(d), strings.Join(d[:min(len(d), 20)], "\n"), list)
	}
	if n := cs.fact(cs.p.fullScansKey()); n != "" {
		t.Errorf("full scans counted: %s", n)
	}
}

// presyncedWatch runs a pre-sync of a small tree and returns the folders.
func presyncedWatch(t *testing.T, cs *changesSync) (src, dst string) {
	t.Helper()
	src = filepath.Join(cs.src, "students")
	dst = filepath.Join(cs.dst, "students")
	m := &mutator{rng: rand.New(rand.NewSource(9)), root: src}
	os.MkdirAll(src, 0o755)
	os.MkdirAll(cs.dst, 0o755)
	m.grow(100)
	if err := Sync("redirect/sync/students", cs.p).Apply(context.Background(), cs.te.Env); err != nil {
		t.Fatal(err)
	}
	return src, dst
}

// fullScan runs the final sync, which must fall back to the full scan
// saying why (want), count it, and leave the destination as the source.
func fullScan(t *testing.T, cs *changesSync, src, dst, want string, count int) {
	t.Helper()
	if err := Sync("redirect/final-sync/students", cs.final()).Apply(context.Background(), cs.te.Env); err != nil {
		t.Fatalf("%v\n%s", err, cs.te.out["thurst"])
	}
	how := cs.fact(cs.p.changesKey())
	if !strings.HasPrefix(how, "full scan: ") || !strings.Contains(how, want) {
		t.Errorf("final sync: %q, want a full scan because %q", how, want)
	}
	if n := cs.fact(cs.p.fullScansKey()); n != strconv.Itoa(count) {
		t.Errorf("full scans counted: %q, want %d", n, count)
	}
	if !slices.ContainsFunc(cs.te.progress, func(l string) bool { return strings.HasPrefix(l, "final sync of students: full scan: ") }) {
		t.Errorf("the operator was not told: %q", cs.te.progress)
	}
	if d := diffTrees(treeOf(t, dst), treeOf(t, src)); len(d) > 0 {
		t.Errorf("after a full scan the destination differs: %q", d)
	}
}

func TestFinalSyncChangesFallBack(t *testing.T) {
	t.Run("watch died", func(t *testing.T) {
		cs := newChangesSync(t)
		src, dst := presyncedWatch(t, cs)
		os.WriteFile(filepath.Join(src, "after"), []byte("x"), 0o644)
		syscall.Kill(cs.watcher(watchSrc), syscall.SIGKILL)
		fullScan(t, cs, src, dst, "no watch is running", 1)
	})
	t.Run("events dropped", func(t *testing.T) {
		cs := newChangesSync(t)
		src, dst := presyncedWatch(t, cs)
		// A stopped watcher reads nothing: more events than the kernel
		// queues overflow it.
		pid := cs.watcher(watchSrc)
		syscall.Kill(pid, syscall.SIGSTOP)
		q, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
		n, _ := strconv.Atoi(strings.TrimSpace(string(q)))
		if err != nil || n == 0 || n > 1<<20 {
			t.Fatalf("max_queued_events: %q %v", q, err)
		}
		for i := range n + 10 { // two files: the kernel merges repeated events
			os.WriteFile(filepath.Join(src, "busy"+strconv.Itoa(i%2)), []byte(strconv.Itoa(i)), 0o644)
		}
		syscall.Kill(pid, syscall.SIGCONT)
		fullScan(t, cs, src, dst, "the kernel dropped events", 1)
	})
	t.Run("replaced watch", func(t *testing.T) {
		cs := newChangesSync(t)
		src, dst := presyncedWatch(t, cs)
		// Another pre-sync's watch (a token this cycle did not record).
		cs.te.facts.Set(cs.p.watchKey(), "src="+newToken()+" dst="+newToken())
		fullScan(t, cs, src, dst, "not the one the pre-sync started", 1)
	})
	t.Run("no watch fact", func(t *testing.T) {
		cs := newChangesSync(t)
		src, dst := presyncedWatch(t, cs)
		cs.te.facts.Delete(cs.p.watchKey())
		fullScan(t, cs, src, dst, "left no change watch", 1)
	})
	t.Run("hostile fact", func(t *testing.T) {
		cs := newChangesSync(t)
		src, dst := presyncedWatch(t, cs)
		cs.te.facts.Set(cs.p.watchKey(), "src=$(touch${IFS}pwned) dst=x")
		fullScan(t, cs, src, dst, "did not draw", 1)
	})
	t.Run("hard links", func(t *testing.T) {
		cs := newChangesSync(t)
		src := filepath.Join(cs.src, "students")
		os.MkdirAll(src, 0o755)
		os.MkdirAll(cs.dst, 0o755)
		os.WriteFile(filepath.Join(src, "a"), []byte("a"), 0o644)
		os.Link(filepath.Join(src, "a"), filepath.Join(src, "b"))
		if err := Sync("redirect/sync/students", cs.p).Apply(context.Background(), cs.te.Env); err != nil {
			t.Fatal(err)
		}
		fullScan(t, cs, src, filepath.Join(cs.dst, "students"), "hard links", 1)
	})
	t.Run("resume after a crash in the final sync", func(t *testing.T) {
		cs := newChangesSync(t)
		src, dst := presyncedWatch(t, cs)
		final := Sync("redirect/final-sync/students", cs.final())
		if err := final.Apply(context.Background(), cs.te.Env); err != nil {
			t.Fatal(err)
		}
		if how := cs.fact(cs.p.changesKey()); !strings.Contains(how, "paths changed") {
			t.Fatalf("first run: %q", how)
		}
		// The run is repeated (boxswap stopped before recording it done):
		// the list was taken, the watch ended; what changed since is only
		// found by a scan.
		os.WriteFile(filepath.Join(src, "later"), []byte("x"), 0o644)
		fullScan(t, cs, src, dst, "took its list before", 1)
	})
}

// The guards hold on the fast path as on the full one: max_delete counts
// the listed deletions (refused with nothing deleted, then forced), and a
// source that does not hold production is refused before any watch is
// asked.
func TestFinalSyncChangesGuards(t *testing.T) {
	ctx := context.Background()
	cs := newChangesSync(t)
	cs.p.MaxDelete = 2
	src, dst := presyncedWatch(t, cs)
	_, files := (&mutator{root: src}).entries()
	for _, f := range files[:5] {
		os.Remove(f)
	}
	os.WriteFile(filepath.Join(src, "new"), []byte("n"), 0o644)
	final := Sync("redirect/final-sync/students", cs.final())
	err := final.Apply(ctx, cs.te.Env)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "more than max_delete (2)") {
		t.Fatalf("5 deletions with max_delete 2: %v", err)
	}
	if how := cs.fact(cs.p.changesKey()); !strings.Contains(how, "paths changed") {
		t.Errorf("not the fast path: %q", how)
	}
	for _, f := range files[:5] {
		rel, _ := filepath.Rel(src, f)
		if !exists(filepath.Join(dst, rel)) {
			t.Errorf("refused, yet %q was deleted", rel)
		}
	}
	if !exists(filepath.Join(dst, "new")) {
		t.Error("the no-deletion run did not transfer")
	}

	// Forced, from a new pre-sync (the refused run took the list).
	cs2 := newChangesSync(t)
	cs2.p.MaxDelete = 2
	src2, dst2 := presyncedWatch(t, cs2)
	_, files = (&mutator{root: src2}).entries()
	for _, f := range files[:5] {
		os.Remove(f)
	}
	cs2.te.Force[ForceMaxDelete] = true
	if err := Sync("redirect/final-sync/students", cs2.final()).Apply(ctx, cs2.te.Env); err != nil {
		t.Fatal(err)
	}
	if how := cs2.fact(cs2.p.changesKey()); !strings.Contains(how, "paths changed") {
		t.Errorf("not the fast path: %q", how)
	}
	if d := diffTrees(treeOf(t, dst2), treeOf(t, src2)); len(d) > 0 {
		t.Errorf("forced: %q", d)
	}

	// Within max_delete: deleted, capped.
	cs3 := newChangesSync(t)
	cs3.p.MaxDelete = 2
	src3, dst3 := presyncedWatch(t, cs3)
	_, files = (&mutator{root: src3}).entries()
	os.Remove(files[0])
	if err := Sync("redirect/final-sync/students", cs3.final()).Apply(ctx, cs3.te.Env); err != nil {
		t.Fatal(err)
	}
	if d := diffTrees(treeOf(t, dst3), treeOf(t, src3)); len(d) > 0 {
		t.Errorf("one deletion: %q", d)
	}

	// Wrong direction: refused before the watches are asked.
	cs4 := newChangesSync(t)
	presyncedWatch(t, cs4)
	cs4.r.stub(t, "systemctl", `echo inactive; exit 3`)
	cs4.r.mu.Lock()
	cs4.r.cmds = nil
	cs4.r.mu.Unlock()
	err = Sync("redirect/final-sync/students", cs4.final()).Apply(ctx, cs4.te.Env)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "wrong direction") {
		t.Fatalf("wrong direction: %v", err)
	}
	for _, c := range cs4.r.cmds {
		if strings.Contains(c, "rsync") || strings.Contains(c, "/ctl") {
			t.Errorf("sent after the refusal: %s", c)
		}
	}
	if cs4.watcher(watchSrc) == 0 {
		t.Error("the refused sync stopped the watch")
	}
}
