package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"

	"boxswap/internal/safefile"
)

// SchemaVersion is the layout of the state file this boxswap writes. A file
// with a higher version is refused.
const SchemaVersion = 1

// StartPhase is the phase of a fresh state.
const StartPhase = "start"

// DefaultTimeout is how long a store waits for another process's
// transaction on the same file before giving up with ErrBusy.
const DefaultTimeout = 5 * time.Second

// MaxTail is how many lines of a step's output are kept.
const MaxTail = 20

// maxLine bounds one kept output line, so a progress bar without newlines
// cannot bloat every attempt record.
const maxLine = 512

// fileMode is that of the state and lock files: they name who ran what.
const fileMode = safefile.Mode

var (
	bucketMeta      = []byte("meta")
	bucketAttempts  = []byte("attempts")
	bucketFacts     = []byte("facts")
	bucketApprovals = []byte("approvals")
	bucketHistory   = []byte("history")
	// bucketSummaries holds a small Summary per attempt, written with it,
	// so a timeline of many attempts is read without decoding every step.
	bucketSummaries = []byte("summaries")
	allBuckets      = [][]byte{bucketMeta, bucketAttempts, bucketFacts, bucketApprovals, bucketHistory, bucketSummaries}

	keyMeta   = []byte("meta")
	keySchema = []byte("schema")
)

// Options tune a Store; the zero value is fine.
type Options struct {
	// Timeout is how long to wait for another process's transaction;
	// DefaultTimeout when zero.
	Timeout time.Duration
	// Who is written in the history events the store writes itself (Begin,
	// SetPhase) and in events and approvals that have none; Me() when empty.
	Who string
}

// Store is a boxswap state file. It holds only the path and options: each
// method opens the file for one transaction and closes it.
type Store struct {
	path    string
	timeout time.Duration
	who     string
}

// Open returns the store at path. It does no I/O: a missing file reads as
// the fresh state and is created by the first write.
func Open(path string) *Store { return OpenWith(path, Options{}) }

// OpenWith is Open with options.
func OpenWith(path string, o Options) *Store {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return &Store{path: path, timeout: o.Timeout, who: o.Who}
}

// Path is the state file's path.
func (s *Store) Path() string { return s.path }

// Meta returns the phase and cycle; Meta{Schema: SchemaVersion, Phase:
// "start"} when nothing was written yet.
func (s *Store) Meta() (Meta, error) {
	m := Meta{Schema: SchemaVersion, Phase: StartPhase}
	err := s.view(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketMeta)
		if b == nil {
			return nil
		}
		if v := b.Get(keyMeta); v != nil {
			if err := json.Unmarshal(v, &m); err != nil {
				return s.corrupt(fmt.Errorf("meta: %w", err))
			}
		}
		m.Schema, _ = strconv.Atoi(string(b.Get(keySchema)))
		return nil
	})
	return m, err
}

// Init writes the meta record, for a new cycle. Attempts, facts, approvals
// and history are kept. It records no history event.
func (s *Store) Init(m Meta) error {
	m.Schema = SchemaVersion
	if m.Phase == "" {
		m.Phase = StartPhase
	}
	if m.Changed.IsZero() {
		m.Changed = time.Now()
	}
	return s.update(func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bucketMeta), keyMeta, m) })
}

// SetPhase ends a transition: in one transaction the attempt becomes done
// (with its end time and To), the phase becomes phase, and a "done" history
// event is written. With attemptID 0 only the phase changes (an override),
// recorded as a "phase" event.
func (s *Store) SetPhase(attemptID uint64, phase string) error {
	now := time.Now()
	return s.update(func(tx *bolt.Tx) error {
		m, err := s.getMeta(tx)
		if err != nil {
			return err
		}
		was := m.Phase
		m.Phase, m.Changed = phase, now
		if err := putJSON(tx.Bucket(bucketMeta), keyMeta, m); err != nil {
			return err
		}
		if attemptID == 0 {
			return s.addEvent(tx, Event{Time: now, Kind: "phase", Detail: fmt.Sprintf("phase set to %s (was %s)", phase, was)})
		}
		a, err := s.getAttempt(tx, attemptID)
		if err != nil {
			return err
		}
		a.Status, a.Ended, a.To = Done, now, phase
		if err := s.putAttempt(tx, a); err != nil {
			return err
		}
		return s.addEvent(tx, Event{Time: now, Kind: "done",
			Detail: fmt.Sprintf("attempt %d: %s done: %s -> %s", a.ID, a.Event, a.From, phase)})
	})
}

