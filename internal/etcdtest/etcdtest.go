// Package etcdtest starts real etcd servers (Debian's etcd-server, the
// `etcd` binary on PATH) for tests: on loopback by default, or inside the
// lab's network namespace (Options.Command), each member with its own
// temporary data dir and ports, stopped by PID when the test ends. Without
// the binary the test fails when BOXSWAP_ETCD_REQUIRED=1 or CI=true and is
// skipped otherwise, saying how to install it.
package etcdtest

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Member is one etcd server.
type Member struct {
	Name     string
	Client   string // http://127.0.0.1:PORT
	Peer     string
	dir, log string
	cmd      *exec.Cmd
	exited   chan struct{}
}

// Cluster is n members started together.
type Cluster struct {
	t       testing.TB
	Members []*Member
	initial string
	opts    Options
}

// Options place a cluster elsewhere than on this namespace's loopback.
type Options struct {
	// Host is the address the members listen on; 127.0.0.1 by default.
	Host string
	// BasePort, with Host, gives member i the client port BasePort+2i and
	// the peer port BasePort+2i+1; free loopback ports by default.
	BasePort int
	// Command makes the command that runs a program where the cluster
	// lives (the lab's h.Lab.Command: ip netns exec, which execs, so the
	// PID is the program's); exec.Command by default.
	Command func(name string, args ...string) *exec.Cmd
	// TLS, when set, serves the clients over TLS with this certificate
	// and key, asking for a client certificate signed by CA.
	TLS *TLSFiles
}

// TLSFiles are PEM files for a member's client port.
type TLSFiles struct{ CA, Cert, Key string }

// Require fails or skips t without the etcd server or without etcdctl
// (which WaitReady, Leader and Ctl run).
func Require(t testing.TB) {
	t.Helper()
	_, err := exec.LookPath("etcd")
	if err == nil {
		_, err = exec.LookPath("etcdctl")
	}
	if err != nil {
		msg := "no etcd or etcdctl binary: apt-get install etcd-server etcd-client (scripts/deps.sh)"
		if os.Getenv("BOXSWAP_ETCD_REQUIRED") == "1" || os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// Start starts a cluster of n members on loopback and waits until it
// answers.
func Start(t testing.TB, n int) *Cluster { return StartWith(t, n, Options{}) }

// StartWith is Start placed by o.
func StartWith(t testing.TB, n int, o Options) *Cluster {
	t.Helper()
	Require(t)
	if o.Command == nil {
		o.Command = exec.Command
	}
	c := &Cluster{t: t, opts: o}
	var initial []string
	for i := range n {
		m := &Member{Name: fmt.Sprintf("m%d", i), dir: t.TempDir()}
		scheme := "http://"
		if o.TLS != nil {
			scheme = "https://"
		}
		if o.BasePort != 0 {
			m.Client = fmt.Sprintf("%s%s:%d", scheme, o.Host, o.BasePort+2*i)
			m.Peer = fmt.Sprintf("http://%s:%d", o.Host, o.BasePort+2*i+1)
		} else {
			m.Client, m.Peer = scheme+freeAddr(t), "http://"+freeAddr(t)
		}
		m.log = filepath.Join(m.dir, "etcd.log")
		initial = append(initial, m.Name+"="+m.Peer)
		c.Members = append(c.Members, m)
	}
	c.initial = strings.Join(initial, ",")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("etcd members' logs:\n%s", c.Logs())
		}
		c.Stop()
	})
	for _, m := range c.Members {
		c.start(m, "new")
	}
	c.WaitReady()
	return c
}

// freeAddr is a free loopback TCP address (a port the kernel chose, then
// released: etcd binds it a moment later).
func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (c *Cluster) start(m *Member, state string) {
	c.t.Helper()
	logf, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	defer logf.Close()
	args := []string{"--name", m.Name, "--data-dir", filepath.Join(m.dir, "data"),
		"--listen-client-urls", m.Client, "--advertise-client-urls", m.Client,
		"--listen-peer-urls", m.Peer, "--initial-advertise-peer-urls", m.Peer,
		"--initial-cluster", c.initial, "--initial-cluster-state", state,
		"--initial-cluster-token", "boxswap-test",
		"--heartbeat-interval", "50", "--election-timeout", "500"}
	if t := c.opts.TLS; t != nil {
		args = append(args, "--cert-file", t.Cert, "--key-file", t.Key, "--trusted-ca-file", t.CA, "--client-cert-auth")
	}
	m.cmd = c.opts.Command("etcd", args...)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := startFromSpawner(m.cmd); err != nil {
		c.t.Fatalf("start etcd %s: %v", m.Name, err)
	}
	m.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { _ = cmd.Wait(); close(exited) }(m.cmd, m.exited)
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.Client)
	}
	return eps
}

