package boxes

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"boxswap/boxes/sshtest"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// lab is one or more sshtest servers with the files a Config points at.
type lab struct {
	dir        string
	knownHosts string
	identity   string
	cfg        *Config
}

// newLab makes a Config with one box, thermals, on srv: its known_hosts
// line and its client key as the identity file.
func newLab(t *testing.T, srv *sshtest.Server) *lab {
	t.Helper()
	dir := t.TempDir()
	l := &lab{dir: dir, knownHosts: filepath.Join(dir, "known_hosts"), identity: filepath.Join(dir, "id_ed25519")}
	srv.WriteKnownHosts(l.knownHosts)
	srv.WriteIdentity(l.identity)
	l.cfg = &Config{
		File: filepath.Join(dir, "boxes.yaml"),
		Boxes: []Box{
			{Name: "thermals", Host: srv.Host(), Port: Port(srv.Port()), User: "root", Function: Development},
		},
		SSH: SSH{
			KnownHosts:     l.knownHosts,
			Identity:       l.identity,
			ConnectTimeout: 10 * time.Second,
		},
	}
	return l
}

// dialer builds a Dialer without the agent of whoever runs the tests.
func (l *lab) dialer(t *testing.T, opts ...DialOption) *Dialer {
	t.Helper()
	d := NewDialer(l.cfg, append([]DialOption{WithAgentSocket("")}, opts...)...)
	t.Cleanup(func() { d.Close() })
	return d
}

func runner(t *testing.T, d *Dialer, name string) Runner {
	t.Helper()
	r, err := d.Runner(name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func testCtx(t *testing.T) context.Context {
	// A bound so a broken test fails instead of hanging; never asserted on.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func appendLine(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
}

func TestRunOutputAndExitStatus(t *testing.T) {
	srv := sshtest.New(t)
	l := newLab(t, srv)
	r := runner(t, l.dialer(t), "thermals")
	ctx := testCtx(t)

	cases := []struct {
		cmd            string
		exit           int
		stdout, stderr string
	}{
		{"echo out; echo err >&2", 0, "out\n", "err\n"},
		{"echo partial; exit 3", 3, "partial\n", ""},
		{"printf %s " + Quote("it's quoted; $HOME"), 0, "it's quoted; $HOME", ""},
		{"kill -KILL $$", 128 + 9, "", ""},
	}
	var want []string
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		exit, err := r.Run(ctx, c.cmd, &stdout, &stderr)
		if err != nil {
			t.Fatalf("%q: %v", c.cmd, err)
		}
		if exit != c.exit || stdout.String() != c.stdout || stderr.String() != c.stderr {
			t.Errorf("%q: exit %d stdout %q stderr %q; want %d %q %q",
				c.cmd, exit, stdout.String(), stderr.String(), c.exit, c.stdout, c.stderr)
		}
		want = append(want, c.cmd)
	}
	if got := srv.Commands(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("server received %q, want %q", got, want)
	}
	// One writer for both streams is safe.
	var both bytes.Buffer
	if _, err := r.Run(ctx, "for i in 1 2 3 4 5; do echo o$i; echo e$i >&2; done", &both, &both); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(both.String(), "\n"); n != 10 {
		t.Errorf("combined output %q: %d lines, want 10", both.String(), n)
	}
	// nil writers discard.
	if exit, err := r.Run(ctx, "echo ignored", nil, nil); err != nil || exit != 0 {
		t.Errorf("nil writers: exit %d, %v", exit, err)
	}
}

// signalWriter closes seen once it has received want.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	once sync.Once
	seen chan struct{}
	hook func()
}

