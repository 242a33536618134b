package etcdstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"boxswap/state"
)

// The keys under the prefix. Each record is a key of its own, so no single
// value grows with the history (etcd refuses requests over 1.5 MiB).
const (
	keySchema    = "m/schema" // SchemaVersion, as digits
	keyMeta      = "m/meta"   // state.Meta, JSON
	dirAttempts  = "a/"       // a/<016x id>: state.Attempt
	dirSummaries = "s/"       // s/<016x id>: state.Summary
	dirFacts     = "f/"       // f/<key>: the value, plain
	dirApprovals = "p/"       // p/<016x seq>: state.Approval
	dirHistory   = "h/"       // h/<016x seq>: state.Event
	seqPrefix    = "q/"       // q/<dir>: the last ID given in that dir
	keyLock      = "lock"     // the holder, JSON, under the holder's lease
	keyHolder    = "holder"   // the same, without lease: who held it last
	keyWrite     = "w"        // the token of the last write, to tell whether a write whose answer was lost landed
)

// maxTries bounds the retries of a write that lost a race with another
// writer (optimistic concurrency: each retry reads afresh).
const maxTries = 100

func (s *Store) key(k string) string { return s.prefix + "/" + k }

func idKey(dir string, id uint64) string { return fmt.Sprintf("%s%016x", dir, id) }

// reader reads the state at one revision: what it returns is one
// consistent state.
type reader struct {
	s    *Store
	ctx  context.Context
	rev  int64
	meta []byte // the meta record, nil when none
	mods map[string]int64
}

// view runs fn on the state as of now, after refusing a missing, newer or
// damaged state.
func (s *Store) view(fn func(r *reader) error) error {
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.cli.Get(ctx, s.key("m/"), clientv3.WithPrefix())
	if err != nil {
		return s.unreachable(err)
	}
	r := &reader{s: s, ctx: ctx, rev: resp.Header.Revision, mods: map[string]int64{}}
	var schema []byte
	r.mods[s.key(keySchema)], r.mods[s.key(keyMeta)] = 0, 0
	for _, kv := range resp.Kvs {
		r.mods[string(kv.Key)] = kv.ModRevision
		switch string(kv.Key) {
		case s.key(keySchema):
			schema = kv.Value
		case s.key(keyMeta):
			r.meta = kv.Value
		}
	}
	if err := s.checkHead(schema, r.meta); err != nil {
		return err
	}
	return fn(r)
}

// checkHead refuses a state this boxswap must not read or write.
func (s *Store) checkHead(schema, meta []byte) error {
	if schema == nil {
		if meta != nil {
			return state.CorruptError(s.where, errors.New("a meta record but no schema version"))
		}
		return fmt.Errorf("%w at %s: create one with boxswap state init --state %s, or check the prefix",
			state.ErrNoState, s.where, s.where)
	}
	n, err := strconv.Atoi(string(schema))
	if err != nil || n < 1 {
		return state.CorruptError(s.where, fmt.Errorf("schema version %q", schema))
	}
	if n > state.SchemaVersion {
		return state.NewerSchemaError(s.where, n)
	}
	if meta != nil && !json.Valid(meta) {
		return state.CorruptError(s.where, errors.New("meta record is not valid JSON"))
	}
	return nil
}

// get reads one key; nil when missing.
func (r *reader) get(k string) ([]byte, error) {
	full := r.s.key(k)
	resp, err := r.s.cli.Get(r.ctx, full, clientv3.WithRev(r.rev))
	if err != nil {
		return nil, r.s.unreachable(err)
	}
	if len(resp.Kvs) == 0 {
		r.mods[full] = 0
		return nil, nil
	}
	r.mods[full] = resp.Kvs[0].ModRevision
	return resp.Kvs[0].Value, nil
}

