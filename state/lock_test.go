package state

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func statePath(t testing.TB) string { return filepath.Join(t.TempDir(), "boxswap.db") }

func sameHolder(a, b Holder) bool {
	return a.User == b.User && a.Host == b.Host && a.PID == b.PID && a.Command == b.Command && a.Since.Equal(b.Since)
}

func TestLockRefusesSecondHolder(t *testing.T) {
	path := statePath(t)
	alice := Holder{User: "alice", Host: "laptop", PID: 4242, Command: "boxswap next",
		Since: time.Date(2024, 5, 1, 10, 42, 7, 0, time.Local)}
	l, err := Lock(path, alice)
	if err != nil {
		t.Fatal(err)
	}
	if l.Reclaimed != nil || l.Path != path+".lock" {
		t.Errorf("first lock: %+v", l)
	}

	// Same process, separate open file description: still refused.
	_, err = Lock(path, CurrentHolder("boxswap resume"))
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock = %v, want ErrLocked", err)
	}
	var le *LockedError
	if !errors.As(err, &le) || !sameHolder(le.Holder, alice) {
		t.Fatalf("second Lock = %#v, want the holder %+v", err, alice)
	}
	want := "state is locked by alice@laptop pid 4242 (boxswap next) since 2024-05-01 10:42:07; " +
		"wait for it (" + path + ".lock)"
	if err.Error() != want {
		t.Errorf("message\n%s\nwant\n%s", err, want)
	}

	h, live, err := ReadLock(path)
	if err != nil || !live || h == nil || !sameHolder(*h, alice) {
		t.Errorf("ReadLock while held = %+v, %v, %v", h, live, err)
	}

	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Errorf("second Unlock = %v", err)
	}
	if _, err := os.Stat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Unlock left the lock file: %v", err)
	}
	if h, live, err := ReadLock(path); h != nil || live || err != nil {
		t.Errorf("ReadLock after Unlock = %+v, %v, %v", h, live, err)
	}
	l2, err := Lock(path, CurrentHolder("boxswap resume"))
	if err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
	defer l2.Unlock()
	if l2.Reclaimed != nil {
		t.Errorf("a cleanly released lock reported as reclaimed: %+v", l2.Reclaimed)
	}
}

// A lock held by another process names it; once the kernel has released
// the lock of the killed process, Lock takes it over and says whose it was.
func TestLockHeldByKilledProcessIsReclaimed(t *testing.T) {
	path := statePath(t)
	c := startChild(t, "lock", path)
	pid, _ := strconv.Atoi(c.ready)
	if pid != c.cmd.Process.Pid {
		t.Fatalf("child says pid %q, is %d", c.ready, c.cmd.Process.Pid)
	}

	_, err := Lock(path, CurrentHolder("boxswap rollback"))
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock while the child holds it = %v", err)
	}
	if le.Holder.PID != pid || le.Holder.Command != "boxswap next" || le.Holder.User == "" || le.Holder.Host == "" {
		t.Errorf("holder = %+v, want the child pid %d", le.Holder, pid)
	}
	if h, live, err := ReadLock(path); err != nil || !live || h == nil || h.PID != pid {
		t.Errorf("ReadLock while the child holds it = %+v, %v, %v", h, live, err)
	}

	c.kill(t)
	if h, live, err := ReadLock(path); err != nil || live || h == nil || h.PID != pid {
		t.Errorf("ReadLock after the child died = %+v, %v, %v; want its holder, not live", h, live, err)
	}
	me := CurrentHolder("boxswap rollback")
	l, err := Lock(path, me)
	if err != nil {
		t.Fatalf("Lock after the holder died: %v", err)
	}
	defer l.Unlock()
	if l.Reclaimed == nil || l.Reclaimed.PID != pid || l.Reclaimed.Command != "boxswap next" {
		t.Errorf("Reclaimed = %+v, want the dead child %d", l.Reclaimed, pid)
	}
	// The file now names us.
	data, err := os.ReadFile(l.Path)
	if err != nil {
		t.Fatal(err)
	}
	var h Holder
	if err := json.Unmarshal(data, &h); err != nil || !sameHolder(h, me) {
		t.Errorf("lock file holds %s (%v), want %+v", data, err, me)
	}
}

