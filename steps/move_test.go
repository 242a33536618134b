package steps

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"boxswap/boxes"
)

// tlsSite is a real HTTPS server on loopback with a certificate for
// example.com, and the file of the CA that signed it.
func tlsSite(t *testing.T, h http.HandlerFunc) (port int, ca string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // curl's refusals of an unknown CA
	srv.StartTLS()
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	port, _ = strconv.Atoi(u.Port())
	ca = filepath.Join(t.TempDir(), "ca.pem")
	mustWrite(t, ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	return port, ca
}

// needCurl fails the test without curl: scripts/deps.sh installs it.
func needCurl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl not found: run scripts/deps.sh")
	}
}

// Issue 13, item 1: app.check with real curl against a real TLS server:
// the name is resolved to the box itself, the certificate verified.
func TestAppCheckVerifiesTheSite(t *testing.T) {
	needCurl(t)
	var status atomic.Int32 // set by the test, read by the server
	status.Store(200)
	port, ca := tlsSite(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Host, "example.com") || r.TLS == nil || r.TLS.ServerName != "example.com" {
			http.Error(w, "wrong host "+r.Host, 421)
			return
		}
		w.WriteHeader(int(status.Load()))
		fmt.Fprintf(w, "thermals 13 production\n")
	})
	p := CheckParams{Name: "example.com", Port: port, Path: "/hub", Status: 200, Text: "production", Timeout: 2 * time.Second,
		CA: ca, Connect: "127.0.0.1", Poll: 100 * time.Millisecond}
	r := newShRunner(t)
	te := newEnv(map[string]boxes.Runner{"thermals": r})
	ctx := context.Background()
	s := AppCheck("redirect/check/thermals", "thermals", p)
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatalf("a good site: %v", err)
	}
	if ok, why, err := s.Check(ctx, te.Env); !ok || err != nil || !strings.Contains(why, "answered 200") {
		t.Fatalf("check: %v %q %v", ok, why, err)
	}
	for name, tc := range map[string]struct {
		p    func(CheckParams) CheckParams
		want string
	}{
		"no CA given: the system's do not know it": {func(p CheckParams) CheckParams { p.CA = ""; return p }, "the certificate is not trusted"},
		"wrong text":      {func(p CheckParams) CheckParams { p.Text = "development"; return p }, `without "development"`},
		"wrong status":    {func(p CheckParams) CheckParams { p.Status = 204; return p }, "answered 200, want 204"},
		"nothing listens": {func(p CheckParams) CheckParams { p.Port = 1; return p }, "connection was refused"},
	} {
		q := tc.p(p)
		q.Timeout = time.Second
		err := AppCheck("i", "thermals", q).Apply(ctx, te.Env)
		if !errors.Is(err, ErrPrecondition) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "production was not touched") {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	// insecure skips the verification, and plan says so.
	p.CA, p.Insecure = "", true
	s = AppCheck("i", "thermals", p)
	if err := s.Apply(ctx, te.Env); err != nil || !strings.Contains(s.Describe().Text, "NOT verified") {
		t.Errorf("insecure: %v; %s", err, s.Describe().Text)
	}
	// The app comes up within the timeout: tried again until it answers.
	p.Insecure, p.CA = false, ca
	status.Store(502)
	go func() { time.Sleep(300 * time.Millisecond); status.Store(200) }()
	if err := AppCheck("i", "thermals", p).Apply(ctx, te.Env); err != nil {
		t.Errorf("an app answering within the timeout: %v", err)
	}
}

// addrBox scripts ip and arping on a box: which interfaces hold the
// address, arping -D's exit status.
func addrBox(t *testing.T, holds bool, dad int) *shRunner {
	r := newShRunner(t)
	held := ""
	if holds {
		held = `echo "2: host0    inet 198.18.0.100/24 scope global host0\       valid_lft forever preferred_lft forever"`
	}
	r.stub(t, "ip", `case "$*" in
"-o -4 addr show to 198.18.0.100") `+held+` ;;
*) echo "ip $*: unexpected" >&2; exit 2 ;;
esac`)
	r.stub(t, "arping", `case "$*" in
*-D*) [ `+strconv.Itoa(dad)+` = 1 ] && echo "Unicast reply from 198.18.0.100 [AA:BB:CC:00:00:09]  0.6ms"; exit `+strconv.Itoa(dad)+` ;;
*-U*) exit 1 ;;
esac`)
	r.stub(t, "systemctl", `case "$1" in is-active) echo inactive; exit 3 ;; is-enabled) echo disabled; exit 1 ;; esac`)
	return r
}

