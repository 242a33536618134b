package boxes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

const (
	defaultConnectTimeout = 15 * time.Second
	// keepaliveMax is how many keepalives may go unanswered before the
	// connection is closed (OpenSSH's ServerAliveCountMax default).
	keepaliveMax = 3
	// cancelGrace is how long a cancelled command's session gets to close
	// before the whole connection is closed to end it.
	cancelGrace = 5 * time.Second
	// probeTimeout bounds the check that tells a dropped connection from
	// a missing exit status (only the message differs).
	probeTimeout = 2 * time.Second
)

// Dialer reaches the boxes of one Config over SSH: one connection per box,
// made on the first Run and shared by all commands (one session each).
// It is safe for concurrent use.
type Dialer struct {
	cfg       *Config
	agentSock *string // nil: $SSH_AUTH_SOCK at each dial

	mu      sync.Mutex
	clients map[string]*Client
	sshConf *sshConfigFile
	confErr error
	confOK  bool
	closed  bool
}

// DialOption changes how a Dialer connects.
type DialOption func(*Dialer)

// WithAgentSocket uses the ssh-agent at path instead of $SSH_AUTH_SOCK;
// "" disables the agent.
func WithAgentSocket(path string) DialOption {
	return func(d *Dialer) { d.agentSock = &path }
}

// NewDialer prepares connections to cfg's boxes; nothing is dialled yet.
func NewDialer(cfg *Config, opts ...DialOption) *Dialer {
	d := &Dialer{cfg: cfg, clients: map[string]*Client{}}
	for _, o := range opts {
		o(d)
	}
	return d
}

func (d *Dialer) agentSocket() string {
	if d.agentSock != nil {
		return *d.agentSock
	}
	return os.Getenv("SSH_AUTH_SOCK")
}

func (d *Dialer) box(name string) (Box, error) {
	var names []string
	for _, b := range d.cfg.Boxes {
		if b.Name == name {
			return b, nil
		}
		names = append(names, b.Name)
	}
	sort.Strings(names)
	return Box{}, fmt.Errorf("%s: no such box in %s (boxes: %s)", name, d.cfg.File, strings.Join(names, ", "))
}

// Endpoint resolves how box name is reached: host, port and user after
// ~/.ssh/config, identity files, jump host.
func (d *Dialer) Endpoint(name string) (Endpoint, error) {
	b, err := d.box(name)
	if err != nil {
		return Endpoint{}, err
	}
	ep, err := d.endpoint(b)
	if err != nil {
		return Endpoint{}, fmt.Errorf("%s: %w", name, err)
	}
	return ep, nil
}

func (d *Dialer) endpoint(b Box) (Endpoint, error) {
	d.mu.Lock()
	if !d.confOK {
		d.sshConf, d.confErr = loadSSHConfig(d.cfg.SSH.Config)
		d.confOK = true
	}
	sc, cerr := d.sshConf, d.confErr
	d.mu.Unlock()
	if cerr != nil {
		return Endpoint{}, cerr
	}
	return resolveEndpoint(b, d.cfg.SSH.Identity, sc)
}

// Client returns box name's client, created on first use and then reused.
func (d *Dialer) Client(name string) (*Client, error) {
	if _, err := d.box(name); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("%s: ssh: dialer closed", name)
	}
	c := d.clients[name]
	if c == nil {
		c = &Client{d: d, name: name}
		d.clients[name] = c
	}
	return c, nil
}

