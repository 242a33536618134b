package labtest

import (
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"boxswap/test/lab/lab"
)

func TestProbeGapsAndSequence(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	p := Probe{Answers: []Answer{
		{At: at(0), Who: "thurst"}, {At: at(50), Who: "thurst"},
		{At: at(100)}, {At: at(150), Slow: true}, {At: at(200)},
		{At: at(250), Who: "thermals"}, {At: at(300), Who: "thermals"},
	}}
	gaps := p.Gaps()
	if len(gaps) != 1 || !gaps[0].From.Equal(at(50)) || !gaps[0].To.Equal(at(250)) {
		t.Fatalf("gaps %v", gaps)
	}
	if p.Longest().Len() != 200*time.Millisecond || p.Alternates() || fmt.Sprint(p.Sequence()) != "[thurst thermals]" || p.Slow() != 1 {
		t.Fatalf("probe %s", p)
	}
	p.Answers = append(p.Answers, Answer{At: at(350), Who: "thurst"})
	if !p.Alternates() {
		t.Fatal("thurst, thermals, thurst not seen as back and forth")
	}
}

func TestBothHeld(t *testing.T) {
	s := func(box string, active bool) UnitSample { return UnitSample{Box: box, Active: active} }
	handover := []UnitSample{s("thurst", true), s("thermals", false), s("thurst", false), s("thermals", true), s("thurst", false)}
	if bad := BothHeld(handover); len(bad) != 0 {
		t.Fatalf("a clean handover flagged: %v", bad)
	}
	both := []UnitSample{s("thurst", true), s("thermals", true), s("thurst", true)}
	if bad := BothHeld(both); len(bad) != 1 {
		t.Fatalf("both holding not flagged: %v", bad)
	}
}

// TestProberCounts502AsDown: nginx answering 502 (the app stopped behind
// it) is production down, as users see it: a gap between the answers.
func TestProberCounts502AsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/"
	var down atomic.Bool
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintln(w, "thurst 502 Bad Gateway")
			return
		}
		fmt.Fprintln(w, "thurst 27 production")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	p := StartProber(&lab.Lab{}, url, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	down.Store(true)
	time.Sleep(150 * time.Millisecond)
	down.Store(false)
	time.Sleep(100 * time.Millisecond)
	probe := p.Stop()
	if g := probe.Gaps(); len(g) != 1 || g[0].Len() < 100*time.Millisecond || probe.Slow() != 0 {
		t.Fatalf("a 150ms stretch of 502s: gaps %v, %d slow, want one gap of at least 100ms\n%s", g, probe.Slow(), probe)
	}
}

func TestProberTellsRefusedFromAnswered(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/"
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "thurst f27 production") })}
	go srv.Serve(ln)
	p := StartProber(&lab.Lab{}, url, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	srv.Close()
	time.Sleep(100 * time.Millisecond)
	probe := p.Stop()
	if probe.Answered() == 0 || len(probe.Gaps()) != 1 || fmt.Sprint(probe.Sequence()) != "[thurst]" {
		t.Fatalf("probe %s", probe)
	}
}
