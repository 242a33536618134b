package etcdstate

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"boxswap/state"
)

// Meta returns the phase and cycle.
func (s *Store) Meta() (state.Meta, error) {
	var m state.Meta
	err := s.view(func(r *reader) error {
		var err error
		m, err = s.decodeMeta(r.meta)
		return err
	})
	return m, err
}

func (s *Store) decodeMeta(v []byte) (state.Meta, error) {
	m := state.Meta{Phase: state.StartPhase}
	if v != nil {
		if err := json.Unmarshal(v, &m); err != nil {
			return m, state.CorruptError(s.where, fmt.Errorf("meta: %w", err))
		}
	}
	m.Schema = state.SchemaVersion
	return m, nil
}

// Init writes the meta record, keeping the rest.
func (s *Store) Init(m state.Meta) error {
	m = state.InitMeta(m)
	return s.update(func(w *writer) error { return w.putJSON(keyMeta, m) })
}

// SetPhase ends a transition, or overrides the phase (attemptID 0).
func (s *Store) SetPhase(attemptID uint64, phase state.Phase) error {
	now := time.Now()
	return s.update(func(w *writer) error {
		m, err := s.decodeMeta(w.meta)
		if err != nil {
			return err
		}
		was := m.Phase
		m.Phase, m.Changed = phase, now
		if err := w.putJSON(keyMeta, m); err != nil {
			return err
		}
		if attemptID == 0 {
			return s.addEvent(w, state.PhaseEvent(phase, was, now))
		}
		a, err := s.getAttempt(w, attemptID)
		if err != nil {
			return err
		}
		a.Status, a.Ended, a.To = state.Done, now, phase
		if err := s.putAttempt(w, a); err != nil {
			return err
		}
		return s.addEvent(w, state.DoneEvent(a, now))
	})
}

// Begin records a new attempt.
func (s *Store) Begin(a *state.Attempt) (uint64, error) {
	if a == nil {
		return 0, fmt.Errorf("state %s: begin: no attempt", s.where)
	}
	var rec state.Attempt
	err := s.update(func(w *writer) error {
		rec = state.NewAttempt(*a)
		id, err := w.next(dirAttempts)
		if err != nil {
			return err
		}
		rec.ID = id
		if err := s.putAttempt(w, rec); err != nil {
			return err
		}
		return s.addEvent(w, state.BeginEvent(rec))
	})
	if err != nil {
		return 0, err
	}
	*a = rec
	return rec.ID, nil
}

