package state

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// opens counts the times the file at path is opened while fn runs, as the
// kernel reports them (inotify IN_OPEN): no hook in the store. Closes are
// watched too: inotify merges an event with an identical one still unread,
// and open, close, open, close differ in turn.
func opens(t *testing.T, path string, fn func()) int {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Skipf("no inotify here: %v", err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_OPEN|unix.IN_CLOSE); err != nil {
		t.Fatal(err)
	}
	fn()
	n := 0
	buf := make([]byte, 64<<10)
	for {
		m, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= m; {
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			if mask&unix.IN_OPEN != 0 {
				n++
			}
			off += unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(buf[off+12:]))
		}
	}
}

// Issue 11, item 7: a write opens the database once (it used to open it
// read-only to check it, then read-write), and a read once; a refused
// write opens it once too and writes nothing.
func TestAWriteOpensTheDatabaseOnce(t *testing.T) {
	s := newStore(t)
	if err := s.Init(Meta{Cycle: 1}); err != nil {
		t.Fatal(err)
	}
	path := s.Path()
	if n := opens(t, path, func() {
		if err := s.SetFact("k", "v"); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("SetFact opened the file %d times, want 1", n)
	}
	if n := opens(t, path, func() {
		if _, err := s.Meta(); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("Meta opened the file %d times, want 1", n)
	}
	if v, ok, err := s.Fact("k"); err != nil || !ok || v != "v" {
		t.Errorf("Fact(k) = %q %v %v", v, ok, err)
	}

	newer := filepath.Join(t.TempDir(), "newer.db")
	if err := Open(newer).SetFact("k", "v"); err != nil {
		t.Fatal(err)
	}
	setRaw(t, newer, bucketMeta, keySchema, []byte("2"))
	sn := takeSnapshot(t, newer)
	if n := opens(t, newer, func() {
		if err := Open(newer).SetFact("k", "w"); !errors.Is(err, ErrNewerSchema) {
			t.Errorf("SetFact on a newer schema = %v, want ErrNewerSchema", err)
		}
	}); n != 1 {
		t.Errorf("a refused write opened the file %d times, want 1", n)
	}
	sn.same(t, newer)
}
