package main

import (
	"fmt"
	"path/filepath"
	"testing"

	"boxswap/boxes"
	"boxswap/fsm"
	"boxswap/internal/etcdtest"
	"boxswap/state"
	"boxswap/state/etcdstate"
)

// The state's own cost per verb, bbolt against etcd (issue 15): `where`
// (fsm.Where and the lock's holder, what the verb reads, without the
// process start) and one step's records (running, the fence a remote
// command passes on etcd, done) on a state of 100 transitions, the bench
// reads state. Run, on a machine with etcd-server installed:
//
//	go test -run '^$' -bench State -benchtime 200x ./test/bench
//
// etcd members run on loopback, one or three, with their data on the
// temporary folder's disk (fsync on every write, as in production).
func BenchmarkState(b *testing.B) {
	cfg, err := boxes.Load(filepath.Join("..", "..", "boxes.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	src := filepath.Join(b.TempDir(), "boxswap.db")
	if err := buildState(src, 100); err != nil {
		b.Fatal(err)
	}
	dump, err := state.ReadDump(state.Open(src))
	if err != nil {
		b.Fatal(err)
	}
	backends := []struct {
		name string
		open func(b *testing.B) state.Backend
	}{
		{"bbolt", func(b *testing.B) state.Backend { return state.Open(src) }},
		{"etcd-1", func(b *testing.B) state.Backend { return etcdState(b, 1, dump) }},
		{"etcd-3", func(b *testing.B) state.Backend { return etcdState(b, 3, dump) }},
	}
	for _, be := range backends {
		b.Run("where/"+be.name, func(b *testing.B) {
			st := be.open(b)
			for b.Loop() {
				if _, err := fsm.Where(cfg, st); err != nil {
					b.Fatal(err)
				}
				if _, _, err := st.ReadLock(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("step/"+be.name, func(b *testing.B) { benchStep(b, be.open(b)) })
	}
}

// benchStep times one step's records as the executor writes them, with
// the operator lock held (on etcd each write is fenced by it).
func benchStep(b *testing.B, st state.Backend) {
	lock, err := st.Lock(state.CurrentHolder("bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer lock.Unlock()
	a := &state.Attempt{Cycle: 21, Event: "redirect", From: "dev-upgraded", Command: "next"}
	for j := range 15 {
		a.Steps = append(a.Steps, state.StepRecord{ID: fmt.Sprintf("redirect/step-%02d", j), Box: "thurst",
			Text: "a step of the bench state", Commands: []string{"systemctl is-active -- nbhosting-addr"}})
	}
	id, err := st.Begin(a)
	if err != nil {
		b.Fatal(err)
	}
	fence, _ := st.(state.Fencer)
	i := 0
	for b.Loop() {
		step := a.Steps[i%len(a.Steps)].ID
		i++
		if err := st.UpdateStep(id, step, func(r *state.StepRecord) error { r.Status = state.StepRunning; r.Attempts++; return nil }); err != nil {
			b.Fatal(err)
		}
		if fence != nil {
			if err := fence.Fence(); err != nil {
				b.Fatal(err)
			}
		}
		if err := st.UpdateStep(id, step, func(r *state.StepRecord) error {
			r.Status, r.Tail = state.StepDone, []string{"thurst: active"}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

func etcdState(b *testing.B, members int, d *state.Dump) state.Backend {
	c := etcdtest.Start(b, members)
	s, err := etcdstate.Open(etcdstate.Options{Endpoints: c.Endpoints(), Prefix: "/boxswap/bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Load(d); err != nil {
		b.Fatal(err)
	}
	return s
}
