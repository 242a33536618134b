package state

import (
	"errors"
	"fmt"
	"strings"

	"boxswap/internal/safefile"
)

// These errors are returned by Store methods; test for them with errors.Is.
// The errors themselves carry the file name and what to do.
var (
	// ErrNewerSchema is returned when the state file was written by a newer
	// boxswap whose schema this one does not know. The file is never written.
	ErrNewerSchema = errors.New("state written by a newer boxswap")

	// ErrCorrupt is returned when the state file is not a bbolt database,
	// is damaged (truncated, bad pages, undecodable records) or belongs to
	// something other than boxswap. The file is never written.
	ErrCorrupt = errors.New("state file corrupt")

	// ErrNotAFile is returned when the state path holds an empty file, a
	// symbolic link, a FIFO, a device or a directory: only a missing file
	// is a fresh start. Nothing is read or written through it.
	ErrNotAFile = errors.New("state is empty or not a file")

	// ErrUnsafeFile is returned when the state file or its lock has
	// another name (a hard link), another owner, or a mode that lets group
	// or others write it: nothing is read from it or written through it.
	// The error is a *safefile.UnsafeFileError, whose Hint says what to run.
	ErrUnsafeFile = safefile.ErrUnsafeFile

	// ErrUnsafeDir is returned by Lock when the state's folder may be
	// written by users other than its owner (without the sticky bit).
	ErrUnsafeDir = safefile.ErrUnsafeDir

	// ErrUnusable is returned when the state or lock file cannot be used
	// for a local reason: permission denied, a missing folder, a full or
	// read-only disk. The error says which file and what the system said.
	ErrUnusable = errors.New("cannot use the file")

	// ErrBusy is returned when another process kept the state file open for
	// writing longer than the store's timeout.
	ErrBusy = errors.New("state file busy")

	// ErrNoAttempt is returned when an attempt ID is not in the state.
	ErrNoAttempt = errors.New("no such attempt")

	// ErrNoStep is returned by UpdateStep when the attempt has no such step.
	ErrNoStep = errors.New("no such step")

	// ErrNestedPrefix is returned by a backend of prefixes (etcd) asked
	// to create a state inside or above another pair's: their keys would
	// mix. Nothing is written.
	ErrNestedPrefix = errors.New("state prefix inside or above another pair's")

	// ErrLocked is returned by Lock when another live process holds the
	// operator lock; the error is a *LockedError naming the holder.
	ErrLocked = errors.New("state is locked")
)

// newerSchemaError says which file and which schema; it is ErrNewerSchema.
type newerSchemaError struct {
	path   string
	schema int
}

func (e *newerSchemaError) Error() string {
	return fmt.Sprintf("state %s was written by a newer boxswap (schema %d > %d); use that version",
		e.path, e.schema, SchemaVersion)
}

func (e *newerSchemaError) Is(target error) bool { return target == ErrNewerSchema }

// corruptError says which file is unreadable and why; it is ErrCorrupt and
// unwraps to the cause.
type corruptError struct {
	path  string
	cause error
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("state %s is damaged or not a boxswap state: %v", e.path, e.cause)
}

// Hint says what to do, for the backend: a file is copied and restored, an
// etcd prefix restored or pushed anew.
func (e *corruptError) Hint() string {
	if e.OnEtcd() {
		return "boxswap left it untouched: restore the prefix from a backup (etcdctl snapshot), or push a good copy to a new prefix (boxswap state push)"
	}
	return "boxswap left it untouched: keep a copy of it, then restore it from a backup (moving it aside makes boxswap start over at phase start)"
}

func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

// OnEtcd reports a state on etcd (a prefix, not a file): what to do
// with it differs.
func (e *corruptError) OnEtcd() bool  { return strings.HasPrefix(e.path, "etcd") }
func (e *corruptError) Unwrap() error { return e.cause }

// notFileError says which path is not a usable state file and why; it is
// ErrNotAFile.
type notFileError struct {
	path  string
	cause error
	lock  bool // the lock file, not the state
}

func (e *notFileError) Error() string {
	cause := e.cause.Error()
	var nr *safefile.NotRegularError
	if errors.As(e.cause, &nr) {
		cause = "it is " + nr.What
	}
	if e.lock {
		return fmt.Sprintf("lock %s: not a file: %s; boxswap neither takes the lock nor writes through it: "+
			"look at it (ls -l %s), remove it, and run again", e.path, cause, e.path)
	}
	switch {
	case nr != nil && nr.What == "a symbolic link":
		return fmt.Sprintf("state %s: empty or not a file: %s; boxswap neither starts afresh on it nor writes through it: "+
			"give --state the state file itself, not a link to it", e.path, cause)
	case nr != nil:
		// A device, a folder, a FIFO: not something to remove.
		return fmt.Sprintf("state %s: empty or not a file: %s; boxswap neither starts afresh on it nor writes through it: "+
			"give --state the path of the state file (a missing one starts a new cycle)", e.path, cause)
	}
	return fmt.Sprintf("state %s: empty or not a file: %s; boxswap neither starts afresh on it nor writes through it: "+
		"give --state the state file itself, and if no transition ever ran with this one, remove it "+
		"(only a missing state file starts a new cycle)", e.path, cause)
}

func (e *notFileError) Is(target error) bool { return target == ErrNotAFile }
func (e *notFileError) Unwrap() error        { return e.cause }
