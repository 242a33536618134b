package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Check runs bbolt's consistency check over the whole file, read-only. A
// missing file is consistent; problems are returned wrapping ErrCorrupt.
func (s *Store) Check() error {
	// bbolt checks in a goroutine of its own, where a panic on a damaged
	// page would kill the process: load the freelist and walk every record
	// here first, where withDB turns such panics into ErrCorrupt.
	return s.viewWith(true, func(tx *bolt.Tx) error {
		if tx == nil {
			return nil
		}
		err := tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			return b.ForEach(func([]byte, []byte) error { return nil })
		})
		if err != nil {
			return s.corrupt(err)
		}
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return s.corrupt(errors.Join(errs...))
		}
		return nil
	})
}

// Verify reads the whole file once, read-only: the freelist, every page of
// every bucket, and every record boxswap decodes. Damage anywhere is
// ErrCorrupt, whichever record a verb is about to read, so that every verb
// refuses a damaged file the same way. It is Check without bbolt's own
// checker (which runs in a goroutine of its own, where a fault on a damaged
// page would kill the process): cheap enough to run before every verb. A
// missing file is fine.
func (s *Store) Verify() error {
	return s.viewWith(true, func(tx *bolt.Tx) error {
		if tx == nil {
			return nil
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if v == nil {
					return s.corrupt(fmt.Errorf("bucket %s: %q is a nested bucket", name, k))
				}
				if bytes.Equal(name, bucketFacts) || bytes.Equal(name, bucketMeta) && bytes.Equal(k, keySchema) {
					return nil // plain strings
				}
				if !json.Valid(v) {
					return s.corrupt(fmt.Errorf("bucket %s: record %x is not valid JSON", name, k))
				}
				if err := CheckSeal(v); err != nil {
					return s.corrupt(fmt.Errorf("bucket %s: record %x: %w", name, k, err))
				}
				return nil
			})
		})
	})
}
