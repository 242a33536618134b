package state

import (
	"time"

	"boxswap/internal/safefile"
)

// SchemaVersion is the layout of the state file this boxswap writes. A file
// with a higher version is refused.
const SchemaVersion = 1

// Phase is the machine's state as the state file records it (fsm names
// them: start, dev-upgraded, ...; fsm.ReadMeta refuses one it does not
// know).
type Phase string

// StartPhase is the phase of a fresh state.
const StartPhase Phase = "start"

// DefaultTimeout is how long a store waits for another process's
// transaction on the same file before giving up with ErrBusy.
const DefaultTimeout = 5 * time.Second

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
