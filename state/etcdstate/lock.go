package etcdstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"boxswap/state"
)

// lock is a held operator lock: the key <prefix>/lock, created under a
// lease that a session keeps alive while the process runs. rev is the
// key's create revision: every write of the store is conditioned on the
// key still having it, so a holder whose lease expired (and whose key etcd
// deleted) cannot write, even if another took the lock since.
type lock struct {
	s    *Store
	sess *concurrency.Session
	rev  int64
	info state.LockInfo
	once sync.Once
	err  error
}

// Info is the lock as taken.
func (l *lock) Info() state.LockInfo { return l.info }

// Lease is the lock's lease (for tests that end it as an expiry would).
func (l *lock) Lease() clientv3.LeaseID { return l.sess.Lease() }

// Done is closed when the lease is lost or the lock released.
func (l *lock) Done() <-chan struct{} { return l.sess.Done() }

// Unlock deletes the lock key, if still ours, and ends the lease.
func (l *lock) Unlock() error {
	l.once.Do(func() {
		s := l.s
		s.mu.Lock()
		if s.held == l {
			s.held = nil
		}
		mute := s.mute
		s.mu.Unlock()
		if mute != nil {
			// The cluster did not answer: do not wait on it again. The
			// lease ends by itself; a dead holder of this host is taken
			// over at once.
			l.sess.Orphan()
			return
		}
		ctx, cancel := s.ctx()
		defer cancel()
		// Forget the holder only if the lock is still ours: a lock that
		// was taken over names the one who took it.
		_, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(s.key(keyLock)), "=", l.rev)).
			Then(clientv3.OpDelete(s.key(keyLock)), clientv3.OpDelete(s.key(keyHolder))).Commit()
		if err != nil {
			l.err = fmt.Errorf("unlock %s: %w", s.where, s.unreachable(err))
		}
		_ = l.sess.Close() // revokes the lease
	})
	return l.err
}

// Lock takes the operator lock without waiting. A holder that is gone (its
// lease expired without an Unlock) is named in Reclaimed.
func (s *Store) Lock(h state.Holder) (state.OperatorLock, error) {
	if err := s.view(func(*reader) error { return nil }); err != nil {
		return nil, err // no state, newer, damaged: no lock either
	}
	sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(s.ttl))
	if err != nil {
		return nil, s.unreachable(err)
	}
	l, err := s.take(sess, h)
	var le *state.LockedError
	if errors.As(err, &le) && s.reclaimDead(le.Holder) {
		l, err = s.take(sess, h) // the dead holder's lease is gone
	}
	if err != nil {
		_ = sess.Close()
		return nil, err
	}
	s.mu.Lock()
	s.held = l
	s.mu.Unlock()
	return l, nil
}

func (s *Store) take(sess *concurrency.Session, h state.Holder) (*lock, error) {
	data, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	prev, err := s.cli.Get(ctx, s.key(keyHolder))
	if err != nil {
		return nil, s.unreachable(err)
	}
	holderMod := int64(0)
	if len(prev.Kvs) > 0 {
		holderMod = prev.Kvs[0].ModRevision
	}
	resp, err := s.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.CreateRevision(s.key(keyLock)), "=", 0),
		clientv3.Compare(clientv3.ModRevision(s.key(keyHolder)), "=", holderMod),
	).Then(
		clientv3.OpPut(s.key(keyLock), string(data), clientv3.WithLease(sess.Lease())),
		clientv3.OpPut(s.key(keyHolder), string(data)),
	).Else(clientv3.OpGet(s.key(keyLock))).Commit()
	if err != nil {
		return nil, s.unreachable(err)
	}
	if !resp.Succeeded {
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			return nil, s.lockedBy(kvs[0].Value)
		}
		return nil, fmt.Errorf("state %s: %w: another boxswap took the lock at the same moment; try again", s.where, state.ErrLocked)
	}
	l := &lock{s: s, sess: sess, rev: resp.Header.Revision,
		info: state.LockInfo{Where: s.where + " (key " + s.key(keyLock) + ")", Holder: h}}
	if len(prev.Kvs) > 0 {
		var gone state.Holder
		if json.Unmarshal(prev.Kvs[0].Value, &gone) == nil {
			l.info.Reclaimed = &gone
		}
	}
	return l, nil
}

