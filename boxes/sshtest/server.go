package sshtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// HandlerFunc answers a command instead of the shell: it writes the
// command's output and returns its exit status, or handled=false to let the
// shell run it.
type HandlerFunc func(cmd string, stdout, stderr io.Writer) (exit int, handled bool)

// Option configures a Server.
type Option func(*Server)

// ECDSA makes the server offer an ECDSA P-256 host key besides its ed25519
// one. The known_hosts line (HostKeyLine) stays the ed25519 one.
func ECDSA() Option {
	return func(s *Server) { s.ecdsa = true }
}

// Dir sets the folder commands run in (default: a t.TempDir()).
func Dir(dir string) Option {
	return func(s *Server) { s.dir = dir }
}

// Env adds "KEY=value" entries to the commands' environment.
func Env(kv ...string) Option {
	return func(s *Server) { s.env = append(s.env, kv...) }
}

// DropAfter closes the TCP connection while a command containing substr
// runs: after its first output, or when it ends if it prints nothing. The
// exit status is never sent.
func DropAfter(substr string) Option {
	return func(s *Server) { s.dropAfter = append(s.dropAfter, substr) }
}

// NoExitStatus closes the channel of a command containing substr when it
// ends, without sending its exit status.
func NoExitStatus(substr string) Option {
	return func(s *Server) { s.noExit = append(s.noExit, substr) }
}

// Handler scripts answers; commands it does not handle run in the shell.
func Handler(h HandlerFunc) Option {
	return func(s *Server) { s.handler = h }
}

// NoKeepaliveReply leaves global requests (keepalive@openssh.com) without an
// answer, like a box whose network went silent.
func NoKeepaliveReply() Option {
	return func(s *Server) { s.noKeepalive = true }
}

// Server is an in-process SSH server on 127.0.0.1.
type Server struct {
	t testing.TB

	// Set by options before start, read-only afterwards.
	ecdsa       bool
	hostKey     ed25519.PrivateKey
	dir         string
	env         []string
	dropAfter   []string
	noExit      []string
	handler     HandlerFunc
	noKeepalive bool

	config     *ssh.ServerConfig
	hostPub    ssh.PublicKey
	clientKey  ed25519.PrivateKey
	clientSign ssh.Signer
	addr       string
	port       int

	mu         sync.Mutex
	authorized map[string]bool
	ln         net.Listener
	conns      map[net.Conn]struct{}
	commands   []string
	logins     []string
	stopped    bool
	wg         sync.WaitGroup
}

// New starts a server on 127.0.0.1:0; it is stopped in t.Cleanup.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{t: t, authorized: map[string]bool{}, conns: map[net.Conn]struct{}{}}
	for _, o := range opts {
		o(s)
	}
	if s.dir == "" {
		s.dir = t.TempDir()
	}
	var err error
	if s.hostKey == nil {
		_, s.hostKey, err = ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatalf("sshtest: host key: %v", err)
		}
	}
	_, s.clientKey, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sshtest: client key: %v", err)
	}
	s.clientSign, err = ssh.NewSignerFromKey(s.clientKey)
	if err != nil {
		t.Fatalf("sshtest: client signer: %v", err)
	}
	s.authorized[string(s.clientSign.PublicKey().Marshal())] = true

	s.config = &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			s.mu.Lock()
			ok := s.authorized[string(key.Marshal())]
			s.mu.Unlock()
			if !ok {
				return nil, fmt.Errorf("sshtest: key %s not authorized", ssh.FingerprintSHA256(key))
			}
			return nil, nil
		},
	}
	hostSigner, err := ssh.NewSignerFromKey(s.hostKey)
	if err != nil {
		t.Fatalf("sshtest: host signer: %v", err)
	}
	s.hostPub = hostSigner.PublicKey()
	if s.ecdsa {
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatalf("sshtest: ecdsa host key: %v", err)
		}
		es, err := ssh.NewSignerFromKey(ek)
		if err != nil {
			t.Fatalf("sshtest: ecdsa host signer: %v", err)
		}
		s.config.AddHostKey(es)
	}
	s.config.AddHostKey(hostSigner)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sshtest: listen: %v", err)
	}
	s.addr = ln.Addr().String()
	s.port = ln.Addr().(*net.TCPAddr).Port
	s.serve(ln)
	t.Cleanup(func() {
		s.Stop()
		s.wg.Wait()
	})
	return s
}

// Addr is "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.addr }

// Host is "127.0.0.1".
func (s *Server) Host() string { return "127.0.0.1" }

