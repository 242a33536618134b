package boxes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// dialed is one SSH connection, possibly through a jump host.
type dialed struct {
	client *ssh.Client
	jump   *ssh.Client // nil without ProxyJump
}

func (d *dialed) close() {
	d.client.Close()
	if d.jump != nil {
		d.jump.Close()
	}
}

// dial connects to ep (through its jump host if any) within the connect
// timeout. kexOnly stops after the key exchange of the target (for
// HostKeyCheck): its host key is checked, no auth is needed, no client is
// returned. The key the target offered and that passed is returned.
func (d *Dialer) dial(ctx context.Context, ep Endpoint, kexOnly bool) (*dialed, ssh.PublicKey, error) {
	hk, err := loadKnownHosts(d.cfg.SSH.KnownHosts)
	if err != nil {
		return nil, nil, err
	}
	timeout := d.cfg.SSH.ConnectTimeout
	if timeout <= 0 {
		timeout = defaultConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	out := &dialed{}
	var nc net.Conn
	if ep.Jump != nil {
		j, _, err := d.handshake(ctx, *ep.Jump, hk, nil, false, timeout)
		if err != nil {
			return nil, nil, fmt.Errorf("jump host %s: %w", ep.Jump.Alias, err)
		}
		out.jump = j
		nc, err = j.DialContext(ctx, "tcp", ep.Addr())
		if err != nil {
			j.Close()
			return nil, nil, fmt.Errorf("dial %s through jump host %s: %w: check that the jump host can reach the box", ep.Addr(), ep.Jump.Addr(), dialCause(ctx, err, timeout))
		}
	}
	c, key, err := d.handshake(ctx, ep, hk, nc, kexOnly, timeout)
	if err != nil {
		if out.jump != nil {
			out.jump.Close()
		}
		return nil, nil, err
	}
	if kexOnly {
		if c != nil {
			c.Close()
		}
		if out.jump != nil {
			out.jump.Close()
		}
		return nil, key, nil
	}
	out.client = c
	return out, key, nil
}

// handshake dials ep (or uses nc, a channel through a jump host) and runs the
// SSH handshake: key exchange with the known_hosts check, then auth. With
// kexOnly, an auth refusal after a good host key is success (client nil).
func (d *Dialer) handshake(ctx context.Context, ep Endpoint, hk *hostKeys, nc net.Conn, kexOnly bool, timeout time.Duration) (*ssh.Client, ssh.PublicKey, error) {
	var accepted ssh.PublicKey
	conf := &ssh.ClientConfig{
		User:              ep.User,
		HostKeyCallback:   hk.callback(ep.Box, &accepted),
		HostKeyAlgorithms: hk.algorithms(ep.Addr()),
		Timeout:           timeout,
	}
	if nc == nil {
		var err error
		nc, err = (&net.Dialer{}).DialContext(ctx, "tcp", ep.Addr())
		if err != nil {
			return nil, nil, fmt.Errorf("dial %s: %w: is the box up, and does sshd listen on port %d?", ep.Addr(), dialCause(ctx, err, timeout), ep.Port)
		}
	}
	var ks *keys
	if !kexOnly {
		var err error
		ks, err = loadKeys(d.agentSocket(), ep)
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		defer ks.close()
		conf.Auth = []ssh.AuthMethod{ssh.PublicKeys(ks.signers...)}
	}
	// Bound the handshake by ctx: closing the socket ends it.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(nc, ep.Addr(), conf)
	expired := !stop()
	if err == nil && expired {
		cc.Close()
		err = ctx.Err()
	}
	if err != nil {
		nc.Close()
		var he *HostKeyError
		switch {
		case errors.As(err, &he):
			return nil, nil, he
		case kexOnly && accepted != nil:
			return nil, accepted, nil // auth refused after a good key: enough here
		case expired:
			return nil, nil, fmt.Errorf("ssh handshake with %s: %w", ep.Addr(), dialCause(ctx, err, timeout))
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, nil, fmt.Errorf("%s refused every key (tried: %s): add your public key to %s's ~%s/.ssh/authorized_keys or load the right key into ssh-agent: %w",
				ep, ks.summary(), ep.Host, ep.User, err)
		default:
			return nil, nil, fmt.Errorf("ssh handshake with %s: %w", ep.Addr(), err)
		}
	}
	return ssh.NewClient(cc, chans, reqs), accepted, nil
}

// dialCause names a timeout as the connect timeout rather than a bare
// "context deadline exceeded".
func dialCause(ctx context.Context, err error, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &NoAnswerError{After: timeout, Err: err}
	}
	return err
}

// NoAnswerError is a box that did not answer a connection attempt within
// ssh.connect_timeout.
type NoAnswerError struct {
	After time.Duration
	Err   error
}

func (e *NoAnswerError) Error() string {
	return fmt.Sprintf("no answer within %v (ssh.connect_timeout): %v", e.After, e.Err)
}
func (e *NoAnswerError) Unwrap() error { return e.Err }