func newSignalWriter(want string, hook func()) *signalWriter {
	return &signalWriter{want: want, seen: make(chan struct{}), hook: hook}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf.Write(p)
	hit := strings.Contains(w.buf.String(), w.want)
	w.mu.Unlock()
	if hit {
		w.once.Do(func() {
			close(w.seen)
			if w.hook != nil {
				w.hook()
			}
		})
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// The command only finishes once the test has seen its first line, so it
// passes only if output streams while the command runs.
func TestRunStreamsOutput(t *testing.T) {
	srvDir := t.TempDir()
	srv := sshtest.New(t, sshtest.Dir(srvDir))
	r := runner(t, newLab(t, srv).dialer(t), "thermals")
	w := newSignalWriter("first\n", func() {
		os.WriteFile(filepath.Join(srvDir, "go-on"), nil, 0o600)
	})
	exit, err := r.Run(testCtx(t), "echo first; while [ ! -e go-on ]; do sleep 0.01; done; echo second", w, nil)
	if err != nil || exit != 0 {
		t.Fatalf("exit %d, %v", exit, err)
	}
	if w.String() != "first\nsecond\n" {
		t.Errorf("stdout %q", w.String())
	}
}

func TestOneConnectionForAllCommands(t *testing.T) {
	srv := sshtest.New(t)
	r := runner(t, newLab(t, srv).dialer(t), "thermals")
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			exit, err := r.Run(ctx, fmt.Sprintf("echo %d", i), &out, nil)
			if err == nil && (exit != 0 || out.String() != fmt.Sprintf("%d\n", i)) {
				err = fmt.Errorf("command %d: exit %d output %q", i, exit, out.String())
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := srv.Connections(); n != 1 {
		t.Errorf("%d connections for 20 commands, want 1", n)
	}
	if n := len(srv.Commands()); n != 20 {
		t.Errorf("server got %d commands, want 20", n)
	}
}

func TestDropMidCommandIsOutcomeUnknown(t *testing.T) {
	srv := sshtest.New(t, sshtest.DropAfter("drop-me"))
	r := runner(t, newLab(t, srv).dialer(t), "thermals")
	ctx := testCtx(t)
	if _, err := r.Run(ctx, "true", nil, nil); err != nil {
		t.Fatal(err)
	}
	exit, err := r.Run(ctx, "echo started; sleep 30 # drop-me", nil, nil)
	if !errors.Is(err, ErrOutcomeUnknown) || errors.Is(err, ErrUnreachable) {
		t.Fatalf("exit %d, err %v; want ErrOutcomeUnknown only", exit, err)
	}
	if !strings.HasPrefix(err.Error(), "thermals: ssh: ") || !strings.Contains(err.Error(), "connection lost") {
		t.Errorf("error %q does not name the box and the lost connection", err)
	}
	// The next command reconnects.
	var out bytes.Buffer
	if exit, err := r.Run(ctx, "echo again", &out, nil); err != nil || exit != 0 || out.String() != "again\n" {
		t.Fatalf("after drop: exit %d, %v, %q", exit, err, out.String())
	}
	if n := srv.Connections(); n != 2 {
		t.Errorf("%d connections, want 2 (one redial)", n)
	}
}

func TestNoExitStatusIsOutcomeUnknown(t *testing.T) {
	srv := sshtest.New(t, sshtest.NoExitStatus("mute"))
	r := runner(t, newLab(t, srv).dialer(t), "thermals")
	ctx := testCtx(t)
	var out bytes.Buffer
	_, err := r.Run(ctx, "echo done # mute", &out, nil)
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err %v, want ErrOutcomeUnknown", err)
	}
	if !strings.Contains(err.Error(), "no exit status") {
		t.Errorf("error %q does not say the status is missing", err)
	}
	if out.String() != "done\n" {
		t.Errorf("output %q", out.String())
	}
	if exit, err := r.Run(ctx, "exit 4", nil, nil); err != nil || exit != 4 {
		t.Fatalf("next run: exit %d, %v", exit, err)
	}
}

func TestReconnectAfterCutBetweenCommands(t *testing.T) {
	srv := sshtest.New(t)
	r := runner(t, newLab(t, srv).dialer(t), "thermals")
	ctx := testCtx(t)
	for i := range 3 {
		if exit, err := r.Run(ctx, "true", nil, nil); err != nil || exit != 0 {
			t.Fatalf("run %d: exit %d, %v", i, exit, err)
		}
		srv.CloseAll()
	}
	if n := srv.Connections(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
}

func TestBoxDownThenUp(t *testing.T) {
	srv := sshtest.New(t)
	r := runner(t, newLab(t, srv).dialer(t), "thermals")
	ctx := testCtx(t)
	if _, err := r.Run(ctx, "true", nil, nil); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	_, err := r.Run(ctx, "true", nil, nil)
	if !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("box down: %v, want ErrUnreachable only", err)
	}
	srv.Restart()
	if exit, err := r.Run(ctx, "exit 0", nil, nil); err != nil || exit != 0 {
		t.Fatalf("box up again: exit %d, %v", exit, err)
	}
}

func TestUnreachableClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	srv := sshtest.New(t)
	l := newLab(t, srv)
	l.cfg.Boxes[0].Port = Port(port)
	_, err = runner(t, l.dialer(t), "thermals").Run(testCtx(t), "true", nil, nil)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err %v, want ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d", port)) {
		t.Errorf("error %q does not name the address", err)
	}
}