// Port is the port the server listens on, kept across Restart.
func (s *Server) Port() int { return s.port }

// ClientSigner signs as the client key the server accepts.
func (s *Server) ClientSigner() ssh.Signer { return s.clientSign }

// ClientKey is the raw client private key, e.g. to load into an agent.
func (s *Server) ClientKey() ed25519.PrivateKey { return s.clientKey }

// HostPublicKey is the server's ed25519 host key.
func (s *Server) HostPublicKey() ssh.PublicKey { return s.hostPub }

// Authorize accepts one more client key from now on.
func (s *Server) Authorize(key ssh.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authorized[string(key.Marshal())] = true
}

// WriteIdentity writes the client key as an unencrypted OpenSSH private key
// file (mode 0600), as ssh-keygen would.
func (s *Server) WriteIdentity(path string) {
	s.t.Helper()
	block, err := ssh.MarshalPrivateKey(s.clientKey, "sshtest")
	if err != nil {
		s.t.Fatalf("sshtest: marshal identity: %v", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		s.t.Fatalf("sshtest: %v", err)
	}
}

// WriteEncryptedIdentity writes the client key encrypted with passphrase.
func (s *Server) WriteEncryptedIdentity(path, passphrase string) {
	s.t.Helper()
	block, err := ssh.MarshalPrivateKeyWithPassphrase(s.clientKey, "sshtest", []byte(passphrase))
	if err != nil {
		s.t.Fatalf("sshtest: marshal identity: %v", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		s.t.Fatalf("sshtest: %v", err)
	}
}

// HostKeyLine is the known_hosts line for the ed25519 host key under
// hostPattern ("" means "[127.0.0.1]:PORT"), without a newline.
func (s *Server) HostKeyLine(hostPattern string) string {
	return KnownHostsLine(s.hostPattern(hostPattern), s.hostPub)
}

// WriteKnownHosts writes (replaces) path with the known_hosts line for
// "[127.0.0.1]:PORT".
func (s *Server) WriteKnownHosts(path string) {
	s.t.Helper()
	if err := os.WriteFile(path, []byte(s.HostKeyLine("")+"\n"), 0o600); err != nil {
		s.t.Fatalf("sshtest: %v", err)
	}
}

func (s *Server) hostPattern(p string) string {
	if p == "" {
		return "[127.0.0.1]:" + strconv.Itoa(s.port)
	}
	return p
}

// KnownHostsLine is a known_hosts line for key under hostPattern.
func KnownHostsLine(hostPattern string, key ssh.PublicKey) string {
	return hostPattern + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

// Commands returns every command received so far, in order.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// Logins returns the user name of every authenticated connection, in order;
// its length is the number of SSH connections made.
func (s *Server) Logins() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.logins...)
}

// Connections is the number of authenticated SSH connections made so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.logins)
}

// CloseAll cuts every current connection (like the lab's cut); the server
// keeps listening.
func (s *Server) CloseAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Stop closes the listener and every connection: the box is down. Running
// commands are killed.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for c := range s.conns {
		c.Close()
	}
}

// Restart listens again on the same port after Stop, with the same keys.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	if !s.stopped {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("sshtest: restart on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

func (s *Server) serve(ln net.Listener) {
	s.mu.Lock()
	s.ln = ln
	s.stopped = false
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.stopped {
				s.mu.Unlock()
				nc.Close()
				return
			}
			s.conns[nc] = struct{}{}
			s.wg.Add(1)
			s.mu.Unlock()
			go func() {
				defer s.wg.Done()
				s.serveConn(nc)
				s.mu.Lock()
				delete(s.conns, nc)
				s.mu.Unlock()
			}()
		}
	}()
}

func (s *Server) serveConn(nc net.Conn) {
	defer nc.Close()
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.config)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.logins = append(s.logins, sc.User())
	s.mu.Unlock()

	// Commands of this connection are killed when it ends.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for r := range reqs {
			if r.WantReply && !s.noKeepalive {
				r.Reply(false, nil)
			}
		}
	}()
	for nch := range chans {
		switch nch.ChannelType() {
		case "session":
			ch, creqs, err := nch.Accept()
			if err != nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.session(ctx, nc, ch, creqs)
			}()
		case "direct-tcpip":
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.directTCPIP(ctx, nch)
			}()
		default:
			nch.Reject(ssh.UnknownChannelType, "sshtest: unknown channel type")
		}
	}
	cancel()
}

