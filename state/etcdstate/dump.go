package etcdstate

import (
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"

	"boxswap/state"
)

// loadBatch bounds the operations of one transaction (etcd's default
// --max-txn-ops is 128).
const loadBatch = 100

var _ state.Loader = (*Store)(nil)

// Load writes d under the prefix, which must hold nothing, or only the
// fresh state `state init` made. The schema record is written last: until
// then the prefix reads as no state (ErrNoState), never as a partial one.
func (s *Store) Load(d *state.Dump) error {
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.cli.Get(ctx, s.key(""), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return s.unreachable(err)
	}
	if err := s.checkNesting(ctx); err != nil {
		return err
	}
	for _, kv := range resp.Kvs {
		if string(kv.Key) != s.key(keySchema) {
			return fmt.Errorf("state %s: the prefix holds a state with records (%s); state push writes only to a new prefix "+
				"or one that state init just created", s.where, kv.Key)
		}
	}
	if len(resp.Kvs) > 0 {
		// Held back until the copy is whole; nothing else is there.
		if _, err := s.cli.Delete(ctx, s.key(keySchema)); err != nil {
			return s.unreachable(err)
		}
	}
	ops, err := s.loadOps(d)
	if err != nil {
		return err
	}
	for len(ops) > 0 {
		n := min(len(ops), loadBatch)
		if _, err := s.cli.Txn(ctx).Then(ops[:n]...).Commit(); err != nil {
			return s.unreachable(err)
		}
		ops = ops[n:]
	}
	created, err := s.putSchema(ctx)
	if err == nil && !created {
		return fmt.Errorf("state %s: another boxswap created a state here during the copy; check it with boxswap where", s.where)
	}
	return err
}

func (s *Store) loadOps(d *state.Dump) ([]clientv3.Op, error) {
	var ops []clientv3.Op
	put := func(k string, v any) error {
		data, err := state.Seal(v)
		ops = append(ops, clientv3.OpPut(s.key(k), string(data)))
		return err
	}
	m := d.Meta
	m.Schema = state.SchemaVersion
	if err := put(keyMeta, m); err != nil {
		return nil, err
	}
	var lastAttempt, lastEvent uint64
	for _, a := range d.Attempts {
		state.ClipTails(&a)
		if err := put(idKey(dirSummaries, a.ID), state.Summarize(a)); err != nil {
			return nil, err
		}
		if err := put(idKey(dirAttempts, a.ID), a); err != nil {
			return nil, err
		}
		lastAttempt = max(lastAttempt, a.ID)
	}
	for k, v := range d.Facts {
		ops = append(ops, clientv3.OpPut(s.key(dirFacts+k), v))
	}
	for i, a := range d.Approvals {
		if err := put(idKey(dirApprovals, uint64(i+1)), a); err != nil {
			return nil, err
		}
	}
	for _, e := range d.History {
		if err := put(idKey(dirHistory, e.Seq), e); err != nil {
			return nil, err
		}
		lastEvent = max(lastEvent, e.Seq)
	}
	for dir, n := range map[string]uint64{dirAttempts: lastAttempt, dirApprovals: uint64(len(d.Approvals)), dirHistory: lastEvent} {
		ops = append(ops, clientv3.OpPut(s.key(seqPrefix+dir), strconv.FormatUint(n, 10)))
	}
	return ops, nil
}