// Runner returns box name's Runner (its Client).
func (d *Dialer) Runner(name string) (Runner, error) {
	c, err := d.Client(name)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Close closes every box's connection; running commands end with
// ErrOutcomeUnknown. The Dialer cannot be used afterwards.
func (d *Dialer) Close() error {
	d.mu.Lock()
	d.closed = true
	clients := d.clients
	d.clients = map[string]*Client{}
	d.mu.Unlock()
	for _, c := range clients {
		c.Close()
	}
	return nil
}

// HostKeyCheck dials box name and runs the key exchange only: its host key
// is checked against known_hosts (no auth is needed on the box itself; a
// jump host is fully logged into). It returns the key's SHA256 fingerprint.
// Errors wrap ErrUnreachable, and ErrUnknownHostKey or ErrHostKeyChanged
// when the key is refused.
func (d *Dialer) HostKeyCheck(ctx context.Context, name string) (fingerprint string, err error) {
	var key ssh.PublicKey
	b, err := d.box(name)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	ep, err := d.endpoint(b)
	if err == nil {
		_, key, err = d.dial(ctx, ep, true)
	}
	if err != nil {
		return "", fmt.Errorf("%s: ssh: %w: %w", name, ErrUnreachable, err)
	}
	return ssh.FingerprintSHA256(key), nil
}

// Client runs commands on one box over its shared connection, redialling
// once when the connection is gone. It implements Runner.
type Client struct {
	d    *Dialer
	name string

	mu     sync.Mutex // held while dialling: one dial at a time per box
	cur    *conn
	closed bool
}

var _ Runner = (*Client)(nil)

// Name is the box's name.
func (c *Client) Name() string { return c.name }

// Close closes the box's connection; a later Run dials again unless the
// Dialer was closed.
func (c *Client) Close() error {
	c.mu.Lock()
	cur := c.cur
	c.cur = nil
	c.mu.Unlock()
	if cur != nil {
		cur.close(errors.New("closed by boxswap"))
	}
	return nil
}

func (c *Client) unreachable(err error) error {
	return fmt.Errorf("%s: ssh: %w: %w", c.name, ErrUnreachable, err)
}

func (c *Client) unknown(format string, args ...any) error {
	return fmt.Errorf("%s: ssh: %w: %s: check on the box whether the command ran before going on", c.name, ErrOutcomeUnknown, fmt.Sprintf(format, args...))
}

// acquire returns the live connection, dialling if there is none; the
// caller must release it.
func (c *Client) acquire(ctx context.Context) (*conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.d.mu.Lock()
	closed := c.d.closed
	c.d.mu.Unlock()
	if closed {
		return nil, c.unreachable(errors.New("dialer closed"))
	}
	if c.cur != nil && c.cur.use() {
		return c.cur, nil
	}
	c.cur = nil
	b, err := c.d.box(c.name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	ep, err := c.d.endpoint(b)
	if err != nil {
		return nil, c.unreachable(err)
	}
	// A connection attempt is a wait: the operator's stop ends it, and no
	// new one starts after it (the command it was for never ran).
	if Stopped(ctx) {
		return nil, fmt.Errorf("%s: ssh: %w: not connecting again", c.name, ErrStopped)
	}
	wctx, cancel := Waiting(ctx)
	defer cancel()
	dd, _, err := c.d.dial(wctx, ep, false)
	if err != nil && errors.Is(context.Cause(wctx), ErrStopped) {
		return nil, fmt.Errorf("%s: ssh: %w while connecting", c.name, ErrStopped)
	}
	if err != nil {
		return nil, c.unreachable(err)
	}
	cn := newConn(dd, c.d.cfg.SSH.Keepalive)
	cn.use()
	c.cur = cn
	return cn, nil
}

// session opens a session, redialling once if the shared connection turns
// out to be dead: nothing was sent yet, so retrying is safe.
func (c *Client) session(ctx context.Context) (*conn, *ssh.Session, error) {
	for attempt := 0; ; attempt++ {
		cn, err := c.acquire(ctx)
		if err != nil {
			return nil, nil, err
		}
		s, err := cn.dd.client.NewSession()
		if err == nil {
			return cn, s, nil
		}
		cn.retire()
		cn.release()
		if attempt > 0 {
			return nil, nil, c.unreachable(fmt.Errorf("open session: %w", err))
		}
	}
}

// Run runs cmd on the box (see Runner). A non-zero exit is returned with a
// nil error; exit is -1 whenever err is not nil. Writes to stdout and
// stderr never overlap, so both may be the same writer; none happens after
// Run returns.
func (c *Client) Run(ctx context.Context, cmd string, stdout, stderr io.Writer) (int, error) {
	if err := ctx.Err(); err != nil {
		return -1, c.unreachable(fmt.Errorf("not started: %w", err))
	}
	cn, s, err := c.session(ctx)
	if err != nil {
		return -1, err
	}
	defer cn.release()
	defer s.Close()
	// One lock for both streams: callers may pass the same writer twice.
	var mu sync.Mutex
	if stdout != nil {
		s.Stdout = &lockedWriter{mu: &mu, w: stdout}
	}
	if stderr != nil {
		s.Stderr = &lockedWriter{mu: &mu, w: stderr}
	}
	if err := s.Start(cmd); err != nil {
		if cn.isDead() {
			cn.retire()
			return -1, c.unknown("connection lost while starting the command (%v)", cn.cause(err))
		}
		return -1, c.unreachable(fmt.Errorf("the box refused to start the command: %w", err))
	}
	waited := make(chan error, 1)
	go func() { waited <- s.Wait() }()
	select {
	case err := <-waited:
		return c.result(cn, err)
	case <-ctx.Done():
	}
	// Interrupted: ask the command to stop, then drop the session. Wait
	// for the output copies to end so no write reaches the caller's
	// writers after Run returns.
	s.Signal(ssh.SIGTERM)
	s.Close()
	select {
	case <-waited:
	case <-time.After(cancelGrace):
		cn.close(errors.New("a cancelled command did not end"))
		<-waited
	}
	return -1, fmt.Errorf("%s: ssh: %w: command interrupted, it may have run in part: %w", c.name, ErrOutcomeUnknown, ctx.Err())
}

func (c *Client) result(cn *conn, err error) (int, error) {
	var ee *ssh.ExitError
	var me *ssh.ExitMissingError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		return ee.ExitStatus(), nil
	case errors.As(err, &me):
		// Either the connection dropped or the server closed the
		// session without a status; in both cases do not trust this
		// connection for the next command.
		dead := !cn.alive()
		cn.retire()
		if dead {
			return -1, c.unknown("connection lost while the command ran (%v)", cn.cause(io.EOF))
		}
		return -1, c.unknown("no exit status came back (the session or the connection closed first)")
	default:
		return -1, c.unknown("reading the command's output: %v", err)
	}
}

// conn is one live SSH connection to a box and the sessions using it.
type conn struct {
	dd   *dialed
	done chan struct{} // closed when the connection has ended

	mu      sync.Mutex
	why     error // why it ended, when boxswap ended it
	active  int   // sessions in use
	retired bool  // no new sessions; closed when the last one ends
}

func newConn(dd *dialed, keepalive time.Duration) *conn {
	cn := &conn{dd: dd, done: make(chan struct{})}
	go func() {
		dd.client.Wait()
		if dd.jump != nil {
			dd.jump.Close()
		}
		close(cn.done)
	}()
	if keepalive > 0 {
		go cn.keepalive(keepalive)
	}
	return cn
}

// use takes a session slot unless the connection is dead or retired.
func (cn *conn) use() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.retired || cn.isDead() {
		return false
	}
	cn.active++
	return true
}