// list reads the keys under dir, in key order.
func (r *reader) list(dir string, opts ...clientv3.OpOption) ([]*mvccpb.KeyValue, error) {
	opts = append([]clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(r.rev)}, opts...)
	resp, err := r.s.cli.Get(r.ctx, r.s.key(dir), opts...)
	if err != nil {
		return nil, r.s.unreachable(err)
	}
	return resp.Kvs, nil
}

// listFrom reads the keys of dir from the key from on, in key order.
func (r *reader) listFrom(dir, from string) ([]*mvccpb.KeyValue, error) {
	end := clientv3.GetPrefixRangeEnd(r.s.key(dir))
	resp, err := r.s.cli.Get(r.ctx, r.s.key(from), clientv3.WithRange(end), clientv3.WithRev(r.rev))
	if err != nil {
		return nil, r.s.unreachable(err)
	}
	return resp.Kvs, nil
}

// writer is a reader that buffers writes; update commits them in one
// transaction conditioned on everything read being unchanged and on the
// operator lock.
type writer struct {
	*reader
	ops  []clientv3.Op
	puts map[string][]byte
}

func (w *writer) get(k string) ([]byte, error) {
	if v, ok := w.puts[w.s.key(k)]; ok {
		return v, nil
	}
	return w.reader.get(k)
}

func (w *writer) put(k string, v []byte) {
	w.puts[w.s.key(k)] = v
	w.ops = append(w.ops, clientv3.OpPut(w.s.key(k), string(v)))
}

func (w *writer) putJSON(k string, v any) error {
	data, err := state.Seal(v)
	if err != nil {
		return err
	}
	w.put(k, data)
	return nil
}

func (w *writer) del(k string) {
	w.puts[w.s.key(k)] = nil
	w.ops = append(w.ops, clientv3.OpDelete(w.s.key(k)))
}

// next gives the next ID of dir, as bbolt's NextSequence does.
func (w *writer) next(dir string) (uint64, error) {
	v, err := w.get(seqPrefix + dir)
	if err != nil {
		return 0, err
	}
	n := uint64(0)
	if v != nil {
		if n, err = strconv.ParseUint(string(v), 10, 64); err != nil {
			return 0, state.CorruptError(w.s.where, fmt.Errorf("sequence %s: %q", dir, v))
		}
	}
	n++
	w.put(seqPrefix+dir, []byte(strconv.FormatUint(n, 10)))
	return n, nil
}

// errConflict: another writer changed what this write read; try again.
var errConflict = errors.New("conflict")

// errLanded: an earlier try of this write, whose answer was lost, landed.
var errLanded = errors.New("landed")

// sentError is a transaction whose answer was lost (a member died, the
// connection dropped): it may or may not have been applied.
type sentError struct{ err error }

func (e *sentError) Error() string { return e.err.Error() }
func (e *sentError) Unwrap() error { return e.err }

