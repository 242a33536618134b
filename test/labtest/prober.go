package labtest

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"time"

	"boxswap/test/lab/lab"
)

// Answer is one probe of an address: who answered (the body's first word,
// the box) or nobody.
type Answer struct {
	At   time.Time
	Who  string // "" when nobody answered
	Body string
	// Slow is a probe that got no answer in time without being refused:
	// the machine was busy, not the address free. It counts neither way.
	Slow bool
}

// Gap is a stretch without an answer: From is the last answer before it
// (or its first probe), To the first answer after it (or its last probe).
type Gap struct{ From, To time.Time }

// Len is how long the gap lasted.
func (g Gap) Len() time.Duration { return g.To.Sub(g.From) }

// Prober probes an address at a fixed rate until stopped.
type Prober struct {
	l      *lab.Lab
	url    string
	period time.Duration
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	ans    []Answer
}

// StartProber probes url every period (50ms is 20 Hz) from the operator's
// side of l.
func StartProber(l *lab.Lab, url string, period time.Duration) *Prober {
	p := &Prober{l: l, url: url, period: period, stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

func (p *Prober) loop() {
	defer close(p.done)
	t := time.NewTicker(p.period)
	defer t.Stop()
	for {
		body, err := getWithin(p.l, p.url, time.Second)
		a := Answer{At: time.Now()}
		switch {
		case err == nil:
			a.Body = body
			a.Who, _, _ = strings.Cut(body, " ")
		case errors.As(err, new(*StatusError)):
			// nginx's 502 with the app stopped: down, as users see it.
		case p.l.Info.Kind == lab.KindSystemd:
			// On real boxes a probe that hangs is an address nobody
			// answers (ARP unresolved, a stale neighbour): down.
		case !refused(err):
			a.Slow = true
		}
		p.mu.Lock()
		p.ans = append(p.ans, a)
		p.mu.Unlock()
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

// Stop stops probing and returns what was seen.
func (p *Prober) Stop() Probe {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return Probe{Answers: append([]Answer(nil), p.ans...)}
}

// Probe is the record of a prober.
type Probe struct{ Answers []Answer }

// Gaps lists the stretches without an answer.
func (p Probe) Gaps() []Gap {
	var gaps []Gap
	var lastOK time.Time
	in := false
	var g Gap
	for _, a := range p.Answers {
		if a.Slow {
			continue
		}
		switch {
		case a.Who == "" && !in:
			in = true
			g = Gap{From: lastOK}
			if lastOK.IsZero() {
				g.From = a.At
			}
			g.To = a.At
		case a.Who == "" && in:
			g.To = a.At
		case a.Who != "" && in:
			g.To = a.At
			gaps = append(gaps, g)
			in = false
			lastOK = a.At
		default:
			lastOK = a.At
		}
	}
	if in {
		gaps = append(gaps, g)
	}
	return gaps
}

// Longest is the longest gap (zero when always answered).
func (p Probe) Longest() Gap {
	var l Gap
	for _, g := range p.Gaps() {
		if g.Len() > l.Len() {
			l = g
		}
	}
	return l
}

// Sequence is who answered, in order, each run of answers by the same
// box counted once.
func (p Probe) Sequence() []string {
	var s []string
	for _, a := range p.Answers {
		if a.Who != "" && (len(s) == 0 || s[len(s)-1] != a.Who) {
			s = append(s, a.Who)
		}
	}
	return s
}

// Alternates says a box answered again after another box had answered
// since: production moved back and forth.
func (p Probe) Alternates() bool {
	seen := map[string]bool{}
	for _, w := range p.Sequence() {
		if seen[w] {
			return true
		}
		seen[w] = true
	}
	return false
}

// Answered counts the probes answered.
func (p Probe) Answered() int {
	n := 0
	for _, a := range p.Answers {
		if a.Who != "" {
			n++
		}
	}
	return n
}

func (p Probe) String() string {
	return fmt.Sprintf("%d probes, %d answered, %d slow, sequence %v, longest gap %s", len(p.Answers), p.Answered(), p.Slow(), p.Sequence(), p.Longest().Len().Round(time.Millisecond))
}

// refused says nobody holds the address: the connection was refused or
// reset, as when no process listens on it.
func refused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF)
}

// Slow counts the probes that were neither answered nor refused.
func (p Probe) Slow() int {
	n := 0
	for _, a := range p.Answers {
		if a.Slow {
			n++
		}
	}
	return n
}

func getWithin(l *lab.Lab, url string, d time.Duration) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() { s, err := Get(l, url); ch <- res{s, err} }()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-time.After(d):
		return "", fmt.Errorf("no answer within %s", d)
	}
}

// UnitSample is one `systemctl is-active UNIT` on one box.
type UnitSample struct {
	At     time.Time
	Box    string
	Active bool
	Err    error
}

// UnitWatcher asks both boxes in turn whether they hold a unit, over its
// own SSH connections (redialled after a reboot or a cut).
type UnitWatcher struct {
	l    *lab.Lab
	unit string
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	s    []UnitSample
}

// WatchUnit starts asking thurst, thermals, thurst, … about unit.
func WatchUnit(l *lab.Lab, unit string) *UnitWatcher {
	w := &UnitWatcher{l: l, unit: unit, stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *UnitWatcher) loop() {
	defer close(w.done)
	clients := map[string]*sshClient{}
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-w.stop:
			return
		default:
		}
		box := lab.BoxNames[i%2]
		c := clients[box]
		if c == nil {
			c = &sshClient{l: w.l, box: box}
			clients[box] = c
		}
		out, err := c.run("systemctl is-active " + w.unit)
		s := UnitSample{At: time.Now(), Box: box, Err: err, Active: err == nil && strings.TrimSpace(out) == "active"}
		w.mu.Lock()
		w.s = append(w.s, s)
		w.mu.Unlock()
		if err != nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Stop stops watching and returns the samples.
func (w *UnitWatcher) Stop() []UnitSample {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]UnitSample(nil), w.s...)
}

// BothHeld finds the moments both boxes held the unit for sure: a box seen
// active, then the other box active, then the first active again.
func BothHeld(samples []UnitSample) []string {
	var bad []string
	var ok []UnitSample
	for _, s := range samples {
		if s.Err == nil {
			ok = append(ok, s)
		}
	}
	for i := 0; i+2 < len(ok); i++ {
		a, b, c := ok[i], ok[i+1], ok[i+2]
		if a.Box == c.Box && a.Box != b.Box && a.Active && b.Active && c.Active {
			bad = append(bad, fmt.Sprintf("%s and %s both active at %s", a.Box, b.Box, b.At.Format("15:04:05.000")))
		}
	}
	return bad
}
