package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"boxswap/internal/etcdtest"
	"boxswap/state"
	"boxswap/state/etcdstate"
)

// log --follow, reading the state while another process writes it: each
// stage is written only once the follower printed the previous one, so
// the test sees every change without depending on timing.
func TestFollowPrintsStepsUntilTheTransitionEnds(t *testing.T) {
	testFollow(t, state.Open(filepath.Join(t.TempDir(), "boxswap.db")), 2*time.Millisecond)
}

// On etcd, follow waits on a watch: with a poll of an hour, only the
// watch can make it see each change.
func TestFollowWatchesEtcd(t *testing.T) {
	c := etcdtest.Start(t, 1)
	s, err := etcdstate.Open(etcdstate.Options{Endpoints: c.Endpoints(), Prefix: "/boxswap/follow"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Create(); err != nil {
		t.Fatal(err)
	}
	testFollow(t, s, time.Hour)
}

func testFollow(t *testing.T, store state.Backend, every time.Duration) {
	if err := store.Init(state.Meta{Phase: "start", Cycle: 1, From: 27, To: 29}); err != nil {
		t.Fatal(err)
	}
	lines := make(chan followLine, 100)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		done <- follow(ctx, store, logJSON{}, func(l followLine) { lines <- l }, every)
	}()
	var got []string
	expect := func(want string) {
		t.Helper()
		for {
			select {
			case l := <-lines:
				// The content on one line (--wide); at 80 columns, wrapped.
				var b, narrow strings.Builder
				printFollowLine(&b, l, true)
				printFollowLine(&narrow, l, false)
				fits(t, "log --follow", narrow.String())
				s := strings.TrimSpace(b.String()[len("15:04:05 "):])
				got = append(got, s)
				if strings.Contains(s, want) {
					return
				}
			case <-time.After(time.Minute):
				t.Fatalf("follow did not print %q; printed:\n%s", want, strings.Join(got, "\n"))
			}
		}
	}
	expect("waiting for boxswap next")
	t0 := time.Now()
	id, err := store.Begin(&state.Attempt{Cycle: 1, Event: "upgrade-dev", From: "start", To: "dev-upgraded", Status: state.Running, Started: t0,
		Steps: []state.StepRecord{{ID: "upgrade-dev/a", Box: "thermals", Status: state.Pending}, {ID: "upgrade-dev/reboot", Box: "thermals", Status: state.Pending}}})
	if err != nil {
		t.Fatal(err)
	}
	expect("upgrade-dev (attempt 1): running")
	set := func(step string, status state.StepStatus, tries int, ended time.Time, e string) {
		t.Helper()
		if err := store.UpdateStep(id, step, func(r *state.StepRecord) error {
			r.Status, r.Attempts, r.Started, r.Ended, r.Error = status, tries, t0, ended, e
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	set("upgrade-dev/a", state.StepRunning, 1, time.Time{}, "")
	expect("[1/2] thermals upgrade-dev/a: running")
	set("upgrade-dev/a", state.StepDone, 1, t0.Add(1500*time.Millisecond), "")
	expect("[1/2] thermals upgrade-dev/a: done in 1.5s")
	set("upgrade-dev/reboot", state.StepRunning, 2, time.Time{}, "thermals: connection lost")
	expect("[2/2] thermals upgrade-dev/reboot: running (try 2): thermals: connection lost")
	if err := store.Record(state.Event{Time: t0, Who: "op@here", Kind: "approval", Detail: "gate approved"}); err != nil {
		t.Fatal(err)
	}
	expect("approval: gate approved (op@here)")
	set("upgrade-dev/reboot", state.StepDone, 2, t0.Add(2*time.Minute), "")
	if err := store.SetPhase(id, "dev-upgraded"); err != nil {
		t.Fatal(err)
	}
	expect("upgrade-dev (attempt 1): done")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("follow did not end with the transition")
	}
	for _, l := range got {
		if strings.Contains(l, "pending") {
			t.Errorf("a pending step was printed: %q", l)
		}
	}
}

// Ctrl-C (a cancelled context) ends follow without an error.
func TestFollowEndsOnInterrupt(t *testing.T) {
	store := state.Open(filepath.Join(t.TempDir(), "boxswap.db"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := follow(ctx, store, logJSON{}, func(followLine) {}, time.Millisecond); err != nil {
		t.Fatal(err)
	}
}