func (cn *conn) release() {
	cn.mu.Lock()
	cn.active--
	closeNow := cn.retired && cn.active == 0
	cn.mu.Unlock()
	if closeNow {
		cn.dd.close()
	}
}

// retire stops new sessions; the connection closes when its last session
// ends, so a command running beside the failed one is not cut.
func (cn *conn) retire() {
	cn.mu.Lock()
	cn.retired = true
	closeNow := cn.active == 0
	cn.mu.Unlock()
	if closeNow {
		cn.dd.close()
	}
}

func (cn *conn) isDead() bool {
	select {
	case <-cn.done:
		return true
	default:
		return false
	}
}

// alive asks the box for a reply on this connection, to tell a dropped
// connection from a session closed without status. No answer within
// probeTimeout counts as dead.
func (cn *conn) alive() bool {
	res := make(chan error, 1)
	go func() {
		_, _, err := cn.dd.client.SendRequest("keepalive@openssh.com", true, nil)
		res <- err
	}()
	select {
	case <-cn.done:
		return false
	case err := <-res:
		return err == nil
	case <-time.After(probeTimeout):
		return false
	}
}

func (cn *conn) close(why error) {
	cn.mu.Lock()
	if cn.why == nil {
		cn.why = why
	}
	cn.retired = true
	cn.mu.Unlock()
	cn.dd.close()
}

// cause says why the connection ended, or def when boxswap did not end it.
func (cn *conn) cause(def error) error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.why != nil {
		return cn.why
	}
	return def
}

// keepalive sends keepalive@openssh.com every interval and closes the
// connection when keepaliveMax in a row go unanswered, so a command on a
// silent box ends (with ErrOutcomeUnknown) instead of hanging.
func (cn *conn) keepalive(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	answered := make(chan error, 1)
	pending, missed := false, 0
	for {
		select {
		case <-cn.done:
			return
		case err := <-answered:
			pending, missed = false, 0
			if err != nil {
				return
			}
		case <-t.C:
			if pending {
				missed++
				if missed >= keepaliveMax {
					cn.close(fmt.Errorf("no answer to %d keepalives sent every %v", missed, interval))
					return
				}
				continue
			}
			pending = true
			go func() {
				_, _, err := cn.dd.client.SendRequest("keepalive@openssh.com", true, nil)
				answered <- err
			}()
		}
	}
}

// lockedWriter serializes the writes of a session's two output copies.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