// Begin records a new attempt before anything runs: it assigns a.ID, sets
// a.Status to running, a.Started (when zero) and the status of steps that
// have none to pending, and writes a "begin" history event.
func (s *Store) Begin(a *Attempt) (uint64, error) {
	if a == nil {
		return 0, fmt.Errorf("state %s: begin: no attempt", s.path)
	}
	rec := *a
	rec.Status = Running
	if rec.Started.IsZero() {
		rec.Started = time.Now()
	}
	rec.Steps = append([]StepRecord(nil), a.Steps...)
	for i := range rec.Steps {
		if rec.Steps[i].Status == "" {
			rec.Steps[i].Status = Pending
		}
	}
	err := s.update(func(tx *bolt.Tx) error {
		id, err := tx.Bucket(bucketAttempts).NextSequence()
		if err != nil {
			return err
		}
		rec.ID = id
		if err := s.putAttempt(tx, rec); err != nil {
			return err
		}
		detail := fmt.Sprintf("attempt %d: %s (%s) from %s, %d steps", id, rec.Event, rec.Command, rec.From, len(rec.Steps))
		return s.addEvent(tx, Event{Time: rec.Started, Kind: "begin", Detail: detail})
	})
	if err != nil {
		return 0, err
	}
	*a = rec
	return rec.ID, nil
}

// Attempt returns the attempt with that ID, or an error wrapping ErrNoAttempt.
func (s *Store) Attempt(id uint64) (*Attempt, error) {
	var a Attempt
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		a, err = s.getAttempt(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// Last returns the newest attempt, or nil when there is none.
func (s *Store) Last() (*Attempt, error) {
	var last *Attempt
	err := s.view(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketAttempts)
		if b == nil {
			return nil
		}
		k, v := b.Cursor().Last()
		if k == nil {
			return nil
		}
		a, err := s.decodeAttempt(k, v)
		last = &a
		return err
	})
	if err != nil {
		return nil, err
	}
	return last, nil
}

// Attempts returns all attempts, oldest first.
func (s *Store) Attempts() ([]Attempt, error) {
	var all []Attempt
	err := s.view(func(tx *bolt.Tx) error {
		return forEach(bucket(tx, bucketAttempts), func(k, v []byte) error {
			a, err := s.decodeAttempt(k, v)
			all = append(all, a)
			return err
		})
	})
	return all, err
}

// AttemptsFrom returns the attempts whose ID is at least id, oldest first.
func (s *Store) AttemptsFrom(id uint64) ([]Attempt, error) {
	var all []Attempt
	err := s.view(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketAttempts)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(itob(id)); k != nil; k, v = c.Next() {
			a, err := s.decodeAttempt(k, v)
			if err != nil {
				return err
			}
			all = append(all, a)
		}
		return nil
	})
	return all, err
}

// Summaries returns a Summary of every attempt, oldest first, without
// decoding their steps. An attempt written before summaries existed is
// summarized from its full record.
func (s *Store) Summaries() ([]Summary, error) {
	var all []Summary
	err := s.view(func(tx *bolt.Tx) error {
		sums := bucket(tx, bucketSummaries)
		return forEach(bucket(tx, bucketAttempts), func(k, v []byte) error {
			if sums != nil {
				if sv := sums.Get(k); sv != nil {
					var sm Summary
					if err := json.Unmarshal(sv, &sm); err != nil {
						return s.corrupt(fmt.Errorf("summary %d: %w", btoi(k), err))
					}
					all = append(all, sm)
					return nil
				}
			}
			a, err := s.decodeAttempt(k, v)
			all = append(all, summarize(a))
			return err
		})
	})
	return all, err
}

// UpdateAttempt reads the attempt, lets fn change it and writes it back, in
// one transaction. If fn returns an error nothing is written and that error
// is returned. fn cannot change the ID; tails are cut to MaxTail lines.
func (s *Store) UpdateAttempt(id uint64, fn func(*Attempt) error) error {
	return s.update(func(tx *bolt.Tx) error {
		a, err := s.getAttempt(tx, id)
		if err != nil {
			return err
		}
		if err := fn(&a); err != nil {
			return err
		}
		a.ID = id
		return s.putAttempt(tx, a)
	})
}

// UpdateStep is UpdateAttempt for the step stepID of the attempt; it returns
// an error wrapping ErrNoStep when the attempt has no such step.
func (s *Store) UpdateStep(id uint64, stepID string, fn func(*StepRecord) error) error {
	return s.UpdateAttempt(id, func(a *Attempt) error {
		for i := range a.Steps {
			if a.Steps[i].ID == stepID {
				if err := fn(&a.Steps[i]); err != nil {
					return err
				}
				a.Steps[i].ID = stepID
				return nil
			}
		}
		return fmt.Errorf("state %s: attempt %d: step %s: %w", s.path, id, stepID, ErrNoStep)
	})
}