// reclaimDead ends the lease of a holder that ran on this host and whose
// process is gone (it died without unlocking, or could not reach etcd to
// unlock), as bbolt's lock is reclaimed from a dead process, instead of
// making the next operator wait out its lease. A holder on another host
// is left to its lease.
func (s *Store) reclaimDead(h state.Holder) bool {
	if h.PID == 0 || h.Host != state.CurrentHolder("").Host || pidRuns(h.PID) {
		return false
	}
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.cli.Get(ctx, s.key(keyLock))
	if err != nil || len(resp.Kvs) == 0 || resp.Kvs[0].Lease == 0 {
		return err == nil
	}
	var now state.Holder
	if json.Unmarshal(resp.Kvs[0].Value, &now) != nil || now.PID != h.PID || now.Host != h.Host {
		return false // taken by someone else meanwhile
	}
	_, err = s.cli.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	return err == nil
}

// ReadLock tells who holds the lock: alive while its lease lasts; a holder
// whose lease expired without unlocking is returned as not alive.
func (s *Store) ReadLock() (*state.Holder, bool, error) {
	var (
		h     *state.Holder
		alive bool
	)
	err := s.view(func(r *reader) error {
		for _, k := range []string{keyLock, keyHolder} {
			v, err := r.get(k)
			if err != nil {
				return err
			}
			if v == nil {
				continue
			}
			var got state.Holder
			if err := json.Unmarshal(v, &got); err != nil {
				return state.CorruptError(s.where, fmt.Errorf("record %s: %w", k, err))
			}
			h, alive = &got, k == keyLock
			return nil
		}
		return nil
	})
	return h, alive, err
}

// ForceUnlock ends the lock of a holder the operator knows is gone: its
// lease is revoked, so that if it still runs its next write is refused
// (ErrLockLost). A holder on this host whose pid runs is refused.
func (s *Store) ForceUnlock() (*state.Holder, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	h, alive, err := s.ReadLock()
	if err != nil || h == nil {
		return nil, err
	}
	if alive && h.Host == state.CurrentHolder("").Host && pidRuns(h.PID) {
		return nil, &state.LockedError{Holder: *h, Path: s.where + " (key " + s.key(keyLock) + ")"}
	}
	resp, err := s.cli.Get(ctx, s.key(keyLock))
	if err != nil {
		return nil, s.unreachable(err)
	}
	if len(resp.Kvs) > 0 && resp.Kvs[0].Lease != 0 {
		if _, err := s.cli.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
			return nil, s.unreachable(err)
		}
	}
	if _, err := s.cli.Delete(ctx, s.key(keyHolder)); err != nil {
		return nil, s.unreachable(err)
	}
	return h, nil
}

func pidRuns(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

var _ state.Fencer = (*Store)(nil)

// Fence checks, with a linearizable transaction, that the lock this store
// took is still ours: ErrLockLost otherwise. Without a lock it is nil.
func (s *Store) Fence() error {
	s.mu.Lock()
	l := s.held
	s.mu.Unlock()
	if l == nil {
		return nil
	}
	if err := s.muted(); err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	// Read-only: tried again on the members left until the timeout.
	var (
		resp *clientv3.TxnResponse
		err  error
	)
	for {
		resp, err = s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(s.key(keyLock)), "=", l.rev)).
			Else(clientv3.OpGet(s.key(keyLock))).Commit()
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return s.heard(s.unreachable(err))
	}
	if !resp.Succeeded {
		return s.lost(l, resp.Responses[0].GetResponseRange().Kvs)
	}
	return nil
}
