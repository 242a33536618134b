package etcdstate_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"boxswap/internal/etcdtest"
	"boxswap/state"
	"boxswap/state/etcdstate"
)

// cutter is a TCP proxy on loopback to one etcd member that can cut every
// connection through it at once: requests sent, answers lost.
type cutter struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCutter(t *testing.T, to string) *cutter {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{l: l}
	t.Cleanup(func() { l.Close(); c.cut() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", to)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, in, out)
			c.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return c
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cn := range c.conns {
		cn.Close()
	}
	c.conns = nil
}

// Connections cut again and again under a writer holding the lock: every
// write lands exactly once (a write whose answer was lost is found by its
// token, never applied a second time), and none is lost.
func TestCutAnswersNeverDoubleAWrite(t *testing.T) {
	c := etcdtest.Start(t, 1)
	px := newCutter(t, strings.TrimPrefix(c.Endpoints()[0], "http://"))
	s := create(t, etcdstate.Options{Endpoints: []string{px.l.Addr().String()}, Prefix: "/boxswap/cut", TTL: 30})
	lock, err := s.Lock(state.CurrentHolder("boxswap next"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	stop := make(chan struct{})
	var cuts atomic.Int64
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(7 * time.Millisecond):
				px.cut()
				cuts.Add(1)
			}
		}
	}()
	const writes = 150
	failed := 0
	for i := range writes {
		if err := s.Record(state.Event{Kind: "w", Detail: fmt.Sprint(i)}); err != nil {
			failed++
			t.Logf("write %d: %v", i, err)
		}
	}
	close(stop)
	h, err := s.History()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range h {
		seen[e.Detail]++
	}
	for d, n := range seen {
		if n > 1 {
			t.Errorf("event %s recorded %d times", d, n)
		}
	}
	if len(h) != writes-failed {
		t.Errorf("%d events for %d writes that succeeded (%d failed)", len(h), writes-failed, failed)
	}
	t.Logf("%d writes, %d connection cuts, %d writes failed", writes, cuts.Load(), failed)
}