func TestLockLeftoverFiles(t *testing.T) {
	_, here := splitMe(Me())
	for _, tc := range []struct {
		name      string
		content   string
		reclaimed bool
	}{
		{"dead holder", `{"user":"bob","host":"` + here + `","pid":99999,"command":"boxswap next","since":"2024-05-01T10:42:07Z"}`, true},
		{"empty", "", false},
		{"garbage", "\x00\x01not json", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := statePath(t)
			writeFile(t, path+".lock", []byte(tc.content))
			h, live, err := ReadLock(path)
			if err != nil || live || (h != nil) != tc.reclaimed {
				t.Errorf("ReadLock = %+v, %v, %v", h, live, err)
			}
			l, err := Lock(path, CurrentHolder("boxswap next"))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Unlock()
			if (l.Reclaimed != nil) != tc.reclaimed || (tc.reclaimed && (l.Reclaimed.PID != 99999 || l.Reclaimed.User != "bob")) {
				t.Errorf("Reclaimed = %+v", l.Reclaimed)
			}
			if h, live, err := ReadLock(path); err != nil || !live || h == nil || h.PID != os.Getpid() {
				t.Errorf("ReadLock after Lock = %+v, %v, %v", h, live, err)
			}
		})
	}
}

// Many lockers racing, with Unlock removing the file under them: never two
// holders at once, and every locker gets its turn.
func TestLockMutualExclusion(t *testing.T) {
	path := statePath(t)
	const lockers, turns = 8, 10
	var (
		inside atomic.Int32
		wg     sync.WaitGroup
		errs   = make(chan error, lockers)
	)
	for i := range lockers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for got := 0; got < turns; {
				l, err := Lock(path, Holder{User: "t", Host: "h", PID: i + 1, Command: "test"})
				if errors.Is(err, ErrLocked) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				if n := inside.Add(1); n != 1 {
					errs <- errors.New(strconv.Itoa(int(n)) + " holders at once")
				}
				if l.Reclaimed != nil {
					errs <- errors.New("reclaimed a lock nobody died holding: pid " + strconv.Itoa(l.Reclaimed.PID))
				}
				// Let the others open, and maybe flock, the file we are about
				// to remove.
				_, _, _ = ReadLock(path)
				inside.Add(-1)
				if err := l.Unlock(); err != nil {
					errs <- err
					return
				}
				got++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The holder unlocks (removing the file) just after another Lock opened it,
// and a third takes the new file: the second must not think it holds the
// lock through the removed file.
func TestLockOnRemovedFileIsRetried(t *testing.T) {
	path := statePath(t)
	a, err := Lock(path, Holder{User: "a", PID: 1})
	if err != nil {
		t.Fatal(err)
	}
	var c *Lockfile
	fired := false
	opened := func() {
		if fired {
			return
		}
		fired = true
		if err := a.Unlock(); err != nil {
			t.Error(err)
		}
		var err error
		if c, err = Lock(path, Holder{User: "c", PID: 3}); err != nil {
			t.Error(err)
		}
	}
	b, err := lock(path, Holder{User: "b", PID: 2}, opened)
	if c == nil {
		t.Fatal("third Lock failed")
	}
	defer c.Unlock()
	var le *LockedError
	if !errors.As(err, &le) || le.Holder.PID != 3 {
		if b != nil {
			b.Unlock()
		}
		t.Fatalf("second Lock = %v, %v; want refused, naming the third", b, err)
	}
}

func BenchmarkLockUnlock(b *testing.B) {
	path := statePath(b)
	for b.Loop() {
		l, err := Lock(path, CurrentHolder("bench"))
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Unlock(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLockRefused measures how long an operator waits to be told the
// lock is held.
func BenchmarkLockRefused(b *testing.B) {
	path := statePath(b)
	l, err := Lock(path, CurrentHolder("bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Unlock()
	for b.Loop() {
		if _, err := Lock(path, CurrentHolder("bench")); !errors.Is(err, ErrLocked) {
			b.Fatal(err)
		}
	}
}

// Issue 10, item 1: `echo keep > victim; ln -s victim boxswap.db.lock;
// boxswap rollback` truncated victim and wrote the holder into it. A link,
// a FIFO or a directory at the lock's name is refused and left as it is.
func TestLockRefusesLinksAndSpecialFiles(t *testing.T) {
	for _, kind := range []string{"link", "dangling link", "fifo", "directory"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			statePath := filepath.Join(dir, "boxswap.db")
			lockPath := LockPath(statePath)
			victim := filepath.Join(dir, "victim")
			switch kind {
			case "link":
				if err := os.WriteFile(victim, []byte("keep\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(victim, lockPath); err != nil {
					t.Fatal(err)
				}
			case "dangling link":
				if err := os.Symlink(victim, lockPath); err != nil {
					t.Fatal(err)
				}
			case "fifo":
				if err := syscall.Mkfifo(lockPath, 0o600); err != nil {
					t.Fatal(err)
				}
			case "directory":
				if err := os.Mkdir(lockPath, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := os.Lstat(lockPath)
			l, err := Lock(statePath, CurrentHolder("boxswap rollback"))
			if err == nil {
				_ = l.Unlock()
				t.Fatalf("Lock took a lock through %s", kind)
			}
			if !errors.Is(err, ErrNotAFile) || !strings.Contains(err.Error(), lockPath) {
				t.Errorf("Lock: %v; want ErrNotAFile naming %s", err, lockPath)
			}
			if _, _, err := ReadLock(statePath); !errors.Is(err, ErrNotAFile) {
				t.Errorf("ReadLock: %v; want ErrNotAFile", err)
			}
			after, err := os.Lstat(lockPath)
			if err != nil || after.Mode() != before.Mode() {
				t.Errorf("the %s at the lock's name was changed: %v, %v", kind, after, err)
			}
			switch kind {
			case "link":
				if data, _ := os.ReadFile(victim); string(data) != "keep\n" {
					t.Errorf("victim now holds %q", data)
				}
			case "dangling link":
				if _, err := os.Lstat(victim); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the link's target was created: %v", err)
				}
			}
		})
	}
}

// Issue 10, item 1: the lock file is 0600, and a folder anyone may write in
// is refused (with the sticky bit, as /tmp, taken with a warning).
func TestLockFileModeAndFolder(t *testing.T) {
	dir := t.TempDir()
	statePath := filepath.Join(dir, "boxswap.db")
	l, err := Lock(statePath, CurrentHolder("test"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(l.Path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("lock file mode %v, want 0600", perm)
	}
	if l.Warning != "" {
		t.Errorf("warning in a private folder: %s", l.Warning)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}

	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(statePath, CurrentHolder("test")); !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), "chmod o-w "+dir) {
		t.Errorf("Lock in a world-writable folder: %v; want ErrUnsafeDir with the fix", err)
	}
	if _, err := os.Lstat(LockPath(statePath)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a lock file was created in the unsafe folder: %v", err)
	}

	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	l, err = Lock(statePath, CurrentHolder("test"))
	if err != nil {
		t.Fatalf("Lock in a sticky world-writable folder: %v", err)
	}
	defer l.Unlock()
	if !strings.Contains(l.Warning, dir) {
		t.Errorf("no warning naming %s: %q", dir, l.Warning)
	}
}

// Issue 10, item 6: a lock left by a process on another host is never
// reclaimed (its pid means nothing here); Lock names the holder, and
// ForceUnlock removes it, returning who held it. A live local holder is not
// removed even then.
func TestLockOfAnotherHostIsNotReclaimed(t *testing.T) {
	path := statePath(t)
	other := `{"user":"bob","host":"elsewhere.example","pid":4242,"command":"boxswap next","since":"2024-05-01T10:42:07Z"}`
	writeFile(t, path+".lock", []byte(other))
	_, err := Lock(path, CurrentHolder("boxswap rollback"))
	var le *LockedError
	if !errors.As(err, &le) || !le.OtherHost || le.Holder.Host != "elsewhere.example" || !strings.Contains(err.Error(), "another host") {
		t.Fatalf("Lock over another host's lock: %v", err)
	}
	if data, _ := os.ReadFile(path + ".lock"); string(data) != other {
		t.Errorf("the lock file was changed: %q", data)
	}
	h, err := ForceUnlock(path)
	if err != nil || h == nil || h.Host != "elsewhere.example" || h.PID != 4242 {
		t.Fatalf("ForceUnlock = %+v, %v", h, err)
	}
	if _, err := os.Lstat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left: %v", err)
	}
	l, err := Lock(path, CurrentHolder("boxswap rollback"))
	if err != nil {
		t.Fatalf("Lock after ForceUnlock: %v", err)
	}
	defer l.Unlock()
	if _, err := ForceUnlock(path); !errors.Is(err, ErrLocked) {
		t.Errorf("ForceUnlock of a live local lock: %v, want ErrLocked", err)
	}
	if _, err := os.Lstat(path + ".lock"); err != nil {
		t.Errorf("a live lock was removed: %v", err)
	}
}
