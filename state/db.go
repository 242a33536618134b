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
// one is found before a read-write open trips on it. Only a missing file is
// a fresh state: an empty file, a link, a FIFO or a device is refused.
func (s *Store) viewWith(freelist bool, fn func(tx *bolt.Tx) error) error {
	fi, err := safefile.Lstat(s.path)
	switch {
	case errors.Is(err, safefile.ErrNotRegular):
		return &notFileError{path: s.path, cause: err}
	case err != nil:
		return s.unusable(err)
	case fi == nil:
		return fn(nil)
	case fi.Size() == 0:
		if err := s.waitCreated(); err != nil {
			return err
		}
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

// update runs fn in a read-write transaction, creating the file and its
// buckets when needed.
func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	// Check the file read-only first: a read-write open of a damaged file
	// can write to it (bbolt rewrites a missing freelist on open) or fault
	// while loading the freelist, and a newer schema must never be written.
	if err := s.viewWith(true, func(*bolt.Tx) error { return nil }); err != nil {
		return err
	}
	return s.withDB(&bolt.Options{}, func(db *bolt.DB) error {
		tx, err := db.Begin(true)
		if err != nil {
			return s.unusable(fmt.Errorf("begin transaction: %w", err))
		}
		defer func() { _ = tx.Rollback() }() // a no-op after Commit
		if err := s.check(tx); err != nil {
			return err
		}
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
		if err := fn(tx); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return s.unusable(fmt.Errorf("commit: %w", err))
		}
		return nil
	})
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
			_ = file.Close() // releases bbolt's flock, which Open never returned
		}
		if re, ok := p.(runtime.Error); ok {
			_, fault := re.(interface{ Addr() uintptr })
			// An index out of range inside bbolt is a page pointing past
			// the file (a garbled branch); in our own code it is a bug.
			if fault || panickedIn(debug.Stack(), "go.etcd.io/bbolt.") {
				err = s.corrupt(fmt.Errorf("bbolt: %v", p))
				return
			}
		} else if msg, ok := p.(string); ok {
			// bbolt panics with a string on pages it cannot make sense of.
			err = s.corrupt(fmt.Errorf("bbolt: %s", msg))
			return
		}
		panic(p)
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
	case errors.Is(err, ErrNotAFile):
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
	for deadline := time.Now().Add(s.timeout); ; time.Sleep(10 * time.Millisecond) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return s.unusable(err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("state %s: %w: another process kept it open for over %s", s.path, ErrBusy, s.timeout)
		}
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		return nil
	}
	return &notFileError{path: s.path, cause: errors.New("the file is empty")}
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
	data, err := json.Marshal(v)
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
