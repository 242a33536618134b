package state

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Backend is a boxswap state: the phase, the attempts and their steps, the
// facts, the approvals, the history, and the operator lock. fsm and the CLI
// use nothing else of a state. Two backends implement it: *Store (a bbolt
// file, the default) and state/etcdstate (keys under a prefix of an etcd
// cluster, for teams). state/statetest is the suite every backend must pass.
//
// The contract, for every backend:
//
//   - A state that holds no record reads as the fresh state: Meta gives
//     phase start, cycle 0 and SchemaVersion; the lists are empty; Last is
//     nil. Whether such a state exists before the first write is the
//     backend's: a bbolt file is created by the first write; an etcd prefix
//     must have been created (etcdstate.Create, `boxswap state init`), and
//     any method on a prefix that was not returns an error wrapping
//     ErrNoState rather than starting afresh.
//   - Every write is atomic: Begin, SetPhase, MarkDone and SetStepFact
//     change several records at once, and a crash or a refused write keeps
//     all or none of them. A read sees one consistent state.
//   - IDs (attempts, approvals, history Seq) start at 1 and grow by one per
//     record; lists are returned oldest first.
//   - Tails are cut to MaxTail lines, each to a few hundred bytes, on every
//     write of an attempt.
//   - A state written by a newer schema is refused by every method with an
//     error wrapping ErrNewerSchema, one that is damaged with ErrCorrupt,
//     and neither is ever written. Verify reads the whole state and reports
//     either before a verb relies on any part of it.
//   - The lock: Lock takes the operator lock without waiting, or returns a
//     *LockedError (ErrLocked) naming its holder. While a backend can tell
//     that its holder is gone (a dead pid on this host, an expired etcd
//     lease) the next Lock takes it over and names the gone holder in
//     LockInfo.Reclaimed. A backend that fences (etcd) conditions every
//     write on the lock: a write made while this process's lock was lost
//     fails with an error wrapping ErrLockLost and writes nothing, and a
//     write made without the lock while another process holds it fails
//     with ErrLocked. bbolt does not fence: the kernel ends its flock only
//     with the process, so its holder cannot lose it while alive.
//   - No method prints or returns a credential: Path names the state as an
//     operator may read it.
type Backend interface {
	// Path names the state in messages: a file path, or an etcd URL with
	// its prefix and without credentials.
	Path() string

	// Meta returns the phase and cycle.
	Meta() (Meta, error)
	// Init writes the meta record, for a new cycle, keeping the rest. It
	// records no history event.
	Init(m Meta) error
	// SetPhase ends a transition: the attempt becomes done (with its end
	// time and To), the phase becomes phase and a "done" event is written,
	// at once. With attemptID 0 only the phase changes, recorded as a
	// "phase" event.
	SetPhase(attemptID uint64, phase Phase) error

	// Begin records a new attempt before anything runs: it assigns a.ID,
	// sets a.Status to running, a.Started (when zero) and the status of
	// steps that have none to pending, and writes a "begin" event.
	Begin(a *Attempt) (uint64, error)
	// Attempt returns the attempt with that ID, or an error wrapping
	// ErrNoAttempt.
	Attempt(id uint64) (*Attempt, error)
	// Last returns the newest attempt, or nil when there is none.
	Last() (*Attempt, error)
	// Attempts returns all attempts, oldest first.
	Attempts() ([]Attempt, error)
	// AttemptsFrom returns the attempts whose ID is at least id.
	AttemptsFrom(id uint64) ([]Attempt, error)
	// Summaries returns a Summary of every attempt, oldest first.
	Summaries() ([]Summary, error)
	// UpdateAttempt reads the attempt, lets fn change it and writes it
	// back atomically; an error from fn writes nothing and is returned. fn
	// may run more than once (a backend may retry on a concurrent write),
	// so it must only change the attempt it is given.
	UpdateAttempt(id uint64, fn func(*Attempt) error) error
	// UpdateStep is UpdateAttempt for one step; an error wrapping
	// ErrNoStep when the attempt has no such step.
	UpdateStep(id uint64, stepID string, fn func(*StepRecord) error) error
	// MarkDone records that the operator did step stepID of attempt id by
	// hand, with a "mark-done" event; a step already done is refused.
	MarkDone(id uint64, stepID string, m Mark) error

	// Fact returns the fact under key and whether there is one.
	Fact(key string) (string, bool, error)
	// SetFact stores value under key; an empty key is an error.
	SetFact(key, value string) error
	// DeleteFact removes the fact under key; a missing one is no error.
	DeleteFact(key string) error
	// Facts returns the facts whose keys start with prefix.
	Facts(prefix string) (map[string]string, error)
	// SetStepFact stores prefix+key and records key=value in the step's
	// facts, at once.
	SetStepFact(id uint64, stepID, prefix, key, value string) error

	// Approve records an approval (When and Who default to now and the
	// backend's Who). It records no history event.
	Approve(a Approval) error
	// Approvals returns all approvals, oldest first.
	Approvals() ([]Approval, error)
	// Record appends e to the history, assigning its Seq (and Time and Who
	// when empty).
	Record(e Event) error
	// History returns all events, oldest first.
	History() ([]Event, error)

	// Verify reads the whole state once and reports damage (ErrCorrupt)
	// or a newer schema (ErrNewerSchema).
	Verify() error

	// Lock takes the operator lock without waiting; see the contract.
	Lock(h Holder) (OperatorLock, error)
	// ReadLock tells who holds the lock and whether that holder is alive:
	// (nil, false, nil) when nobody does.
	ReadLock() (*Holder, bool, error)
	// ForceUnlock removes a lock whose holder this backend cannot check
	// (another host's) or that the operator knows is gone, and returns
	// that holder (nil when the lock was free). A lock the backend knows
	// to be held by a live process on this host is refused with a
	// *LockedError. The caller records who removed it and why.
	ForceUnlock() (*Holder, error)
}