// update runs fn and commits its writes atomically, retrying from a fresh
// read when another writer got in between. fn may run several times.
//
// A request that gets no answer (the member it went to died: the leader
// killed, say) is tried again, on the members left, until Options.Timeout
// has passed. A transaction whose answer was lost may have been applied:
// each one also writes a token of its own (keyWrite), which is read before
// trying again, so that a write is never applied twice (an event recorded
// twice, say).
func (s *Store) update(fn func(w *writer) error) error {
	if err := s.muted(); err != nil {
		return err
	}
	token := fmt.Sprintf("%d-%016x", time.Now().UnixNano(), rand.Uint64())
	deadline := time.Now().Add(s.timeout)
	sent := false // a try's answer was lost: it may land yet
	for try := 0; try < maxTries; try++ {
		err := s.view(func(r *reader) error {
			w := &writer{reader: r, puts: map[string][]byte{}}
			if sent {
				// A try whose answer was lost may have landed after
				// landed looked: then this read shows its token. Reading
				// the token also conditions this try on it (commit
				// compares every key read), so that a try landing after
				// this read fails this one instead of doubling it.
				last, err := r.get(keyWrite)
				if err != nil {
					return err
				}
				if string(last) == token {
					return errLanded
				}
			}
			if err := fn(w); err != nil {
				return err
			}
			return s.commit(w, token)
		})
		if errors.Is(err, errLanded) {
			return nil
		}
		var se *sentError
		if errors.As(err, &se) {
			sent = true
		}
		if sent && (errors.Is(err, errConflict) || errors.Is(err, state.ErrNoAnswer)) {
			// Under the lock only this process writes, one write at a
			// time: the token is there if and only if a try landed.
			landed, lerr := s.landed(token, deadline)
			if landed {
				return nil
			}
			if lerr != nil {
				return s.heard(lerr)
			}
		}
		switch {
		case errors.Is(err, errConflict):
			time.Sleep(time.Duration(rand.IntN(5*(try+1))) * time.Millisecond)
			continue
		case errors.Is(err, state.ErrNoAnswer) && time.Now().Before(deadline):
			time.Sleep(200 * time.Millisecond)
			continue
		}
		return s.heard(err)
	}
	return fmt.Errorf("state %s: %w: other writers kept changing it during %d tries", s.where, state.ErrBusy, maxTries)
}

// landed reports whether a transaction that wrote token was applied,
// asking again until deadline when the cluster does not answer (an
// unknown answer must not let the write be applied twice).
func (s *Store) landed(token string, deadline time.Time) (bool, error) {
	for {
		ctx, cancel := s.ctx()
		resp, err := s.cli.Get(ctx, s.key(keyWrite))
		cancel()
		if err == nil {
			return len(resp.Kvs) > 0 && string(resp.Kvs[0].Value) == token, nil
		}
		if time.Now().After(deadline) {
			return false, s.unreachable(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *Store) commit(w *writer, token string) error {
	if len(w.ops) == 0 {
		return nil
	}
	var cmps []clientv3.Cmp
	for k, mod := range w.mods {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", mod))
	}
	s.mu.Lock()
	held := s.held
	s.mu.Unlock()
	lockRev := int64(0)
	if held != nil {
		lockRev = held.rev
	}
	cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(s.key(keyLock)), "=", lockRev))
	ops := append(w.ops, clientv3.OpPut(s.key(keyWrite), token))
	resp, err := s.cli.Txn(w.ctx).If(cmps...).Then(ops...).Else(clientv3.OpGet(s.key(keyLock))).Commit()
	if err != nil {
		return &sentError{s.unreachable(err)}
	}
	if resp.Succeeded {
		return nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	switch {
	case held != nil && (len(kvs) == 0 || kvs[0].CreateRevision != held.rev):
		return s.lost(held, kvs)
	case held == nil && len(kvs) > 0:
		return s.lockedBy(kvs[0].Value)
	}
	return errConflict
}

// lost is the error of a write refused because this process's lock is
// gone.
func (s *Store) lost(l *lock, kvs []*mvccpb.KeyValue) error {
	now := "nobody holds it now"
	if len(kvs) > 0 {
		var h state.Holder
		if json.Unmarshal(kvs[0].Value, &h) == nil {
			now = "it is held now by " + holderText(h)
		}
	}
	return fmt.Errorf("state %s: %w: this boxswap's lease (%ds) expired — it was suspended, or cut off from etcd, for longer — "+
		"and %s; nothing was written and this run stops here: see boxswap where, and let the holder go on "+
		"(or, once it is done, run boxswap resume)", s.where, state.ErrLockLost, s.ttl, now)
}

func (s *Store) lockedBy(v []byte) error {
	le := &state.LockedError{Path: s.where + " (key " + s.key(keyLock) + ")"}
	_ = json.Unmarshal(v, &le.Holder)
	return le
}

func holderText(h state.Holder) string {
	return fmt.Sprintf("%s@%s pid %d (%s)", h.User, h.Host, h.PID, strings.TrimSpace(h.Command))
}