// MarkDone records, in one transaction, that the operator did step stepID
// of the pending attempt id by hand: the step becomes done with m as its
// mark, and the history says who and why. It returns an error wrapping
// ErrNoStep when the attempt has no such step, and refuses a step already
// done.
func (s *Store) MarkDone(id uint64, stepID string, m Mark) error {
	return s.update(func(tx *bolt.Tx) error {
		a, err := s.getAttempt(tx, id)
		if err != nil {
			return err
		}
		for i := range a.Steps {
			r := &a.Steps[i]
			if r.ID != stepID {
				continue
			}
			if r.Status == Done {
				return fmt.Errorf("state %s: attempt %d: step %s is already done", s.path, id, stepID)
			}
			m.Was = r.Status
			r.Status, r.Ended, r.Marked = Done, m.When, &m
			if err := s.putAttempt(tx, a); err != nil {
				return err
			}
			return s.addEvent(tx, Event{Time: m.When, Who: m.Who, Kind: "mark-done",
				Detail: fmt.Sprintf("%s (attempt %d): step %s marked done by hand (was %s): %s", a.Event, id, stepID, m.Was, m.Reason)})
		}
		return fmt.Errorf("state %s: attempt %d: step %s: %w", s.path, id, stepID, ErrNoStep)
	})
}

// Fact returns the fact stored under key and whether there is one.
func (s *Store) Fact(key string) (string, bool, error) {
	var (
		val string
		ok  bool
	)
	err := s.view(func(tx *bolt.Tx) error {
		if b := bucket(tx, bucketFacts); b != nil {
			if v := b.Get([]byte(key)); v != nil {
				val, ok = string(v), true
			}
		}
		return nil
	})
	return val, ok, err
}

// SetFact stores value under key, replacing any older value.
func (s *Store) SetFact(key, value string) error {
	if key == "" {
		return fmt.Errorf("state %s: set fact: empty key", s.path)
	}
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFacts).Put([]byte(key), []byte(value))
	})
}

// DeleteFact removes the fact under key; a missing fact is not an error.
func (s *Store) DeleteFact(key string) error {
	if _, err := os.Stat(s.path); key == "" || errors.Is(err, fs.ErrNotExist) {
		return nil // nothing to delete; do not create the file for it
	}
	return s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketFacts).Delete([]byte(key)) })
}

// Facts returns the facts whose keys start with prefix ("" for all).
func (s *Store) Facts(prefix string) (map[string]string, error) {
	facts := map[string]string{}
	err := s.view(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketFacts)
		if b == nil {
			return nil
		}
		p := []byte(prefix)
		c := b.Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			facts[string(k)] = string(v)
		}
		return nil
	})
	return facts, err
}

// Approve records an operator's approval of a gate (When and Who default to
// now and the store's Who). It records no history event.
func (s *Store) Approve(a Approval) error {
	if a.When.IsZero() {
		a.When = time.Now()
	}
	if a.Who == "" {
		a.Who = s.me()
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketApprovals)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return putJSON(b, itob(seq), a)
	})
}

// Approvals returns all approvals, oldest first.
func (s *Store) Approvals() ([]Approval, error) {
	var all []Approval
	err := s.view(func(tx *bolt.Tx) error {
		return forEach(bucket(tx, bucketApprovals), func(k, v []byte) error {
			var a Approval
			if err := json.Unmarshal(v, &a); err != nil {
				return s.corrupt(fmt.Errorf("approval %d: %w", btoi(k), err))
			}
			all = append(all, a)
			return nil
		})
	})
	return all, err
}

// Record appends e to the history, assigning its Seq (and Time and Who when
// they are empty).
func (s *Store) Record(e Event) error {
	return s.update(func(tx *bolt.Tx) error { return s.addEvent(tx, e) })
}

// History returns all events, oldest first.
func (s *Store) History() ([]Event, error) {
	var all []Event
	err := s.view(func(tx *bolt.Tx) error {
		return forEach(bucket(tx, bucketHistory), func(k, v []byte) error {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return s.corrupt(fmt.Errorf("history event %d: %w", btoi(k), err))
			}
			all = append(all, e)
			return nil
		})
	})
	return all, err
}

// Check runs bbolt's consistency check over the whole file, read-only. A
// missing file is consistent; problems are returned wrapping ErrCorrupt.
func (s *Store) Check() error {
	// bbolt checks in a goroutine of its own, where a panic on a damaged
	// page would kill the process: load the freelist and walk every record
	// here first, where withDB turns such panics into ErrCorrupt.
	return s.viewWith(true, func(tx *bolt.Tx) error {
		if tx == nil {
			return nil
		}
		err := tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			return b.ForEach(func([]byte, []byte) error { return nil })
		})
		if err != nil {
			return s.corrupt(err)
		}
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return s.corrupt(errors.Join(errs...))
		}
		return nil
	})
}