// OperatorLock is a held operator lock. Keep it while the work runs, then
// Unlock it.
type OperatorLock interface {
	// Info is the lock as taken.
	Info() LockInfo
	// Unlock releases the lock; it is safe to call twice.
	Unlock() error
}

// Watcher is a Backend that can tell when the state changes, so that `log
// --follow` and `where --watch` wait for a change instead of polling.
type Watcher interface {
	// Changed returns a channel that receives after each change of the
	// state (several changes may be coalesced into one receive) and is
	// closed when ctx is done or the watch fails.
	Changed(ctx context.Context) <-chan struct{}
}

// Fencer is a Backend whose lock can be lost while its holder runs (etcd:
// a lease). Fence returns an error wrapping ErrLockLost unless this
// process still holds the lock, and nil when it holds none. fsm calls it
// before each remote command, so that a holder that was suspended past
// its lease sends nothing more to the boxes.
type Fencer interface {
	Fence() error
}

// LockInfo is what taking the lock found.
type LockInfo struct {
	// Where names the lock: the lock file, or the etcd key.
	Where string
	// Holder is this process, as recorded in the lock.
	Holder Holder
	// Reclaimed is a holder whose lock was taken over because it is gone
	// (a dead process, an expired lease), or nil.
	Reclaimed *Holder
	// Warning, when set, is something the operator should fix.
	Warning string
}

var (
	// ErrNoState is returned by a backend whose states must be created
	// (etcd) when there is none where it was told to look: a mistyped
	// prefix must not start a cycle afresh.
	ErrNoState = errors.New("no boxswap state")

	// ErrLockLost is returned by a fencing backend when this process's
	// lock was taken from it (its lease expired: a suspended laptop, a cut
	// network) before a write: nothing was written, and the process must
	// stop driving the boxes.
	ErrLockLost = errors.New("operator lock lost")

	// ErrNoAnswer is returned by a networked backend (etcd) whose store
	// did not answer in time: down, cut off, or without quorum. It is
	// also ErrUnusable. A write it reports may still have landed; the
	// next read tells.
	ErrNoAnswer = errors.New("state store did not answer")

	// ErrDenied is returned when the state store answered but refused who
	// asked: no user name, a wrong password, no permission. It is also
	// ErrUnusable.
	ErrDenied = errors.New("state store refused the credentials")
)

// NewerSchemaError is the error of a state written by schema, newer than
// SchemaVersion; it is ErrNewerSchema. For backends other than bbolt.
func NewerSchemaError(where string, schema int) error {
	return &newerSchemaError{path: where, schema: schema}
}