// Attempt returns the attempt with that ID.
func (s *Store) Attempt(id uint64) (*state.Attempt, error) {
	var a state.Attempt
	err := s.view(func(r *reader) error {
		var err error
		a, err = s.getAttempt(r, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

type getter interface {
	get(k string) ([]byte, error)
}

func (s *Store) getAttempt(r getter, id uint64) (state.Attempt, error) {
	var a state.Attempt
	v, err := r.get(idKey(dirAttempts, id))
	if err != nil {
		return a, err
	}
	if v == nil {
		return a, fmt.Errorf("state %s: attempt %d: %w", s.where, id, state.ErrNoAttempt)
	}
	if err := json.Unmarshal(v, &a); err != nil {
		return a, state.CorruptError(s.where, fmt.Errorf("attempt %d: %w", id, err))
	}
	return a, nil
}

func (s *Store) putAttempt(w *writer, a state.Attempt) error {
	state.ClipTails(&a)
	if err := w.putJSON(idKey(dirSummaries, a.ID), state.Summarize(a)); err != nil {
		return err
	}
	return w.putJSON(idKey(dirAttempts, a.ID), a)
}

// Last returns the newest attempt, or nil.
func (s *Store) Last() (*state.Attempt, error) {
	var last *state.Attempt
	err := s.view(func(r *reader) error {
		kvs, err := r.list(dirAttempts, clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1))
		if err != nil || len(kvs) == 0 {
			return err
		}
		all, err := s.decodeAttempts(kvs)
		if err == nil {
			last = &all[0]
		}
		return err
	})
	return last, err
}

// Attempts returns all attempts, oldest first.
func (s *Store) Attempts() ([]state.Attempt, error) { return s.AttemptsFrom(0) }

// AttemptsFrom returns the attempts whose ID is at least id.
func (s *Store) AttemptsFrom(id uint64) ([]state.Attempt, error) {
	var all []state.Attempt
	err := s.view(func(r *reader) error {
		kvs, err := r.listFrom(dirAttempts, idKey(dirAttempts, id))
		if err != nil {
			return err
		}
		all, err = s.decodeAttempts(kvs)
		return err
	})
	return all, err
}

func (s *Store) decodeAttempts(kvs []*mvccpb.KeyValue) ([]state.Attempt, error) {
	var all []state.Attempt
	for _, kv := range kvs {
		var a state.Attempt
		if err := json.Unmarshal(kv.Value, &a); err != nil {
			return nil, state.CorruptError(s.where, fmt.Errorf("record %s: %w", kv.Key, err))
		}
		all = append(all, a)
	}
	return all, nil
}

// Summaries returns a Summary of every attempt, oldest first.
func (s *Store) Summaries() ([]state.Summary, error) {
	var all []state.Summary
	err := s.view(func(r *reader) error { return listJSON(s, r, dirSummaries, &all) })
	return all, err
}

// listJSON decodes every record of dir into *out, in key order.
func listJSON[T any](s *Store, r *reader, dir string, out *[]T) error {
	kvs, err := r.list(dir)
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return state.CorruptError(s.where, fmt.Errorf("record %s: %w", kv.Key, err))
		}
		*out = append(*out, v)
	}
	return nil
}

// UpdateAttempt reads, changes and writes back the attempt atomically.
func (s *Store) UpdateAttempt(id uint64, fn func(*state.Attempt) error) error {
	return s.update(func(w *writer) error { return s.updateAttempt(w, id, fn) })
}

func (s *Store) updateAttempt(w *writer, id uint64, fn func(*state.Attempt) error) error {
	a, err := s.getAttempt(w, id)
	if err != nil {
		return err
	}
	if err := fn(&a); err != nil {
		return err
	}
	a.ID = id
	return s.putAttempt(w, a)
}

// UpdateStep is UpdateAttempt for one step.
func (s *Store) UpdateStep(id uint64, stepID string, fn func(*state.StepRecord) error) error {
	return s.update(func(w *writer) error { return s.updateStep(w, id, stepID, fn) })
}

func (s *Store) updateStep(w *writer, id uint64, stepID string, fn func(*state.StepRecord) error) error {
	return s.updateAttempt(w, id, func(a *state.Attempt) error { return state.EditStep(s.where, a, stepID, fn) })
}

// MarkDone records a step done by hand.
func (s *Store) MarkDone(id uint64, stepID string, m state.Mark) error {
	return s.update(func(w *writer) error {
		a, err := s.getAttempt(w, id)
		if err != nil {
			return err
		}
		mk, err := state.MarkStep(s.where, &a, stepID, m)
		if err != nil {
			return err
		}
		if err := s.putAttempt(w, a); err != nil {
			return err
		}
		return s.addEvent(w, state.MarkDoneEvent(a, stepID, mk))
	})
}

// Fact returns the fact under key.
func (s *Store) Fact(key string) (string, bool, error) {
	var (
		val string
		ok  bool
	)
	err := s.view(func(r *reader) error {
		v, err := r.get(dirFacts + key)
		val, ok = string(v), v != nil
		return err
	})
	return val, ok, err
}

// SetFact stores value under key.
func (s *Store) SetFact(key, value string) error {
	if key == "" {
		return fmt.Errorf("state %s: set fact: empty key", s.where)
	}
	return s.update(func(w *writer) error { w.put(dirFacts+key, []byte(value)); return nil })
}

// DeleteFact removes the fact under key.
func (s *Store) DeleteFact(key string) error {
	if key == "" {
		return nil
	}
	return s.update(func(w *writer) error {
		if v, err := w.get(dirFacts + key); err != nil || v == nil {
			return err // nothing to delete: no write
		}
		w.del(dirFacts + key)
		return nil
	})
}

// Facts returns the facts whose keys start with prefix.
func (s *Store) Facts(prefix string) (map[string]string, error) {
	facts := map[string]string{}
	err := s.view(func(r *reader) error {
		kvs, err := r.list(dirFacts + prefix)
		for _, kv := range kvs {
			facts[strings.TrimPrefix(string(kv.Key), s.key(dirFacts))] = string(kv.Value)
		}
		return err
	})
	return facts, err
}

// SetStepFact stores the fact and records it with the step, atomically.
func (s *Store) SetStepFact(id uint64, stepID, prefix, key, value string) error {
	if prefix+key == "" {
		return fmt.Errorf("state %s: set fact: empty key", s.where)
	}
	return s.update(func(w *writer) error {
		w.put(dirFacts+prefix+key, []byte(value))
		return s.updateStep(w, id, stepID, func(r *state.StepRecord) error {
			if r.Facts == nil {
				r.Facts = map[string]string{}
			}
			r.Facts[key] = value
			return nil
		})
	})
}

// Approve records an approval.
func (s *Store) Approve(a state.Approval) error {
	if a.When.IsZero() {
		a.When = time.Now()
	}
	if a.Who == "" {
		a.Who = s.me()
	}
	return s.update(func(w *writer) error {
		seq, err := w.next(dirApprovals)
		if err != nil {
			return err
		}
		return w.putJSON(idKey(dirApprovals, seq), a)
	})
}

// Approvals returns all approvals, oldest first.
func (s *Store) Approvals() ([]state.Approval, error) {
	var all []state.Approval
	err := s.view(func(r *reader) error { return listJSON(s, r, dirApprovals, &all) })
	return all, err
}

// Record appends e to the history.
func (s *Store) Record(e state.Event) error {
	return s.update(func(w *writer) error { return s.addEvent(w, e) })
}

func (s *Store) addEvent(w *writer, e state.Event) error {
	seq, err := w.next(dirHistory)
	if err != nil {
		return err
	}
	return w.putJSON(idKey(dirHistory, seq), e.Stamped(seq, s.me()))
}

// History returns all events, oldest first.
func (s *Store) History() ([]state.Event, error) {
	var all []state.Event
	err := s.view(func(r *reader) error { return listJSON(s, r, dirHistory, &all) })
	return all, err
}

// Verify reads every record once and refuses damage.
func (s *Store) Verify() error {
	return s.view(func(r *reader) error {
		kvs, err := r.list("")
		if err != nil {
			return err
		}
		inner := nestedPrefixes(s.prefix, kvs)
		if err := s.tangled(inner); err != nil {
			return err
		}
	next:
		for _, kv := range kvs {
			for _, p := range inner {
				if strings.HasPrefix(string(kv.Key), p+"/") {
					continue next // another pair's: not this state's to judge
				}
			}
			k := strings.TrimPrefix(string(kv.Key), s.prefix+"/")
			if err := s.verifyRecord(k, kv.Value); err != nil {
				return err
			}
		}
		s.warnNested(inner)
		return nil
	})
}

func (s *Store) verifyRecord(k string, v []byte) error {
	switch {
	case k == keySchema, k == keyWrite, strings.HasPrefix(k, dirFacts):
		return nil // plain strings; the schema was checked by view
	case strings.HasPrefix(k, seqPrefix):
		if _, err := strconv.ParseUint(string(v), 10, 64); err != nil {
			return state.CorruptError(s.where, fmt.Errorf("sequence %s: %q", k, v))
		}
		return nil
	case k == keyMeta, k == keyLock, k == keyHolder,
		strings.HasPrefix(k, dirAttempts), strings.HasPrefix(k, dirSummaries),
		strings.HasPrefix(k, dirApprovals), strings.HasPrefix(k, dirHistory):
		if !json.Valid(v) {
			return state.CorruptError(s.where, fmt.Errorf("record %s is not valid JSON", k))
		}
		if err := state.CheckSeal(v); err != nil {
			return state.CorruptError(s.where, fmt.Errorf("record %s: %w", k, err))
		}
		return nil
	}
	return state.CorruptError(s.where, fmt.Errorf("key %s is not one boxswap writes: another program's keys under this prefix?", k))
}
