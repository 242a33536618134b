package steps

import (
	"context"
	"errors"
	"testing"
	"time"

	"boxswap/boxes"
)

// Issue 10, item 5: the operator's stop ends a reboot wait at once (a box
// that never comes back would otherwise be polled until reboot_timeout),
// and no probe starts after it.
func TestStopEndsTheRebootWait(t *testing.T) {
	b := &rebootingBox{bootID: "old-boot", down: -1}
	r := &fakeRunner{script: b.script}
	te := newEnv(map[string]boxes.Runner{"thermals": r})
	te.facts.Set("thermals/boot-id-before", "old-boot")
	s := Reboot("r", "thermals", RebootParams{Command: "dnf system-upgrade reboot", Into: "Fedora 29", Timeout: time.Hour, Poll: 20 * time.Millisecond})
	stop := make(chan struct{})
	ctx := boxes.WithStop(context.Background(), stop)
	done := make(chan error, 1)
	go func() { done <- s.Apply(ctx, te.Env) }()
	for len(r.sent()) < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	sent := len(r.sent())
	select {
	case err := <-done:
		if !errors.Is(err, boxes.ErrStopped) {
			t.Errorf("Apply after the stop: %v, want boxes.ErrStopped", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reboot wait went on after the stop")
	}
	if n := len(r.sent()); n > sent {
		t.Errorf("%d probes after the stop", n-sent)
	}
}
