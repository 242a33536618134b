package state

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Meta returns the phase and cycle; Meta{Schema: SchemaVersion, Phase:
// "start"} when nothing was written yet.
func (s *Store) Meta() (Meta, error) {
	m := Meta{Schema: SchemaVersion, Phase: StartPhase}
	err := s.view(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketMeta)
		if b == nil {
			return nil
		}
		if v := b.Get(keyMeta); v != nil {
			if err := json.Unmarshal(v, &m); err != nil {
				return s.corrupt(fmt.Errorf("meta: %w", err))
			}
		}
		m.Schema, _ = strconv.Atoi(string(b.Get(keySchema)))
		return nil
	})
	return m, err
}

// Init writes the meta record, for a new cycle. Attempts, facts, approvals
// and history are kept. It records no history event.
func (s *Store) Init(m Meta) error {
	m = InitMeta(m)
	return s.update(func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bucketMeta), keyMeta, m) })
}

// SetPhase ends a transition: in one transaction the attempt becomes done
// (with its end time and To), the phase becomes phase, and a "done" history
// event is written. With attemptID 0 only the phase changes (an override),
// recorded as a "phase" event.
func (s *Store) SetPhase(attemptID uint64, phase Phase) error {
	now := time.Now()
	return s.update(func(tx *bolt.Tx) error {
		m, err := s.getMeta(tx)
		if err != nil {
			return err
		}
		was := m.Phase
		m.Phase, m.Changed = phase, now
		if err := putJSON(tx.Bucket(bucketMeta), keyMeta, m); err != nil {
			return err
		}
		if attemptID == 0 {
			return s.addEvent(tx, PhaseEvent(phase, was, now))
		}
		a, err := s.getAttempt(tx, attemptID)
		if err != nil {
			return err
		}
		a.Status, a.Ended, a.To = Done, now, phase
		if err := s.putAttempt(tx, a); err != nil {
			return err
		}
		return s.addEvent(tx, DoneEvent(a, now))
	})
}

func (s *Store) getMeta(tx *bolt.Tx) (Meta, error) {
	m := Meta{Schema: SchemaVersion, Phase: StartPhase}
	if v := tx.Bucket(bucketMeta).Get(keyMeta); v != nil {
		if err := json.Unmarshal(v, &m); err != nil {
			return m, s.corrupt(fmt.Errorf("meta: %w", err))
		}
	}
	return m, nil
}