// Issue 13, item 2: a unit whose stop leaves the address behind makes
// the move refuse before the take, naming the box.
func TestReleaseAddressRefusesAnAddressLeftBehind(t *testing.T) {
	thurst, thermals := addrBox(t, true, 0), addrBox(t, false, 0)
	te := newEnv(map[string]boxes.Runner{"thurst": thurst, "thermals": thermals})
	s := ReleaseAddress("redirect/release-address/thurst", "thurst", "nbhosting-addr", "198.18.0.100", []string{"thurst", "thermals"})
	err := s.Apply(context.Background(), te.Env)
	if !errors.Is(err, ErrHalted) || errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "thurst still holds 198.18.0.100 on host0 after nbhosting-addr was stopped on thurst") {
		t.Fatalf("apply: %v", err)
	}
	if done, why, _ := s.Check(context.Background(), te.Env); done || !strings.Contains(why, "thurst still holds") {
		t.Fatalf("check: %v %s", done, why)
	}
	thurst = addrBox(t, false, 0)
	te = newEnv(map[string]boxes.Runner{"thurst": thurst, "thermals": thermals})
	if err := s.Apply(context.Background(), te.Env); err != nil {
		t.Fatalf("released: %v", err)
	}
}

// Issue 13, item 2: after the take, the new box alone holds the address,
// announced, and no other machine answers ARP for it.
func TestVerifyAddress(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		dstHolds, srcHolds bool
		dad                int
		want               string
	}{
		"fine":              {true, false, 0, ""},
		"not taken":         {false, false, 0, "thermals does not hold 198.18.0.100"},
		"both hold it":      {true, true, 0, "thurst holds 198.18.0.100 too"},
		"another machine":   {true, false, 1, "another machine answers ARP for 198.18.0.100 (Unicast reply from 198.18.0.100 [AA:BB:CC:00:00:09]"},
		"no arping on dst ": {true, false, 127, "install arping"},
	} {
		dst := addrBox(t, tc.dstHolds, tc.dad)
		if tc.dad == 127 {
			dst.stub(t, "arping", "exit 127")
		}
		te := newEnv(map[string]boxes.Runner{"thermals": dst, "thurst": addrBox(t, tc.srcHolds, 0)})
		err := VerifyAddress("i", "thermals", "thurst", "198.18.0.100", "").Apply(ctx, te.Env)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
		// The address was taken: never "nothing was changed".
		if tc.want != "" && tc.dad != 127 && (!errors.Is(err, ErrHalted) || errors.Is(err, ErrPrecondition)) {
			t.Errorf("%s: %v is not ErrHalted", name, err)
		}
		if tc.want == "" && !strings.Contains(strings.Join(dst.cmds, "\n"), "arping -q -U -c 1 -I host0 198.18.0.100") {
			t.Errorf("%s: not announced: %q", name, dst.cmds)
		}
	}
}

// Issue 13, item 1: the check through the production address is proven
// answered by the new box: the MAC the old box reaches the address at is
// the new box's interface holding it.
func TestProductionCheckKnowsWhoAnswered(t *testing.T) {
	needCurl(t)
	port, ca := tlsSite(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "thermals 13 production") })
	p := CheckParams{Name: "example.com", Port: port, Path: "/", Status: 200, Text: "production", Timeout: time.Second, CA: ca, Poll: 100 * time.Millisecond}
	// The address is 198.18.0.100: curl reaches the test site through
	// --resolve only when Connect is loopback, so the stub ip answers for
	// 127.0.0.1 too.
	for _, tc := range []struct {
		neigh, want string
	}{
		{"aa:00:00:00:00:02", ""},
		{"aa:00:00:00:00:01", "but not by thermals: thurst reaches 127.0.0.1 at aa:00:00:00:00:01"},
	} {
		src, dst := newShRunner(t), newShRunner(t)
		src.stub(t, "ip", `echo "127.0.0.1 dev host0 lladdr `+tc.neigh+` REACHABLE"`)
		dst.stub(t, "ip", `case "$*" in
"-o link show dev host0") echo '2: host0@if7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\    link/ether aa:00:00:00:00:02 brd ff:ff:ff:ff:ff:ff link-netnsid 0' ;;
*) echo "2: host0    inet 127.0.0.1/8 scope host host0" ;;
esac`)
		te := newEnv(map[string]boxes.Runner{"thurst": src, "thermals": dst})
		s := ProductionCheck("redirect/check-production", "thurst", "thermals", "127.0.0.1", "redirect/stop-writers/thurst", p)
		err := s.Apply(context.Background(), te.Env)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("neighbour %s: %v, want %q", tc.neigh, err, tc.want)
		}
		if s.Describe().RevertTo != "redirect/stop-writers/thurst" {
			t.Errorf("RevertTo %q", s.Describe().RevertTo)
		}
	}
}

