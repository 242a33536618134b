package etcdstate

import (
	"context"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"boxswap/state"
)

// Pair is one state found under a root prefix: what `boxswap pairs`
// lists.
type Pair struct {
	Prefix string      `json:"prefix"`
	Phase  state.Phase `json:"phase"`
	Cycle  int         `json:"cycle"`
	// Event, Status and Step are the last attempt's, when it is not done:
	// the transition pending and its first step not done.
	Event  string       `json:"event,omitempty"`
	Status state.Status `json:"status,omitempty"`
	Step   string       `json:"step,omitempty"`
	// Holder holds the lock; Alive is false for a holder that went away
	// without unlocking.
	Holder *state.Holder `json:"holder,omitempty"`
	Alive  bool          `json:"alive"`
	// Changed is the last change recorded (the phase, or the last
	// attempt's start or end).
	Changed time.Time `json:"changed"`
	// Error is why this state could not be read (newer, damaged).
	Error string `json:"error,omitempty"`
}

// Pairs lists the states under this store's prefix, taken as a root: each
// prefix below it holding a schema record is one pair's state.
func (s *Store) Pairs() ([]Pair, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	suffix := "/" + keySchema
	resp, err := s.cli.Get(ctx, s.prefix+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, s.unreachable(err)
	}
	var pairs []Pair
	for _, kv := range resp.Kvs {
		k := string(kv.Key)
		if !strings.HasSuffix(k, suffix) {
			continue
		}
		p := strings.TrimSuffix(k, suffix)
		sub := &Store{cli: s.cli, prefix: p, where: strings.TrimSuffix(s.where, s.prefix) + p, ttl: s.ttl, timeout: s.timeout}
		pairs = append(pairs, sub.pair())
	}
	return pairs, nil
}

func (s *Store) pair() Pair {
	p := Pair{Prefix: s.prefix}
	fail := func(err error) Pair { p.Error = err.Error(); return p }
	m, err := s.Meta()
	if err != nil {
		return fail(err)
	}
	p.Phase, p.Cycle, p.Changed = m.Phase, m.Cycle, m.Changed
	last, err := s.Last()
	if err != nil {
		return fail(err)
	}
	if last != nil {
		p.Changed = latest(p.Changed, last.Started, last.Ended)
		if last.Status != state.Done && last.Status != state.RolledBack {
			p.Event, p.Status = string(last.Event), last.Status
			for _, st := range last.Steps {
				if st.Status != state.StepDone {
					p.Step = st.ID
					break
				}
			}
		}
	}
	if p.Holder, p.Alive, err = s.ReadLock(); err != nil {
		return fail(err)
	}
	return p
}

func latest(ts ...time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t.After(l) {
			l = t
		}
	}
	return l
}

var _ state.Watcher = (*Store)(nil)

// Changed watches the prefix: a receive after each change (coalesced),
// closed when ctx is done or the watch fails.
func (s *Store) Changed(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	wc := s.cli.Watch(clientv3.WithRequireLeader(ctx), s.prefix+"/", clientv3.WithPrefix())
	go func() {
		defer close(out)
		for resp := range wc {
			if resp.Err() != nil || resp.Canceled {
				return
			}
			select {
			case out <- struct{}{}:
			default: // one pending receive tells of them all
			}
		}
	}()
	return out
}
