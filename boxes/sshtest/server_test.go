package sshtest_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"boxswap/boxes/sshtest"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func dial(t *testing.T, s *sshtest.Server) *ssh.Client {
	t.Helper()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	s.WriteKnownHosts(kh)
	cb, err := knownhosts.New(kh)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", s.Addr(), &ssh.ClientConfig{
		User:            "tester",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.ClientSigner())},
		HostKeyCallback: cb,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func run(t *testing.T, c *ssh.Client, cmd string) (string, error) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errOut bytes.Buffer
	s.Stdout, s.Stderr = &out, &errOut
	err = s.Run(cmd)
	if errOut.Len() > 0 {
		t.Logf("%s: stderr: %s", cmd, errOut.String())
	}
	return out.String(), err
}

func TestShellHandlerAndRecord(t *testing.T) {
	dir := t.TempDir()
	s := sshtest.New(t, sshtest.Dir(dir), sshtest.Env("SSHTEST_X=42"),
		sshtest.Handler(func(cmd string, stdout, stderr io.Writer) (int, bool) {
			if cmd == "scripted" {
				fmt.Fprint(stdout, "answer")
				return 7, true
			}
			return 0, false
		}))
	c := dial(t, s)
	out, err := run(t, c, `pwd; echo "$SSHTEST_X"`)
	if err != nil || out != dir+"\n42\n" {
		t.Errorf("shell: %q, %v", out, err)
	}
	out, err = run(t, c, "scripted")
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 7 || out != "answer" {
		t.Errorf("handler: %q, %v", out, err)
	}
	if got := strings.Join(s.Commands(), "|"); got != `pwd; echo "$SSHTEST_X"|scripted` {
		t.Errorf("commands %q", got)
	}
	if got := s.Logins(); len(got) != 1 || got[0] != "tester" {
		t.Errorf("logins %q", got)
	}
	// Keepalives are answered (with false, as OpenSSH does).
	if ok, _, err := c.SendRequest("keepalive@openssh.com", true, nil); ok || err != nil {
		t.Errorf("keepalive: %v, %v", ok, err)
	}
}

func TestIdentityFileAndUnauthorizedKey(t *testing.T) {
	s := sshtest.New(t)
	path := filepath.Join(t.TempDir(), "id")
	s.WriteIdentity(path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil || !bytes.Equal(signer.PublicKey().Marshal(), s.ClientSigner().PublicKey().Marshal()) {
		t.Fatalf("identity file does not hold the client key: %v", err)
	}
	other := sshtest.New(t)
	_, err = ssh.Dial("tcp", s.Addr(), &ssh.ClientConfig{
		User:            "x",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(other.ClientSigner())},
		HostKeyCallback: ssh.FixedHostKey(s.HostPublicKey()),
	})
	if err == nil {
		t.Fatal("an unauthorized key was accepted")
	}
}

func TestDirectTCPIPLoopbackOnly(t *testing.T) {
	target := sshtest.New(t)
	c := dial(t, sshtest.New(t))
	conn, err := c.Dial("tcp", target.Addr())
	if err != nil {
		t.Fatal(err)
	}
	banner := make([]byte, 4)
	if _, err := io.ReadFull(conn, banner); err != nil || string(banner) != "SSH-" {
		t.Errorf("forwarded banner %q, %v", banner, err)
	}
	conn.Close()
	// 192.0.2.1 is TEST-NET-1: refused by the server before any dial.
	if conn, err := c.Dial("tcp", "192.0.2.1:22"); err == nil {
		conn.Close()
		t.Error("a non-loopback target was forwarded")
	}
}

func TestStopRestartSamePort(t *testing.T) {
	s := sshtest.New(t)
	port := s.Port()
	dial(t, s)
	s.Stop()
	if c, err := net.Dial("tcp", s.Addr()); err == nil {
		c.Close()
		t.Fatal("stopped server still accepts")
	}
	s.Restart()
	if s.Port() != port {
		t.Fatalf("port %d after restart, want %d", s.Port(), port)
	}
	c := dial(t, s)
	if out, err := run(t, c, "echo up"); err != nil || out != "up\n" {
		t.Errorf("after restart: %q, %v", out, err)
	}
	if s.Connections() != 2 {
		t.Errorf("%d connections, want 2", s.Connections())
	}
}