// CorruptError is the error of a damaged state; it is ErrCorrupt and
// unwraps to cause. For backends other than bbolt.
func CorruptError(where string, cause error) error { return &corruptError{path: where, cause: cause} }

// Info is the lock as taken.
func (l *Lockfile) Info() LockInfo {
	return LockInfo{Where: l.Path, Holder: l.Holder, Reclaimed: l.Reclaimed, Warning: l.Warning}
}

// Lock is the package's Lock on this store's file.
func (s *Store) Lock(h Holder) (OperatorLock, error) {
	l, err := Lock(s.path, h)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ReadLock is the package's ReadLock on this store's file.
func (s *Store) ReadLock() (*Holder, bool, error) { return ReadLock(s.path) }

// ForceUnlock is the package's ForceUnlock on this store's file.
func (s *Store) ForceUnlock() (*Holder, error) { return ForceUnlock(s.path) }

var _ Backend = (*Store)(nil)

// The helpers below are the record rules every backend applies the same
// way; bbolt's own methods use them too.

// InitMeta is the meta record Init writes for m: this schema, phase start
// when none, Changed now when zero.
func InitMeta(m Meta) Meta {
	m.Schema = SchemaVersion
	if m.Phase == "" {
		m.Phase = StartPhase
	}
	if m.Changed.IsZero() {
		m.Changed = time.Now()
	}
	return m
}

// NewAttempt is the record Begin writes for a: status running, Started now
// when zero, steps without a status pending; the ID is the caller's.
func NewAttempt(a Attempt) Attempt {
	rec := a
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
	return rec
}

// BeginEvent is the history event Begin writes for the attempt rec.
func BeginEvent(rec Attempt) Event {
	return Event{Time: rec.Started, Kind: "begin",
		Detail: fmt.Sprintf("attempt %d: %s (%s) from %s, %d steps", rec.ID, rec.Event, rec.Command, rec.From, len(rec.Steps))}
}

// DoneEvent is the history event SetPhase writes when attempt a is done.
func DoneEvent(a Attempt, now time.Time) Event {
	return Event{Time: now, Kind: "done",
		Detail: fmt.Sprintf("attempt %d: %s done: %s -> %s", a.ID, a.Event, a.From, a.To)}
}

// PhaseEvent is the history event SetPhase writes for an override.
func PhaseEvent(phase, was Phase, now time.Time) Event {
	return Event{Time: now, Kind: "phase", Detail: fmt.Sprintf("phase set to %s (was %s)", phase, was)}
}

// MarkDoneEvent is the history event MarkDone writes.
func MarkDoneEvent(a Attempt, stepID string, m Mark) Event {
	return Event{Time: m.When, Who: m.Who, Kind: "mark-done",
		Detail: fmt.Sprintf("%s (attempt %d): step %s marked done by hand (was %s): %s", a.Event, a.ID, stepID, m.Was, m.Reason)}
}

// ClipTails cuts each step's tail as every write of an attempt does.
func ClipTails(a *Attempt) {
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
}

// Summarize is the Summary of an attempt.
func Summarize(a Attempt) Summary { return summarize(a) }

// EditStep lets fn change the step stepID of a, as UpdateStep does for
// every backend: the step keeps its ID, and an attempt without such a
// step is an error wrapping ErrNoStep, naming the state where.
func EditStep(where string, a *Attempt, stepID string, fn func(*StepRecord) error) error {
	for i := range a.Steps {
		if a.Steps[i].ID == stepID {
			if err := fn(&a.Steps[i]); err != nil {
				return err
			}
			a.Steps[i].ID = stepID
			return nil
		}
	}
	return fmt.Errorf("state %s: attempt %d: step %s: %w", where, a.ID, stepID, ErrNoStep)
}

// MarkStep records in a that the operator did step stepID by hand, as
// MarkDone does for every backend: the step becomes done with m (its Was
// set) as its mark; a step already done is refused. It returns the mark
// as recorded, for MarkDoneEvent.
func MarkStep(where string, a *Attempt, stepID string, m Mark) (Mark, error) {
	err := EditStep(where, a, stepID, func(r *StepRecord) error {
		if r.Status == StepDone {
			return fmt.Errorf("state %s: attempt %d: step %s is already done", where, a.ID, stepID)
		}
		m.Was = r.Status
		r.Status, r.Ended, r.Marked = StepDone, m.When, &m
		return nil
	})
	return m, err
}
