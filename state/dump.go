package state

import (
	"bytes"
	"encoding/json"

	bolt "go.etcd.io/bbolt"

	"boxswap/internal/safefile"
)

// Dump is a whole state, as `boxswap state push` and `state pull` copy it
// from one backend to another.
type Dump struct {
	Meta      Meta              `json:"meta"`
	Attempts  []Attempt         `json:"attempts"`
	Facts     map[string]string `json:"facts"`
	Approvals []Approval        `json:"approvals"`
	History   []Event           `json:"history"`
}

// Loader is a backend a Dump can be written into: Load writes d into a
// state that holds no record yet (refusing one that does), keeping the
// attempts' IDs and the events' Seq, so that the next ones follow them.
type Loader interface {
	Load(d *Dump) error
}

// ReadDump reads the whole state of b. Hold b's lock so that nobody
// writes it meanwhile.
func ReadDump(b Backend) (*Dump, error) {
	var d Dump
	var err error
	if d.Meta, err = b.Meta(); err != nil {
		return nil, err
	}
	if d.Attempts, err = b.Attempts(); err != nil {
		return nil, err
	}
	if d.Facts, err = b.Facts(""); err != nil {
		return nil, err
	}
	if d.Approvals, err = b.Approvals(); err != nil {
		return nil, err
	}
	if d.History, err = b.History(); err != nil {
		return nil, err
	}
	return &d, nil
}

// SameDump reports whether two dumps hold the same records, and the first
// part that differs.
func SameDump(a, b *Dump) (bool, string) {
	parts := func(d *Dump) map[string]any {
		return map[string]any{"meta": d.Meta, "attempts": d.Attempts, "facts": d.Facts, "approvals": d.Approvals, "history": d.History}
	}
	pa, pb := parts(a), parts(b)
	for _, k := range []string{"meta", "attempts", "facts", "approvals", "history"} {
		ja, _ := json.Marshal(pa[k])
		jb, _ := json.Marshal(pb[k])
		if !bytes.Equal(ja, jb) {
			return false, k
		}
	}
	return true, ""
}

// Load writes d into a new state file; an existing file is refused.
func (s *Store) Load(d *Dump) error {
	if fi, err := safefile.Lstat(s.path); err != nil {
		return s.unusable(err)
	} else if fi != nil {
		return Existsf("state %s: the file exists; a copy writes only a new file", s.path)
	}
	return s.update(func(tx *bolt.Tx) error {
		m := d.Meta
		m.Schema = SchemaVersion
		if err := putJSON(tx.Bucket(bucketMeta), keyMeta, m); err != nil {
			return err
		}
		for _, a := range d.Attempts {
			if err := s.putAttempt(tx, a); err != nil {
				return err
			}
			if err := tx.Bucket(bucketAttempts).SetSequence(max(a.ID, tx.Bucket(bucketAttempts).Sequence())); err != nil {
				return err
			}
		}
		for k, v := range d.Facts {
			if err := tx.Bucket(bucketFacts).Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		for i, a := range d.Approvals {
			if err := putJSON(tx.Bucket(bucketApprovals), itob(uint64(i+1)), a); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketApprovals).SetSequence(uint64(len(d.Approvals))); err != nil {
			return err
		}
		h := tx.Bucket(bucketHistory)
		for _, e := range d.History {
			if err := putJSON(h, itob(e.Seq), e); err != nil {
				return err
			}
			if err := h.SetSequence(max(e.Seq, h.Sequence())); err != nil {
				return err
			}
		}
		return nil
	})
}

var _ Loader = (*Store)(nil)
