package state_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	bolt "go.etcd.io/bbolt"

	"boxswap/state"
	"boxswap/state/statetest"
)

// The shared backend suite on bbolt.
func TestBackendBolt(t *testing.T) {
	statetest.Run(t, statetest.Kit{
		New: func(t *testing.T) (state.Backend, func() state.Backend) {
			path := filepath.Join(t.TempDir(), "boxswap.db")
			return state.Open(path), func() state.Backend { return state.Open(path) }
		},
		SetSchema: func(t *testing.T, b state.Backend, n int) {
			putRaw(t, b.Path(), "schema", []byte(strconv.Itoa(n)))
		},
		DamageMeta: func(t *testing.T, b state.Backend) { putRaw(t, b.Path(), "meta", []byte("{not json")) },
		Edit:       editRaw,
	})
}

// editRaw rewrites the first record of a kind in the bbolt file.
func editRaw(t *testing.T, b state.Backend, record string, edit func([]byte) []byte) {
	t.Helper()
	bucket, key := map[string]string{"meta": "meta", "attempt": "attempts", "summary": "summaries",
		"history": "history", "approval": "approvals"}[record], []byte{0, 0, 0, 0, 0, 0, 0, 1}
	if record == "meta" {
		key = []byte("meta")
	}
	db, err := bolt.Open(b.Path(), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(bucket))
		v := bk.Get(key)
		if v == nil {
			return fmt.Errorf("no %s record", record)
		}
		return bk.Put(key, edit(append([]byte(nil), v...)))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func putRaw(t *testing.T, path, key string, v []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte(key), v) })
	if err != nil {
		t.Fatal(err)
	}
}
