package etcdstate_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"boxswap/internal/etcdtest"
	"boxswap/state"
	"boxswap/state/etcdstate"
	"boxswap/state/statetest"
)

var prefixes atomic.Int64

// open opens prefix on c with a 2s lease; see openWith.
func open(t *testing.T, c *etcdtest.Cluster, prefix string) *etcdstate.Store {
	t.Helper()
	return openWith(t, etcdstate.Options{Endpoints: c.Endpoints(), Prefix: prefix, TTL: 2})
}

// openWith opens the store o names, closed when the test ends.
func openWith(t *testing.T, o etcdstate.Options) *etcdstate.Store {
	t.Helper()
	s, err := etcdstate.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// create is openWith and Create (`state init`).
func create(t *testing.T, o etcdstate.Options) *etcdstate.Store {
	t.Helper()
	s := openWith(t, o)
	if err := s.Create(); err != nil {
		t.Fatal(err)
	}
	return s
}

// The shared backend suite on a real etcd server (one member, loopback).
func TestBackendEtcd(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client()
	put := func(t *testing.T, b state.Backend, k, v string) {
		t.Helper()
		if _, err := cli.Put(context.Background(), b.(*etcdstate.Store).Prefix()+"/"+k, v); err != nil {
			t.Fatal(err)
		}
	}
	statetest.Run(t, statetest.Kit{
		New: func(t *testing.T) (state.Backend, func() state.Backend) {
			prefix := fmt.Sprintf("/boxswap/suite-%d", prefixes.Add(1))
			s := create(t, etcdstate.Options{Endpoints: c.Endpoints(), Prefix: prefix, TTL: 2})
			return s, func() state.Backend { return open(t, c, prefix) }
		},
		SetSchema:  func(t *testing.T, b state.Backend, n int) { put(t, b, "m/schema", strconv.Itoa(n)) },
		DamageMeta: func(t *testing.T, b state.Backend) { put(t, b, "m/meta", "{not json") },
		Edit: func(t *testing.T, b state.Backend, record string, edit func([]byte) []byte) {
			t.Helper()
			k := map[string]string{"meta": "m/meta", "attempt": "a/", "summary": "s/", "history": "h/", "approval": "p/"}[record]
			if k != "m/meta" {
				k += fmt.Sprintf("%016x", 1)
			}
			resp, err := cli.Get(context.Background(), b.(*etcdstate.Store).Prefix()+"/"+k)
			if err != nil || len(resp.Kvs) != 1 {
				t.Fatalf("%s: %v", k, err)
			}
			put(t, b, k, string(edit(resp.Kvs[0].Value)))
		},
		Expire: func(t *testing.T, l state.OperatorLock) {
			lease := l.(interface{ Lease() clientv3.LeaseID }).Lease()
			if _, err := cli.Revoke(context.Background(), lease); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// A prefix nobody created is an error, never a fresh start; state init
// refuses a prefix that holds keys.
func TestMissingPrefix(t *testing.T) {
	c := etcdtest.Start(t, 1)
	s := open(t, c, "/boxswap/typo")
	for name, err := range map[string]error{
		"Meta":   func() error { _, err := s.Meta(); return err }(),
		"Record": s.Record(state.Event{Kind: "x"}),
		"Lock":   func() error { _, err := s.Lock(state.CurrentHolder("boxswap next")); return err }(),
		"Verify": s.Verify(),
	} {
		if !errors.Is(err, state.ErrNoState) || !strings.Contains(err.Error(), "/boxswap/typo") {
			t.Errorf("%s on a missing prefix = %v, want ErrNoState naming the prefix", name, err)
		}
	}
	resp, err := c.Client().Get(context.Background(), "/boxswap/typo", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Fatalf("refused calls wrote %d keys (%v)", resp.Count, err)
	}
	if err := s.Create(); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(); err == nil {
		t.Error("a second state init on the same prefix: no error")
	}
	if m, err := s.Meta(); err != nil || m.Phase != state.StartPhase {
		t.Errorf("after init: %+v, %v", m, err)
	}
	if _, err := c.Client().Put(context.Background(), "/boxswap/typo/stray", "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(); !errors.Is(err, state.ErrCorrupt) {
		t.Errorf("Verify with a foreign key under the prefix = %v, want ErrCorrupt", err)
	}
}