// Verify reads the whole file once, read-only: the freelist, every page of
// every bucket, and every record boxswap decodes. Damage anywhere is
// ErrCorrupt, whichever record a verb is about to read, so that every verb
// refuses a damaged file the same way. It is Check without bbolt's own
// checker (which runs in a goroutine of its own, where a fault on a damaged
// page would kill the process): cheap enough to run before every verb. A
// missing file is fine.
func (s *Store) Verify() error {
	return s.viewWith(true, func(tx *bolt.Tx) error {
		if tx == nil {
			return nil
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if v == nil {
					return s.corrupt(fmt.Errorf("bucket %s: %q is a nested bucket", name, k))
				}
				if bytes.Equal(name, bucketFacts) || bytes.Equal(name, bucketMeta) && bytes.Equal(k, keySchema) {
					return nil // plain strings
				}
				if !json.Valid(v) {
					return s.corrupt(fmt.Errorf("bucket %s: record %x is not valid JSON", name, k))
				}
				return nil
			})
		})
	})
}

// TailLines returns the last n lines of output (n <= 0 means MaxTail), as a
// terminal would show them: of a line redrawn with carriage returns only the
// last drawing is kept, and each line is cut to a few hundred bytes.
func TailLines(output string, n int) []string {
	if n <= 0 {
		n = MaxTail
	}
	output = strings.TrimRight(output, "\r\n")
	if output == "" {
		return nil
	}
	lines := strings.Split(output, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	tail := make([]string, len(lines))
	for i, l := range lines {
		tail[i] = clipLine(l)
	}
	return tail
}

func clipLine(l string) string {
	l = strings.TrimRight(l, "\r")
	if i := strings.LastIndexByte(l, '\r'); i >= 0 {
		l = l[i+1:]
	}
	if len(l) > maxLine {
		cut := maxLine
		for cut > 0 && !utf8.RuneStart(l[cut]) {
			cut--
		}
		l = l[:cut] + "…"
	}
	return strings.ToValidUTF8(l, "\uFFFD")
}

// Me is "user@host" of this process, for history and approvals.
func Me() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = strconv.Itoa(os.Getuid())
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return name + "@" + host
}

func (s *Store) me() string {
	if s.who == "" {
		return Me()
	}
	return s.who
}

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

func (s *Store) getMeta(tx *bolt.Tx) (Meta, error) {
	m := Meta{Schema: SchemaVersion, Phase: StartPhase}
	if v := tx.Bucket(bucketMeta).Get(keyMeta); v != nil {
		if err := json.Unmarshal(v, &m); err != nil {
			return m, s.corrupt(fmt.Errorf("meta: %w", err))
		}
	}
	return m, nil
}

func (s *Store) getAttempt(tx *bolt.Tx, id uint64) (Attempt, error) {
	var v []byte
	if b := bucket(tx, bucketAttempts); b != nil {
		v = b.Get(itob(id))
	}
	if v == nil {
		return Attempt{}, fmt.Errorf("state %s: attempt %d: %w", s.path, id, ErrNoAttempt)
	}
	return s.decodeAttempt(itob(id), v)
}

func (s *Store) decodeAttempt(k, v []byte) (Attempt, error) {
	var a Attempt
	if err := json.Unmarshal(v, &a); err != nil {
		return a, s.corrupt(fmt.Errorf("attempt %d: %w", btoi(k), err))
	}
	return a, nil
}

func (s *Store) putAttempt(tx *bolt.Tx, a Attempt) error {
	for i := range a.Steps {
		t := a.Steps[i].Tail
		if len(t) > MaxTail {
			t = t[len(t)-MaxTail:]
		}
		clipped := make([]string, len(t))
		for j, l := range t {
			clipped[j] = clipLine(l)
		}
		if len(clipped) == 0 {
			clipped = nil
		}
		a.Steps[i].Tail = clipped
	}
	if err := putJSON(tx.Bucket(bucketSummaries), itob(a.ID), summarize(a)); err != nil {
		return err
	}
	return putJSON(tx.Bucket(bucketAttempts), itob(a.ID), a)
}

func (s *Store) addEvent(tx *bolt.Tx, e Event) error {
	b := tx.Bucket(bucketHistory)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	e.Seq = seq
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Who == "" {
		e.Who = s.me()
	}
	return putJSON(b, itob(seq), e)
}

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
