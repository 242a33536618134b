package etcdstate_test

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"boxswap/internal/etcdtest"
	"boxswap/state"
	"boxswap/state/etcdstate"
)

// Three members: the leader killed between writes changes nothing for the
// writer; with two of three gone every write fails within the timeout,
// nothing half written, and once quorum returns the writes go on.
func TestClusterLeaderAndQuorum(t *testing.T) {
	c := etcdtest.Start(t, 3)
	opts := etcdstate.Options{Endpoints: c.Endpoints(), Prefix: "/boxswap/c3", TTL: 5}
	s := create(t, opts)
	lock, err := s.Lock(state.CurrentHolder("boxswap next"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	id, err := s.Begin(&state.Attempt{Event: "redirect", From: "dev-upgraded", Command: "next",
		Steps: []state.StepRecord{{ID: "redirect/a"}, {ID: "redirect/b"}}})
	if err != nil {
		t.Fatal(err)
	}
	// The leader killed while the writes go on: none is lost, none is
	// applied twice (a write whose answer died with the member is checked
	// by its token before it is tried again).
	leader := c.Leader()
	const writes = 200
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		time.Sleep(50 * time.Millisecond)
		c.Kill(leader, syscall.SIGKILL)
	}()
	for i := range writes {
		if err := s.Record(state.Event{Kind: "w", Detail: fmt.Sprint(i)}); err != nil {
			t.Fatalf("write %d with the leader (member %d) killed: %v", i, leader, err)
		}
	}
	<-killed
	h, err := s.History()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range h {
		seen[e.Detail]++
	}
	if len(h) != writes+1 || len(seen) != writes+1 {
		t.Fatalf("%d events, %d distinct, after %d writes and a begin: lost or doubled", len(h), len(seen), writes)
	}
	// Two of three down: no quorum.
	for i := range c.Members {
		if i != leader {
			c.Kill(i, syscall.SIGKILL)
			break
		}
	}
	err = s.UpdateStep(id, "redirect/a", func(r *state.StepRecord) error { r.Status = state.StepDone; return nil })
	if !errors.Is(err, state.ErrUnusable) {
		t.Fatalf("a write without quorum = %v, want ErrUnusable (no answer)", err)
	}
	if err := s.Record(state.Event{Kind: "after"}); !errors.Is(err, state.ErrNoAnswer) {
		t.Errorf("the holder's next write = %v, want the same no-answer at once", err)
	}
	lock.Unlock() // orphans the lease: no second wait on a silent cluster
	for i, m := range c.Members {
		if !m.Running() {
			c.Restart(i)
		}
	}
	c.WaitReady()
	// The next run (this same process: its pid lives, so it waits out the
	// lease) takes the lock over and finds the state as it was.
	s2 := openWith(t, opts)
	var l2 state.OperatorLock
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if l2, err = s2.Lock(state.CurrentHolder("boxswap resume")); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("the lock was never free again: %v", err)
	}
	defer l2.Unlock()
	if err := s2.Verify(); err != nil {
		t.Fatal(err)
	}
	a, err := s2.Attempt(id)
	if err != nil || a.Steps[0].Status != state.Pending {
		t.Fatalf("the write refused without quorum left %+v, %v", a, err)
	}
	if err := s2.UpdateStep(id, "redirect/a", func(r *state.StepRecord) error { r.Status = state.StepDone; return nil }); err != nil {
		t.Fatalf("a write after quorum returned: %v", err)
	}
	if h, _ := s2.History(); len(h) != writes+1 {
		t.Errorf("history has %d events, want %d", len(h), writes+1)
	}
}

// A lock left by a process of this host that is gone is taken over at
// once, its holder named; one whose process runs is not.
func TestLockOfADeadProcessIsReclaimed(t *testing.T) {
	c := etcdtest.Start(t, 1)
	opts := etcdstate.Options{Endpoints: c.Endpoints(), Prefix: "/boxswap/dead", TTL: 60}
	open := func() *etcdstate.Store { return openWith(t, opts) }
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	first := create(t, opts)
	h := state.CurrentHolder("boxswap next")
	h.PID = gone.Process.Pid
	if _, err := first.Lock(h); err != nil {
		t.Fatal(err)
	}
	l, err := open().Lock(state.CurrentHolder("boxswap resume"))
	if err != nil {
		t.Fatalf("the lock of a dead pid of this host (lease 60s) was not reclaimed: %v", err)
	}
	if r := l.Info().Reclaimed; r == nil || r.PID != h.PID {
		t.Errorf("Reclaimed = %+v, want pid %d", r, h.PID)
	}
	if _, err := open().Lock(state.CurrentHolder("boxswap next")); !errors.Is(err, state.ErrLocked) {
		t.Errorf("the lock of this live process was taken: %v", err)
	}
}
