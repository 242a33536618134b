// Package etcdstate keeps a boxswap state under a key prefix of an etcd
// cluster, for teams and for many pairs: a state.Backend that fences.
//
// # Basics
//
// Open(Options) connects (lazily); every method checks that the prefix
// holds a state, created by Create (`boxswap state init`) or Load (`state
// push`): a prefix without one is state.ErrNoState, never a fresh start.
// Each record is a key of its own (tx.go lists them), so no value grows
// with the history. A read sees one revision of the prefix. A write reads
// what it needs, then commits in one transaction conditioned on every
// record it read being unchanged and on the operator lock; a concurrent
// writer makes it start over from a fresh read (so the functions given to
// UpdateAttempt and UpdateStep may run more than once).
//
// Lock puts the key <prefix>/lock under a lease that a session keeps alive
// while the process runs, naming the holder; <prefix>/holder keeps the
// name after the lease is gone, so that the next holder is told whose lock
// it took over. While a store holds the lock, each of its writes requires
// the lock key to have the revision it was created at, and Fence checks
// the same without writing: once the lease expired (a suspended laptop, a
// cut network), both fail with state.ErrLockLost. Without the lock, a
// write requires that nobody holds it (state.ErrLocked otherwise).
//
// # Caveats
//
// A request the cluster does not answer within Options.Timeout fails with
// state.ErrNoAnswer; a write it reports may still land later (the next
// read tells, and it was conditioned on what it read). A lock holder that
// got such an error fails its later writes at once with it.
//
// A lock left by a dead process of this host is reclaimed at once (its
// lease revoked); one from another host ends with its lease (Options.TTL).
// A remote command the stale holder had sent before its lease ended keeps
// running on its box: fencing stops only what comes after it.
//
// Close the store when done; it releases a lock still held.
package etcdstate