// directTCPIP forwards a channel to a loopback address only: tests never
// reach out of this machine.
func (s *Server) directTCPIP(ctx context.Context, nch ssh.NewChannel) {
	var msg struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nch.ExtraData(), &msg); err != nil {
		nch.Reject(ssh.ConnectionFailed, "sshtest: bad direct-tcpip request")
		return
	}
	ip := net.ParseIP(msg.Host)
	if msg.Host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		nch.Reject(ssh.Prohibited, "sshtest: only loopback targets")
		return
	}
	var d net.Dialer
	target, err := d.DialContext(ctx, "tcp", net.JoinHostPort(msg.Host, strconv.Itoa(int(msg.Port))))
	if err != nil {
		nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		target.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	stop := context.AfterFunc(ctx, func() { target.Close(); ch.Close() })
	defer stop()
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(target, ch)
		if tc, ok := target.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		io.Copy(ch, target)
		ch.CloseWrite()
		done <- struct{}{}
	}()
	<-done
	<-done
	target.Close()
	ch.Close()
}

func matchAny(cmd string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(cmd, sub) {
			return true
		}
	}
	return false
}

// firstWrite reports the first write to either stream, after it is sent.
type firstWrite struct {
	w    io.Writer
	once *sync.Once
	c    chan struct{}
}

func (f firstWrite) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if n > 0 {
		f.once.Do(func() { close(f.c) })
	}
	return n, err
}

var errBadRequest = errors.New("sshtest: malformed request")

func parseString(payload []byte) (string, error) {
	var msg struct{ Value string }
	if err := ssh.Unmarshal(payload, &msg); err != nil {
		return "", errBadRequest
	}
	return msg.Value, nil
}

// session serves one session channel: env and exec requests, then signals.
func (s *Server) session(connCtx context.Context, nc net.Conn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	ctx, cancel := context.WithCancel(connCtx)
	defer cancel()

	var env []string
	var started chan struct{} // closed when the command ended
	var proc procSignaler
	for r := range reqs {
		switch r.Type {
		case "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(r.Payload, &kv) != nil {
				r.Reply(false, nil)
				continue
			}
			env = append(env, kv.Name+"="+kv.Value)
			r.Reply(true, nil)
		case "exec":
			if started != nil {
				r.Reply(false, nil)
				continue
			}
			cmd, err := parseString(r.Payload)
			if err != nil {
				r.Reply(false, nil)
				continue
			}
			s.mu.Lock()
			s.commands = append(s.commands, cmd)
			s.mu.Unlock()
			r.Reply(true, nil)
			started = make(chan struct{})
			go func() {
				defer close(started)
				s.exec(ctx, nc, ch, cmd, env, &proc)
			}()
		case "signal":
			name, err := parseString(r.Payload)
			if err == nil {
				proc.signal(name)
			}
			if r.WantReply {
				r.Reply(err == nil, nil)
			}
		default:
			if r.WantReply {
				r.Reply(false, nil)
			}
		}
	}
	// The client closed the channel (or the connection ended): kill what
	// still runs, and wait for it so nothing outlives the server.
	cancel()
	if started != nil {
		<-started
	}
}

// exec runs one command and reports its end as the options say.
func (s *Server) exec(ctx context.Context, nc net.Conn, ch ssh.Channel, cmd string, env []string, proc *procSignaler) {
	first := make(chan struct{})
	once := &sync.Once{}
	stdout := firstWrite{ch, once, first}
	stderr := firstWrite{ch.Stderr(), once, first}

	done := make(chan int, 1)
	go func() {
		if s.handler != nil {
			if code, ok := s.handler(cmd, stdout, stderr); ok {
				done <- code
				return
			}
		}
		done <- s.runShell(ctx, cmd, env, stdout, stderr, proc)
	}()

	if matchAny(cmd, s.dropAfter) {
		select {
		case <-first:
			nc.Close() // the exit status is never sent
			<-done     // the command is killed with the connection
		case <-done:
			nc.Close()
		}
		return
	}
	code := <-done
	ch.CloseWrite()
	if matchAny(cmd, s.noExit) {
		ch.Close() // cleanly, but without a status
		return
	}
	var status struct{ Status uint32 }
	status.Status = uint32(code)
	ch.SendRequest("exit-status", false, ssh.Marshal(&status))
	ch.Close()
}

// environ is this process's environment plus the server's and the
// session's additions.
func (s *Server) environ(extra []string) []string {
	env := append(os.Environ(), s.env...)
	return append(env, extra...)
}