// Issue 13, item 3: the old box's running containers are stopped with
// its writers, listed, and started again by Undo; a docker daemon that
// is not running has none, and that is no error.
func TestStopWritersStopsContainers(t *testing.T) {
	ctx := context.Background()
	r := newShRunner(t)
	state := filepath.Join(r.dir, "containers")
	mustWrite(t, state, "0123456789ab jupyter-alice\n0123456789cd jupyter-bob\n")
	r.stub(t, "systemctl", `echo "systemctl $*" >> `+r.dir+`/log; case "$*" in "is-active --quiet"*) exit 3 ;; is-active*) echo inactive; exit 3 ;; esac`)
	r.stub(t, "podman", `echo "podman $*" >> `+r.dir+`/log; case "$1" in ps) cat `+state+` ;; stop) : > `+state+` ;; esac`)
	te := newEnv(map[string]boxes.Runner{"thurst": r})
	s := StopWriters("redirect/stop-writers/thurst", "thurst", []string{"nbh-monitor"}, "podman")
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	log := mustRead(t, filepath.Join(r.dir, "log"))
	if !strings.Contains(log, "systemctl stop -- nbh-monitor") || !strings.Contains(log, "podman stop -- 0123456789ab 0123456789cd") {
		t.Fatalf("sent:\n%s", log)
	}
	done, why, err := s.Check(ctx, te.Env)
	if !done || err != nil || !strings.Contains(why, "stopped: jupyter-alice, jupyter-bob") {
		t.Fatalf("check: %v %q %v", done, why, err)
	}
	if err := s.Undo(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if log := mustRead(t, filepath.Join(r.dir, "log")); !strings.Contains(log, "podman start -- 0123456789ab 0123456789cd") || !strings.Contains(log, "systemctl start -- nbh-monitor") {
		t.Fatalf("undo sent:\n%s", log)
	}
	// docker whose daemon is stopped: not asked (its socket would start
	// it), nothing running.
	r.stub(t, "docker", `echo "docker $*" >> `+r.dir+`/log; exit 1`)
	s = StopWriters("i", "thurst", nil, "docker")
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if done, _, err := s.Check(ctx, te.Env); !done || err != nil || strings.Contains(mustRead(t, filepath.Join(r.dir, "log")), "docker ") {
		t.Fatalf("docker stopped: %v %v; log:\n%s", done, err, mustRead(t, filepath.Join(r.dir, "log")))
	}
}

// The operator's stop ends app.check's wait between tries at once (an app
// that never answers would otherwise be polled until app.check.timeout),
// and no try starts after it.
func TestStopEndsTheAppCheckWait(t *testing.T) {
	needCurl(t)
	var tries atomic.Int32
	port, ca := tlsSite(t, func(w http.ResponseWriter, r *http.Request) {
		tries.Add(1)
		w.WriteHeader(502)
	})
	p := CheckParams{Name: "example.com", Port: port, Path: "/", Status: 200, Timeout: time.Hour,
		CA: ca, Connect: "127.0.0.1", Poll: 20 * time.Millisecond}
	te := newEnv(map[string]boxes.Runner{"thermals": newShRunner(t)})
	stop := make(chan struct{})
	ctx := boxes.WithStop(context.Background(), stop)
	done := make(chan error, 1)
	go func() { done <- AppCheck("redirect/check/thermals", "thermals", p).Apply(ctx, te.Env) }()
	for tries.Load() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the app check went on after the stop")
	}
	if !errors.Is(err, boxes.ErrStopped) || errors.Is(err, ErrPrecondition) {
		t.Errorf("Apply after the stop: %v, want boxes.ErrStopped", err)
	}
	n := tries.Load()
	time.Sleep(100 * time.Millisecond)
	if m := tries.Load(); m > n {
		t.Errorf("%d tries after the stop returned", m-n)
	}
}