// A server that accepts TCP but never speaks SSH: the connect timeout ends
// the handshake.
func TestHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	srv := sshtest.New(t)
	l := newLab(t, srv)
	l.cfg.Boxes[0].Port = Port(ln.Addr().(*net.TCPAddr).Port)
	l.cfg.SSH.ConnectTimeout = 50 * time.Millisecond
	_, err = runner(t, l.dialer(t), "thermals").Run(testCtx(t), "true", nil, nil)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "connect_timeout") {
		t.Fatalf("err %v, want ErrUnreachable naming connect_timeout", err)
	}
}

func TestUnknownHostKey(t *testing.T) {
	srv := sshtest.New(t)
	l := newLab(t, srv)
	other := sshtest.New(t)
	// known_hosts knows another server, not this one.
	other.WriteKnownHosts(l.knownHosts)
	d := l.dialer(t)
	_, err := runner(t, d, "thermals").Run(testCtx(t), "touch pwned", nil, nil)
	if !errors.Is(err, ErrUnknownHostKey) || !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrHostKeyChanged) {
		t.Fatalf("err %v, want ErrUnknownHostKey and ErrUnreachable", err)
	}
	fp := ssh.FingerprintSHA256(srv.HostPublicKey())
	for _, want := range []string{"thermals: ssh: ", fp, fmt.Sprintf("ssh-keyscan -p %d 127.0.0.1 >> %s", srv.Port(), l.knownHosts)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	var he *HostKeyError
	if !errors.As(err, &he) || he.Fingerprint() != fp {
		t.Errorf("no HostKeyError with fingerprint %s in %v", fp, err)
	}
	if cmds := srv.Commands(); len(cmds) != 0 {
		t.Errorf("commands ran on an unverified box: %q", cmds)
	}
	if _, err := d.HostKeyCheck(testCtx(t), "thermals"); !errors.Is(err, ErrUnknownHostKey) {
		t.Errorf("HostKeyCheck: %v, want ErrUnknownHostKey", err)
	}
}

func TestChangedHostKey(t *testing.T) {
	srv := sshtest.New(t)
	l := newLab(t, srv)
	_, old, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	oldPub, err := ssh.NewPublicKey(old.Public())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(l.knownHosts, []byte("# boxes\n"+sshtest.KnownHostsLine(fmt.Sprintf("[127.0.0.1]:%d", srv.Port()), oldPub)+"\n"), 0o600)
	_, err = runner(t, l.dialer(t), "thermals").Run(testCtx(t), "touch pwned", nil, nil)
	if !errors.Is(err, ErrHostKeyChanged) || !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrUnknownHostKey) {
		t.Fatalf("err %v, want ErrHostKeyChanged and ErrUnreachable", err)
	}
	for _, want := range []string{l.knownHosts + ":2", ssh.FingerprintSHA256(srv.HostPublicKey()), "ssh-keygen -R"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if cmds := srv.Commands(); len(cmds) != 0 {
		t.Errorf("commands ran on a box with a changed key: %q", cmds)
	}
}

