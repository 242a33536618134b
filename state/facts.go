package state

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"

	bolt "go.etcd.io/bbolt"
)

// Fact returns the fact stored under key and whether there is one.
func (s *Store) Fact(key string) (string, bool, error) {
	var (
		val string
		ok  bool
	)
	err := s.view(func(tx *bolt.Tx) error {
		if b := bucket(tx, bucketFacts); b != nil {
			if v := b.Get([]byte(key)); v != nil {
				val, ok = string(v), true
			}
		}
		return nil
	})
	return val, ok, err
}

// SetFact stores value under key, replacing any older value.
func (s *Store) SetFact(key, value string) error {
	if key == "" {
		return fmt.Errorf("state %s: set fact: empty key", s.path)
	}
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFacts).Put([]byte(key), []byte(value))
	})
}

// DeleteFact removes the fact under key; a missing fact is not an error.
func (s *Store) DeleteFact(key string) error {
	if _, err := os.Stat(s.path); key == "" || errors.Is(err, fs.ErrNotExist) {
		return nil // nothing to delete; do not create the file for it
	}
	return s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketFacts).Delete([]byte(key)) })
}

// Facts returns the facts whose keys start with prefix ("" for all).
func (s *Store) Facts(prefix string) (map[string]string, error) {
	facts := map[string]string{}
	err := s.view(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketFacts)
		if b == nil {
			return nil
		}
		p := []byte(prefix)
		c := b.Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			facts[string(k)] = string(v)
		}
		return nil
	})
	return facts, err
}

// SetStepFact stores value under key, as SetFact, and records key and
// value in the facts of the step stepID of attempt id (what that step
// learnt), in one transaction: a crash keeps both or neither. The step
// record keeps the key as given, without prefix.
func (s *Store) SetStepFact(id uint64, stepID, prefix, key, value string) error {
	if prefix+key == "" {
		return fmt.Errorf("state %s: set fact: empty key", s.path)
	}
	return s.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketFacts).Put([]byte(prefix+key), []byte(value)); err != nil {
			return err
		}
		return s.updateStep(tx, id, stepID, func(r *StepRecord) error {
			if r.Facts == nil {
				r.Facts = map[string]string{}
			}
			r.Facts[key] = value
			return nil
		})
	})
}
