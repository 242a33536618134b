package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"

	"boxswap/internal/safefile"
)

// view runs fn in a read-only transaction. A missing file is the fresh
// state: fn gets a nil tx and the file is not created.
func (s *Store) view(fn func(tx *bolt.Tx) error) error { return s.viewWith(false, fn) }

// viewWith is view, loading bbolt's freelist when asked so that a damaged
// one is found as ErrCorrupt.
func (s *Store) viewWith(freelist bool, fn func(tx *bolt.Tx) error) error {
	exists, err := s.present()
	if err != nil {
		return err
	}
	if !exists {
		return fn(nil)
	}
	return s.withDB(&bolt.Options{ReadOnly: true, PreLoadFreelist: freelist}, func(db *bolt.DB) error {
		return db.View(func(tx *bolt.Tx) error {
			if err := s.check(tx); err != nil {
				return err
			}
			return fn(tx)
		})
	})
}

// present tells whether the file is there. Only a missing file is a fresh
// state: an empty file, a link, a FIFO or a device is refused.
func (s *Store) present() (bool, error) {
	fi, err := safefile.Lstat(s.path)
	switch {
	case errors.Is(err, safefile.ErrNotRegular):
		return false, &notFileError{path: s.path, cause: err}
	case err != nil:
		return false, s.unusable(err)
	case fi == nil:
		return false, nil
	}
	if err := safefile.Mine(s.path, fi); err != nil {
		return false, fmt.Errorf("state %w", err)
	}
	switch {
	case fi.Size() == 0:
		if err := s.waitCreated(); err != nil {
			return false, err
		}
	}
	return true, nil
}

// update runs fn in a read-write transaction, creating the file and its
// buckets when needed: one open of the file, nothing written before the
// checks pass. bbolt's read-write open loads the freelist (a damaged one
// faults, which withDB turns into ErrCorrupt) and would rewrite a missing
// one at once: NoFreelistSync keeps the open from writing, and is turned
// off again before the transaction so that its commit stores the freelist
// as every write does. The transaction then refuses a truncated file, a
// newer schema or another program's database (check) before fn runs.
func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	if _, err := s.present(); err != nil {
		return err
	}
	return s.withDB(&bolt.Options{NoFreelistSync: true}, func(db *bolt.DB) error {
		db.NoFreelistSync = false
		tx, err := db.Begin(true)
		if err != nil {
			return s.unusable(fmt.Errorf("begin transaction: %w", err))
		}
		defer func() { _ = tx.Rollback() }() // a no-op after Commit
		if err := s.check(tx); err != nil {
			return err
		}
		if err := s.prepare(tx); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return s.unusable(fmt.Errorf("commit: %w", err))
		}
		return nil
	})
}

// prepare creates the buckets and the schema version of a new file.
func (s *Store) prepare(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("state %s: create bucket %s: %w", s.path, name, err)
		}
	}
	if tx.Bucket(bucketMeta).Get(keySchema) == nil {
		if err := tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(SchemaVersion))); err != nil {
			return fmt.Errorf("state %s: write schema version: %w", s.path, err)
		}
	}
	return nil
}

// withDB opens the file for the span of fn. Damage that makes bbolt fault
// on the mapped file or panic becomes ErrCorrupt instead of a crash.
func (s *Store) withDB(opts *bolt.Options, fn func(*bolt.DB) error) (err error) {
	var (
		file *os.File // what bbolt opened, to close if Open itself panics
		db   *bolt.DB
	)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if db == nil && file != nil {
			// Open never returned: release bbolt's flock ourselves. Closing
			// the file is not enough, the mapping Open made keeps the file,
			// and so its lock (exclusive for a write), until it is unmapped.
			_ = unix.Flock(int(file.Fd()), unix.LOCK_UN)
			_ = file.Close()
		}
		if err = s.damaged(p); err == nil {
			panic(p)
		}
	}()
	opts.Timeout = s.timeout
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		// Never through a link, never a FIFO or a device; created anew
		// (O_EXCL, 0600) when missing.
		var f *os.File
		var err error
		if flag&os.O_CREATE != 0 {
			f, _, err = safefile.OpenOrCreate(name, flag, perm)
		} else {
			f, err = safefile.Open(name, flag)
		}
		if errors.Is(err, safefile.ErrNotRegular) {
			return nil, &notFileError{path: s.path, cause: err}
		}
		if errors.Is(err, safefile.ErrUnsafeFile) {
			return nil, fmt.Errorf("state %w", err)
		}
		if err == nil {
			if err = s.flock(f, lockHow(opts.ReadOnly)); err != nil {
				_ = f.Close()
				return nil, err
			}
		}
		file = f
		return f, err
	}
	db, err = bolt.Open(s.path, fileMode, opts)
	if err != nil {
		return s.openError(err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("state %s: close: %w", s.path, cerr)
		}
	}()
	return fn(db)
}

func lockHow(readOnly bool) int {
	if readOnly {
		return unix.LOCK_SH
	}
	return unix.LOCK_EX
}