func TestECDSAAndEd25519ServerAgainstEd25519KnownHosts(t *testing.T) {
	srv := sshtest.New(t, sshtest.ECDSA())
	l := newLab(t, srv)

	// The fixture does trip a client that does not pick the algorithm from
	// known_hosts: x/crypto prefers ECDSA and reports a mismatch.
	cb, err := knownhosts.New(l.knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	naive, err := ssh.Dial("tcp", srv.Addr(), &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(srv.ClientSigner())},
		HostKeyCallback: cb.HostKeyCallback(),
	})
	if err == nil {
		naive.Close()
		t.Fatal("a client with default host key algorithms connected; the fixture does not offer ECDSA first")
	}

	d := l.dialer(t)
	var out bytes.Buffer
	if exit, err := runner(t, d, "thermals").Run(testCtx(t), "echo ok", &out, nil); err != nil || exit != 0 || out.String() != "ok\n" {
		t.Fatalf("exit %d, %v, %q", exit, err, out.String())
	}
	fp, err := d.HostKeyCheck(testCtx(t), "thermals")
	if err != nil || fp != ssh.FingerprintSHA256(srv.HostPublicKey()) {
		t.Fatalf("HostKeyCheck: %q, %v; want the ed25519 key %s", fp, err, ssh.FingerprintSHA256(srv.HostPublicKey()))
	}
}

func TestMissingKnownHosts(t *testing.T) {
	srv := sshtest.New(t)
	l := newLab(t, srv)
	l.cfg.SSH.KnownHosts = filepath.Join(l.dir, "nowhere", "known_hosts")
	_, err := runner(t, l.dialer(t), "thermals").Run(testCtx(t), "true", nil, nil)
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err %v, want ErrUnreachable and ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), l.cfg.SSH.KnownHosts) {
		t.Errorf("error %q does not name the file", err)
	}
	if srv.Connections() != 0 {
		t.Error("connected without a known_hosts file")
	}
}

func TestHostKeyCheckNeedsNoAuth(t *testing.T) {
	srv := sshtest.New(t)
	l := newLab(t, srv)
	l.cfg.SSH.Identity = ""
	fp, err := l.dialer(t).HostKeyCheck(testCtx(t), "thermals")
	if err != nil || fp != ssh.FingerprintSHA256(srv.HostPublicKey()) {
		t.Fatalf("HostKeyCheck: %q, %v", fp, err)
	}
}

func TestCancelMidCommand(t *testing.T) {
	srvDir := t.TempDir()
	srv := sshtest.New(t, sshtest.Dir(srvDir))
	r := runner(t, newLab(t, srv).dialer(t), "thermals")
	ctx, cancel := context.WithCancel(testCtx(t))
	w := newSignalWriter("started", cancel)
	exit, err := r.Run(ctx, "echo started; sleep 30; touch finished", w, nil)
	if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, context.Canceled) {
		t.Fatalf("exit %d, err %v; want ErrOutcomeUnknown and context.Canceled", exit, err)
	}
	// The box stays usable, and the cancelled command was stopped.
	if exit, err := r.Run(testCtx(t), "true", nil, nil); err != nil || exit != 0 {
		t.Fatalf("after cancel: exit %d, %v", exit, err)
	}
	if _, err := os.Stat(filepath.Join(srvDir, "finished")); err == nil {
		t.Error("the cancelled command ran to its end")
	}
}

func TestCancelledBeforeStartIsUnreachable(t *testing.T) {
	srv := sshtest.New(t)
	r := runner(t, newLab(t, srv).dialer(t), "thermals")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.Run(ctx, "true", nil, nil)
	if !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err %v, want ErrUnreachable only", err)
	}
	if len(srv.Commands()) != 0 {
		t.Error("command sent after cancel")
	}
}