// URL is the cluster as --state names it, with prefix.
func (c *Cluster) URL(prefix string) string {
	var hosts []string
	for _, m := range c.Members {
		hosts = append(hosts, strings.TrimPrefix(strings.TrimPrefix(m.Client, "http://"), "https://"))
	}
	return "etcd://" + strings.Join(hosts, ",") + "/" + strings.TrimPrefix(prefix, "/")
}

// Client is a client of the whole cluster, closed when the test ends; only
// for a cluster in this process's network namespace.
func (c *Cluster) Client() *clientv3.Client {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// Ctl runs etcdctl against the running members, where the cluster lives.
func (c *Cluster) Ctl(args ...string) (string, error) {
	var eps []string
	for _, m := range c.Members {
		if m.Running() {
			eps = append(eps, m.Client)
		}
	}
	full := []string{"--endpoints=" + strings.Join(eps, ","), "--command-timeout=2s", "--dial-timeout=1s"}
	if t := c.opts.TLS; t != nil {
		// The server's own certificate serves as the client's: it is
		// signed by the same CA.
		full = append(full, "--cacert="+t.CA, "--cert="+t.Cert, "--key="+t.Key)
	}
	full = append(full, args...)
	cmd := c.opts.Command("etcdctl", full...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// WaitReady waits until a write through the running members succeeds.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.Ctl("put", "/etcdtest/ready", "1")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("etcd cluster not ready after 30s: %v: %s\n%s", err, out, c.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Leader is the index of the current leader among the running members.
func (c *Cluster) Leader() int {
	c.t.Helper()
	out, err := c.Ctl("endpoint", "status", "-w", "json")
	if err != nil {
		c.t.Fatalf("etcdctl endpoint status: %v: %s", err, out)
	}
	var st []struct {
		Endpoint string
		Status   struct {
			Header struct {
				MemberID uint64 `json:"member_id"`
			} `json:"header"`
			Leader uint64 `json:"leader"`
		}
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		c.t.Fatalf("etcdctl endpoint status: %v: %s", err, out)
	}
	for _, e := range st {
		if e.Status.Header.MemberID != e.Status.Leader || e.Status.Leader == 0 {
			continue
		}
		for i, m := range c.Members {
			if m.Client == e.Endpoint {
				return i
			}
		}
	}
	c.t.Fatalf("etcd: no leader in %s", out)
	return -1
}

// Running reports whether the member's process runs.
func (m *Member) Running() bool {
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// Kill stops member i with sig, by its PID, and waits for it to exit.
func (c *Cluster) Kill(i int, sig syscall.Signal) {
	m := c.Members[i]
	if !m.Running() {
		return
	}
	_ = m.cmd.Process.Signal(sig)
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
}

// Restart starts member i again on its data dir.
func (c *Cluster) Restart(i int) { c.start(c.Members[i], "existing") }

// Stop stops every member (SIGTERM, then SIGKILL) by PID.
func (c *Cluster) Stop() {
	for i := range c.Members {
		c.Kill(i, syscall.SIGTERM)
	}
}

// Logs are the members' logs' last lines, for a failure message.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, m := range c.Members {
		data, _ := os.ReadFile(m.log)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", m.Name, strings.Join(lines, "\n"))
	}
	return b.String()
}

// The members get SIGKILL when the test process dies (Pdeathsig), so that
// a test killed by its timeout leaves no server behind. Linux sends it when
// the *thread* that forked them ends, not the process: the lab ends
// threads it moved into a box's network namespace (a goroutine locked to
// its thread that returns), which killed members forked from such a
// thread. So every member is forked from one goroutine locked to its
// thread for the life of the process.
var (
	spawnOnce sync.Once
	spawnReq  chan spawnJob
)

type spawnJob struct {
	cmd  *exec.Cmd
	done chan error
}

func startFromSpawner(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReq = make(chan spawnJob)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread lives as long as the process
			for j := range spawnReq {
				j.done <- j.cmd.Start()
			}
		}()
	})
	j := spawnJob{cmd: cmd, done: make(chan error, 1)}
	spawnReq <- j
	return <-j.done
}
