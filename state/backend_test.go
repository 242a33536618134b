package state_test

import (
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
	})
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