func TestKeepaliveAnsweredKeepsConnection(t *testing.T) {
	srv := sshtest.New(t)
	l := newLab(t, srv)
	l.cfg.SSH.Keepalive = 10 * time.Millisecond
	r := runner(t, l.dialer(t), "thermals")
	if exit, err := r.Run(testCtx(t), "sleep 0.3; exit 2", nil, nil); err != nil || exit != 2 {
		t.Fatalf("exit %d, %v", exit, err)
	}
	if _, err := r.Run(testCtx(t), "true", nil, nil); err != nil {
		t.Fatal(err)
	}
	if n := srv.Connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestKeepaliveUnansweredEndsCommand(t *testing.T) {
	srv := sshtest.New(t, sshtest.NoKeepaliveReply())
	l := newLab(t, srv)
	l.cfg.SSH.Keepalive = 20 * time.Millisecond
	_, err := runner(t, l.dialer(t), "thermals").Run(testCtx(t), "sleep 30", nil, nil)
	if !errors.Is(err, ErrOutcomeUnknown) || !strings.Contains(err.Error(), "keepalives") {
		t.Fatalf("err %v, want ErrOutcomeUnknown naming the keepalives", err)
	}
}

func TestUnknownBox(t *testing.T) {
	srv := sshtest.New(t)
	_, err := newLab(t, srv).dialer(t).Runner("thurst")
	if err == nil || !strings.Contains(err.Error(), "thermals") {
		t.Fatalf("err %v, want one listing the boxes", err)
	}
}

func TestSSHConfigAlias(t *testing.T) {
	srv := sshtest.New(t)
	l := newLab(t, srv)
	conf := filepath.Join(l.dir, "ssh_config")
	os.WriteFile(conf, []byte(fmt.Sprintf(`Host other
  User nobody
Host dev-box
  HostName 127.0.0.1
  Port %d
  User deploy
  IdentityFile %s
`, srv.Port(), l.identity)), 0o600)
	l.cfg.SSH.Config = conf
	l.cfg.SSH.Identity = ""
	l.cfg.Boxes[0].Host = "dev-box"
	l.cfg.Boxes[0].Port = 22
	var out bytes.Buffer
	if exit, err := runner(t, l.dialer(t), "thermals").Run(testCtx(t), "echo hi", &out, nil); err != nil || exit != 0 {
		t.Fatalf("exit %d, %v", exit, err)
	}
	if got := srv.Logins(); len(got) != 1 || got[0] != "deploy" {
		t.Errorf("logins %q, want [deploy]", got)
	}
}

func TestResolveEndpoint(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "config")
	os.WriteFile(conf, []byte(`Host alias
  HostName 10.1.2.3
  Port 2222
  User deploy
  IdentityFile ~/.ssh/alias_key
  IdentityFile /keys/%h_%r
Host jumped
  HostName 127.0.0.5
  ProxyJump admin@bastion:2201
Host bastion
  HostName 127.0.0.9
  User ignored
Host twohops
  ProxyJump a,b
`), 0o600)
	sc, err := loadSSHConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	home, _ := os.UserHomeDir()
	cases := []struct {
		name string
		box  Box
		want string // Endpoint.String()
		ids  []string
		err  string
	}{
		{"alias applies over defaults", Box{Name: "b", Host: "alias", Port: 22, User: "root"}, "deploy@10.1.2.3:2222",
			[]string{"/id", home + "/.ssh/alias_key", "/keys/10.1.2.3_deploy"}, ""},
		{"explicit port and user win", Box{Name: "b", Host: "alias", Port: 2200, User: "ops"}, "ops@10.1.2.3:2200",
			[]string{"/id", home + "/.ssh/alias_key", "/keys/10.1.2.3_ops"}, ""},
		{"unset port and user", Box{Name: "b", Host: "plain.example"}, "root@plain.example:22", []string{"/id"}, ""},
		{"proxy jump", Box{Name: "b", Host: "jumped", Port: 22, User: "root"}, "root@127.0.0.5:22 via admin@127.0.0.9:2201", []string{"/id"}, ""},
		{"two hops refused", Box{Name: "b", Host: "twohops"}, "", nil, "several hops"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ep, err := resolveEndpoint(c.box, "/id", sc)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ep.String() != c.want || strings.Join(ep.Identities, " ") != strings.Join(c.ids, " ") {
				t.Errorf("got %s %q, want %s %q", ep, ep.Identities, c.want, c.ids)
			}
		})
	}
	if sc, err := loadSSHConfig(filepath.Join(dir, "absent")); sc != nil || err != nil {
		t.Errorf("missing ssh config: %v, %v; want none, no error", sc, err)
	}
}

