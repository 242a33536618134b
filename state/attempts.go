package state

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// MaxTail is how many lines of a step's output are kept.
const MaxTail = 20

// maxLine bounds one kept output line, so a progress bar without newlines
// cannot bloat every attempt record.
const maxLine = 512

// Begin records a new attempt before anything runs: it assigns a.ID, sets
// a.Status to running, a.Started (when zero) and the status of steps that
// have none to pending, and writes a "begin" history event.
func (s *Store) Begin(a *Attempt) (uint64, error) {
	if a == nil {
		return 0, fmt.Errorf("state %s: begin: no attempt", s.path)
	}
	rec := NewAttempt(*a)
	err := s.update(func(tx *bolt.Tx) error {
		id, err := tx.Bucket(bucketAttempts).NextSequence()
		if err != nil {
			return err
		}
		rec.ID = id
		if err := s.putAttempt(tx, rec); err != nil {
			return err
		}
		return s.addEvent(tx, BeginEvent(rec))
	})
	if err != nil {
		return 0, err
	}
	*a = rec
	return rec.ID, nil
}

// Attempt returns the attempt with that ID, or an error wrapping ErrNoAttempt.
func (s *Store) Attempt(id uint64) (*Attempt, error) {
	var a Attempt
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		a, err = s.getAttempt(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// Last returns the newest attempt, or nil when there is none.
func (s *Store) Last() (*Attempt, error) {
	var last *Attempt
	err := s.view(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketAttempts)
		if b == nil {
			return nil
		}
		k, v := b.Cursor().Last()
		if k == nil {
			return nil
		}
		a, err := s.decodeAttempt(k, v)
		last = &a
		return err
	})
	if err != nil {
		return nil, err
	}
	return last, nil
}

// Attempts returns all attempts, oldest first.
func (s *Store) Attempts() ([]Attempt, error) {
	var all []Attempt
	err := s.view(func(tx *bolt.Tx) error {
		return forEach(bucket(tx, bucketAttempts), func(k, v []byte) error {
			a, err := s.decodeAttempt(k, v)
			all = append(all, a)
			return err
		})
	})
	return all, err
}

// AttemptsFrom returns the attempts whose ID is at least id, oldest first.
func (s *Store) AttemptsFrom(id uint64) ([]Attempt, error) {
	var all []Attempt
	err := s.view(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketAttempts)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(itob(id)); k != nil; k, v = c.Next() {
			a, err := s.decodeAttempt(k, v)
			if err != nil {
				return err
			}
			all = append(all, a)
		}
		return nil
	})
	return all, err
}

// UpdateAttempt reads the attempt, lets fn change it and writes it back, in
// one transaction. If fn returns an error nothing is written and that error
// is returned. fn cannot change the ID; tails are cut to MaxTail lines.
func (s *Store) UpdateAttempt(id uint64, fn func(*Attempt) error) error {
	return s.update(func(tx *bolt.Tx) error { return s.updateAttempt(tx, id, fn) })
}

func (s *Store) updateAttempt(tx *bolt.Tx, id uint64, fn func(*Attempt) error) error {
	a, err := s.getAttempt(tx, id)
	if err != nil {
		return err
	}
	if err := fn(&a); err != nil {
		return err
	}
	a.ID = id
	return s.putAttempt(tx, a)
}

// UpdateStep is UpdateAttempt for the step stepID of the attempt; it returns
// an error wrapping ErrNoStep when the attempt has no such step.
func (s *Store) UpdateStep(id uint64, stepID string, fn func(*StepRecord) error) error {
	return s.update(func(tx *bolt.Tx) error { return s.updateStep(tx, id, stepID, fn) })
}

func (s *Store) updateStep(tx *bolt.Tx, id uint64, stepID string, fn func(*StepRecord) error) error {
	return s.updateAttempt(tx, id, func(a *Attempt) error { return EditStep(s.path, a, stepID, fn) })
}

func clipLine(l string) string {
	l = strings.TrimRight(l, "\r")
	if i := strings.LastIndexByte(l, '\r'); i >= 0 {
		l = l[i+1:]
	}
	if len(l) > maxLine {
		cut := maxLine
		for cut > 0 && !utf8.RuneStart(l[cut]) {
			cut--
		}
		l = l[:cut] + "…"
	}
	return strings.ToValidUTF8(l, "\uFFFD")
}

func (s *Store) getAttempt(tx *bolt.Tx, id uint64) (Attempt, error) {
	var v []byte
	if b := bucket(tx, bucketAttempts); b != nil {
		v = b.Get(itob(id))
	}
	if v == nil {
		return Attempt{}, fmt.Errorf("state %s: attempt %d: %w", s.path, id, ErrNoAttempt)
	}
	return s.decodeAttempt(itob(id), v)
}

func (s *Store) decodeAttempt(k, v []byte) (Attempt, error) {
	var a Attempt
	if err := json.Unmarshal(v, &a); err != nil {
		return a, s.corrupt(fmt.Errorf("attempt %d: %w", btoi(k), err))
	}
	return a, nil
}

func (s *Store) putAttempt(tx *bolt.Tx, a Attempt) error {
	ClipTails(&a)
	if err := putJSON(tx.Bucket(bucketSummaries), itob(a.ID), summarize(a)); err != nil {
		return err
	}
	return putJSON(tx.Bucket(bucketAttempts), itob(a.ID), a)
}

// MarkDone records, in one transaction, that the operator did step stepID
// of the pending attempt id by hand: the step becomes done with m as its
// mark, and the history says who and why. It returns an error wrapping
// ErrNoStep when the attempt has no such step, and refuses a step already
// done.
func (s *Store) MarkDone(id uint64, stepID string, m Mark) error {
	return s.update(func(tx *bolt.Tx) error {
		a, err := s.getAttempt(tx, id)
		if err != nil {
			return err
		}
		m, err := MarkStep(s.path, &a, stepID, m)
		if err != nil {
			return err
		}
		if err := s.putAttempt(tx, a); err != nil {
			return err
		}
		return s.addEvent(tx, MarkDoneEvent(a, stepID, m))
	})
}
