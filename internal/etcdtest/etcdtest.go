// Package etcdtest starts real etcd servers (Debian's etcd-server, the
// `etcd` binary on PATH) for tests: on loopback, each member with its own
// temporary data dir and free ports, stopped by PID when the test ends.
// Without the binary the test fails when BOXSWAP_ETCD_REQUIRED=1 (CI) and
// is skipped otherwise, saying how to install it.
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
}

// Binary returns the etcd server's path, failing or skipping t without it.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		msg := "no etcd binary: apt-get install etcd-server etcd-client (scripts/deps.sh)"
		if os.Getenv("BOXSWAP_ETCD_REQUIRED") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// Start starts a cluster of n members on loopback and waits until it
// answers.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	Binary(t)
	c := &Cluster{t: t}
	var initial []string
	for i := range n {
		m := &Member{Name: fmt.Sprintf("m%d", i), dir: t.TempDir()}
		m.Client, m.Peer = "http://"+freeAddr(t), "http://"+freeAddr(t)
		m.log = filepath.Join(m.dir, "etcd.log")
		initial = append(initial, m.Name+"="+m.Peer)
		c.Members = append(c.Members, m)
	}
	c.initial = strings.Join(initial, ",")
	t.Cleanup(c.Stop)
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
	m.cmd = exec.Command("etcd", "--name", m.Name, "--data-dir", filepath.Join(m.dir, "data"),
		"--listen-client-urls", m.Client, "--advertise-client-urls", m.Client,
		"--listen-peer-urls", m.Peer, "--initial-advertise-peer-urls", m.Peer,
		"--initial-cluster", c.initial, "--initial-cluster-state", state,
		"--initial-cluster-token", "boxswap-test",
		"--heartbeat-interval", "50", "--election-timeout", "500")
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
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
		hosts = append(hosts, strings.TrimPrefix(m.Client, "http://"))
	}
	return "etcd://" + strings.Join(hosts, ",") + "/" + strings.TrimPrefix(prefix, "/")
}

// Client is a client of the whole cluster, closed when the test ends.
func (c *Cluster) Client() *clientv3.Client {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// WaitReady waits until a write through every running member succeeds.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	cli := c.Client()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Put(ctx, "/etcdtest/ready", "1")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("etcd cluster not ready after 30s: %v\n%s", err, c.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Leader is the index of the current leader.
func (c *Cluster) Leader() int {
	c.t.Helper()
	cli := c.Client()
	for i, m := range c.Members {
		if !m.Running() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := cli.Status(ctx, m.Client)
		cancel()
		if err == nil && st.Leader == st.Header.MemberId {
			return i
		}
	}
	c.t.Fatal("etcd: no leader")
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
		if len(lines) > 10 {
			lines = lines[len(lines)-10:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", m.Name, strings.Join(lines, "\n"))
	}
	return b.String()
}