func TestProxyJump(t *testing.T) {
	jump := sshtest.New(t)
	target := sshtest.New(t)
	target.Authorize(jump.ClientSigner().PublicKey())
	l := newLab(t, target)
	jump.WriteIdentity(l.identity)
	appendLine(t, l.knownHosts, jump.HostKeyLine(""))
	conf := filepath.Join(l.dir, "ssh_config")
	os.WriteFile(conf, []byte(fmt.Sprintf("Host thermals.lab\n  HostName 127.0.0.1\n  Port %d\n  ProxyJump hopper@127.0.0.1:%d\n",
		target.Port(), jump.Port())), 0o600)
	l.cfg.SSH.Config = conf
	l.cfg.Boxes[0].Host = "thermals.lab"
	l.cfg.Boxes[0].Port = 22

	d := l.dialer(t)
	var out bytes.Buffer
	if exit, err := runner(t, d, "thermals").Run(testCtx(t), "echo via", &out, nil); err != nil || exit != 0 || out.String() != "via\n" {
		t.Fatalf("exit %d, %v, %q", exit, err, out.String())
	}
	if got := jump.Logins(); len(got) != 1 || got[0] != "hopper" {
		t.Errorf("jump logins %q, want [hopper]", got)
	}
	if n := len(jump.Commands()); n != 0 {
		t.Errorf("jump host ran %d commands", n)
	}
	if got := target.Commands(); len(got) != 1 || got[0] != "echo via" {
		t.Errorf("target commands %q", got)
	}

	// The jump host's key is checked too.
	target.WriteKnownHosts(l.knownHosts)
	d2 := l.dialer(t)
	_, err := runner(t, d2, "thermals").Run(testCtx(t), "true", nil, nil)
	if !errors.Is(err, ErrUnknownHostKey) || !strings.Contains(err.Error(), "jump host") {
		t.Fatalf("unknown jump host key: %v", err)
	}
}

func TestAgentAuth(t *testing.T) {
	srv := sshtest.New(t)
	l := newLab(t, srv)
	l.cfg.SSH.Identity = filepath.Join(l.dir, "absent_key") // skipped: the agent has the key
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: srv.ClientKey()}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				agent.ServeAgent(keyring, c)
				c.Close()
			}()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	d := NewDialer(l.cfg) // the agent from the environment
	t.Cleanup(func() { d.Close() })
	if exit, err := runner(t, d, "thermals").Run(testCtx(t), "true", nil, nil); err != nil || exit != 0 {
		t.Fatalf("exit %d, %v", exit, err)
	}
}

func TestEncryptedIdentityWithoutAgent(t *testing.T) {
	srv := sshtest.New(t)
	l := newLab(t, srv)
	srv.WriteEncryptedIdentity(l.identity, "secret")
	_, err := runner(t, l.dialer(t), "thermals").Run(testCtx(t), "true", nil, nil)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err %v, want ErrUnreachable", err)
	}
	for _, want := range []string{l.identity, "passphrase", "ssh-add"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestWrongKeyRefused(t *testing.T) {
	srv := sshtest.New(t)
	l := newLab(t, srv)
	sshtest.New(t).WriteIdentity(l.identity) // another server's client key
	_, err := runner(t, l.dialer(t), "thermals").Run(testCtx(t), "true", nil, nil)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "authorized_keys") {
		t.Fatalf("err %v, want ErrUnreachable with an authorized_keys hint", err)
	}
}

// Steps may run commands on both boxes at once.
func TestTwoBoxesConcurrently(t *testing.T) {
	a, b := sshtest.New(t), sshtest.New(t)
	l := newLab(t, a)
	b.Authorize(a.ClientSigner().PublicKey())
	appendLine(t, l.knownHosts, b.HostKeyLine(""))
	l.cfg.Boxes = append(l.cfg.Boxes, Box{Name: "thurst", Host: b.Host(), Port: Port(b.Port()), User: "root", Function: Production})
	d := l.dialer(t)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for _, name := range []string{"thermals", "thurst", "thermals", "thurst"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			if exit, err := runner(t, d, name).Run(ctx, "echo "+Quote(name), &out, nil); err != nil || exit != 0 || out.String() != name+"\n" {
				t.Errorf("%s: exit %d, %v, %q", name, exit, err, out.String())
			}
		}()
	}
	wg.Wait()
	if a.Connections() != 1 || b.Connections() != 1 {
		t.Errorf("connections %d and %d, want 1 each", a.Connections(), b.Connections())
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Runner("thermals"); err == nil {
		t.Error("Runner after Close succeeded")
	}
}