// damaged returns ErrCorrupt for a panic recovered while bbolt read the
// file, nil for a panic that is a bug of ours.
func (s *Store) damaged(p any) error {
	if re, ok := p.(runtime.Error); ok {
		_, fault := re.(interface{ Addr() uintptr })
		// An index out of range inside bbolt is a page pointing past
		// the file (a garbled branch); in our own code it is a bug.
		if fault || panickedIn(debug.Stack(), "go.etcd.io/bbolt.") {
			return s.corrupt(fmt.Errorf("bbolt: %v", p))
		}
	} else if msg, ok := p.(string); ok {
		// bbolt panics with a string on pages it cannot make sense of.
		return s.corrupt(fmt.Errorf("bbolt: %s", msg))
	}
	return nil
}

// panickedIn reports whether the function that panicked, as a recovering
// deferred call's stack shows it, is in the package of prefix.
func panickedIn(stack []byte, prefix string) bool {
	lines := strings.Split(string(stack), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "panic(") && i+2 < len(lines) {
			return strings.HasPrefix(lines[i+2], prefix)
		}
	}
	return false
}

func (s *Store) openError(err error) error {
	var pe *fs.PathError
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("state %s: %w: another process kept it open for over %s; try again, "+
			"and if it stays busy look for a stuck boxswap", s.path, ErrBusy, s.timeout)
	case errors.Is(err, ErrNotAFile), errors.Is(err, ErrUnsafeFile):
		return err
	case errors.As(err, &pe):
		return s.unusable(err)
	default:
		// bbolt's own open errors (invalid, checksum, version mismatch, bad
		// page size) all mean the file is not a database it can read.
		return s.corrupt(err)
	}
}

// check refuses a file this boxswap must not read or write: truncated, of a
// newer schema, or some other program's bbolt database.
func (s *Store) check(tx *bolt.Tx) error {
	fi, err := os.Stat(s.path)
	if err != nil {
		return s.unusable(err)
	}
	if tx.Size() > fi.Size() {
		return s.corrupt(fmt.Errorf("file is %d bytes but its pages need %d: truncated", fi.Size(), tx.Size()))
	}
	m := tx.Bucket(bucketMeta)
	if m == nil {
		if k, _ := tx.Cursor().First(); k != nil {
			return s.corrupt(fmt.Errorf("bucket %q but no %q bucket: another program's database", k, bucketMeta))
		}
		return nil // created by bbolt, nothing written yet
	}
	v := m.Get(keySchema)
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 1 {
		return s.corrupt(fmt.Errorf("schema version %q", v))
	}
	if n > SchemaVersion {
		return &newerSchemaError{path: s.path, schema: n}
	}
	// Every operation needs the phase to make sense of the rest; a damaged
	// meta record refuses them all rather than letting a write paper over it.
	if v := m.Get(keyMeta); v != nil && !json.Valid(v) {
		return s.corrupt(errors.New("meta record is not valid JSON"))
	}
	return nil
}

// waitCreated waits for a process creating the state file (bbolt holds an
// exclusive flock while it writes the first pages) and refuses the file if
// it is still empty then: an empty file is not a fresh start.
func (s *Store) waitCreated() error {
	f, err := safefile.Open(s.path, os.O_RDONLY)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed meanwhile: the caller finds it missing or new
	}
	if err != nil {
		return &notFileError{path: s.path, cause: err}
	}
	defer f.Close()
	if err := s.flock(f, unix.LOCK_SH); errors.Is(err, berrors.ErrTimeout) {
		return fmt.Errorf("state %s: %w: another process kept it open for over %s", s.path, ErrBusy, s.timeout)
	} else if err != nil {
		return err
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		return nil
	}
	return &notFileError{path: s.path, cause: errors.New("the file is empty")}
}

// flock takes f's flock (how: LOCK_SH or LOCK_EX) within the store's
// timeout, or returns bbolt's ErrTimeout. It tries every millisecond where
// bbolt's own flock tries every 50: a writer holds the lock for most of
// its short transactions, and one writing in a loop leaves a reader only
// the moments between two of them. bbolt's flock of the same file then
// succeeds at once.
func (s *Store) flock(f *os.File, how int) error {
	for deadline := time.Now().Add(s.timeout); ; time.Sleep(time.Millisecond) {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR):
			return s.unusable(err)
		case time.Now().After(deadline):
			return berrors.ErrTimeout
		}
	}
}

// unusable wraps a local failure to use the file (permission, missing
// folder, disk full) as ErrUnusable.
func (s *Store) unusable(err error) error {
	return fmt.Errorf("state %s: %w: %w", s.path, ErrUnusable, err)
}

func (s *Store) corrupt(cause error) error { return &corruptError{path: s.path, cause: cause} }

// bucket is tx.Bucket that accepts the nil tx of a missing file.
func bucket(tx *bolt.Tx, name []byte) *bolt.Bucket {
	if tx == nil {
		return nil
	}
	return tx.Bucket(name)
}

func forEach(b *bolt.Bucket, fn func(k, v []byte) error) error {
	if b == nil {
		return nil
	}
	return b.ForEach(fn)
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := Seal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

func itob(n uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, n)
	return b
}

func btoi(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
