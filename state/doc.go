// Package state records the progress of boxswap in a bbolt file, and holds
// the operator lock that keeps two operators from driving the boxes at once.
//
// Backend (backend.go) is the state's contract as fsm and the CLI use it,
// with its rules written out; *Store, the bbolt file, is one backend and
// state/etcdstate (a prefix of an etcd cluster, for teams) the other. Both
// pass state/statetest, the shared suite.
//
// # Basics
//
// Open(path) returns a *Store without touching the disk. Every method opens
// the bbolt file, runs one short transaction and closes it again: bbolt holds
// an exclusive flock while a file is open for writing, so keeping it open
// across a step (network I/O, reboots) would lock `where` and `log` in another
// terminal out for hours. Reads open the file read-only (a shared flock); a
// writer waits at most Options.Timeout for them, and they for it.
//
// Reading a state file that does not exist does not create it: Meta returns
// the fresh state (phase "start", cycle 0) and the lists are empty. The first
// write creates the file with the buckets meta, attempts, facts, approvals and
// history, and stores SchemaVersion.
//
// An attempt is one try at one transition. Begin records it (status running,
// its planned steps pending) before anything runs; UpdateStep and
// UpdateAttempt change it in one read-modify-write transaction each; SetPhase
// marks it done and moves the phase in the same transaction, so a crash
// leaves either the old phase with a running attempt or the new phase with a
// done one. SetStepFact stores a fact and records it with the step that
// learnt it in one transaction. Begin and SetPhase write their own history events; Init, Approve
// and the step updates do not (the caller records what it wants with Record).
//
// The operator lock is a separate file, <state>.lock, taken with Lock and
// released with Unlock. It is a flock, so the kernel releases it when its
// holder dies, and the next Lock takes it over and reports the dead holder
// in Lockfile.Reclaimed.
//
// # Caveats
//
// The store refuses, and never writes to, a file written by a newer schema
// (ErrNewerSchema) or one that is not a readable boxswap state (ErrCorrupt):
// the operator must keep a copy and restore it, not lose the record of a
// half-done upgrade. A write first opens the file read-only to check it, then
// read-write.
//
// The store does not serialise operators: two processes can both write it,
// one transaction at a time. Hold the operator lock around anything that runs
// steps (next, resume, rollback); readers need no lock.
//
// Check runs bbolt's consistency check; it walks every record first so that
// damage shows as ErrCorrupt, but bbolt checks in a goroutine of its own, so
// damage that only its checker trips on can still crash the process.
//
// Step output tails are kept to the last MaxTail lines, each cut to a few
// hundred bytes, however many the caller gives (fsm keeps that many).
//
// # Files
//
// store.go the Store and its options; meta.go the phase and cycle;
// attempts.go attempts and their steps; facts.go facts; history.go
// approvals, history and summaries; verify.go Check and Verify; db.go
// opening the file for one transaction, and refusing a damaged or newer
// one; lock.go the operator lock; records.go the records' types;
// backend.go the contract and the record rules every backend shares;
// dump.go a whole state, as state push and pull copy it.
package state
