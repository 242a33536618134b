package etcdstate

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"boxswap/state"
)

// DefaultTTL is the lease of the operator lock, in seconds: how long a
// holder that stopped answering (a suspended laptop, a cut network) keeps
// the lock before another operator may take it over.
const DefaultTTL = 15

// Options say where the state is and how to reach it.
type Options struct {
	// Endpoints are the cluster's client addresses (host:port or URLs).
	Endpoints []string
	// Prefix is the key prefix of the state: "/boxswap/site-a".
	Prefix string
	// TLS, when set, is the client's TLS configuration (CA, certificate).
	TLS *tls.Config
	// Username and Password authenticate to etcd; never printed.
	Username, Password string
	// TTL is the lock's lease in seconds; DefaultTTL when zero.
	TTL int
	// Timeout bounds each request; 10s when zero.
	Timeout time.Duration
	// Who is written in the events and approvals that name nobody.
	Who string
}

// Store is a boxswap state under a prefix of an etcd cluster. Close it.
type Store struct {
	cli     *clientv3.Client
	prefix  string // with no trailing slash
	where   string // etcd://hosts/prefix, no credentials
	ttl     int
	timeout time.Duration
	who     string

	mu   sync.Mutex
	held *lock // the operator lock this handle holds, fencing its writes
	// mute is the first no-answer a lock holder got: its later writes and
	// fences fail with it at once, so that a run that lost the cluster
	// stops in one timeout, not one per record it would still write.
	mute error
	// warnings are what the last Verify found to fix (Warnings).
	warnings []string
}

// muted returns the no-answer a lock holder already got, if any.
func (s *Store) muted() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mute
}

// heard records err when it is a lock holder's first no-answer.
func (s *Store) heard(err error) error {
	if errors.Is(err, state.ErrNoAnswer) {
		s.mu.Lock()
		if s.held != nil && s.mute == nil {
			s.mute = err
		}
		s.mu.Unlock()
	}
	return err
}

var _ state.Backend = (*Store)(nil)

// Open connects to the cluster (lazily: the first request dials). It does
// not check that the state exists; every method does.
func Open(o Options) (*Store, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("etcd state: no endpoints")
	}
	prefix := "/" + strings.Trim(o.Prefix, "/")
	if prefix == "/" {
		return nil, errors.New("etcd state: no prefix")
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	eps := make([]string, len(o.Endpoints))
	hosts := make([]string, len(o.Endpoints))
	for i, e := range o.Endpoints {
		hosts[i] = strings.TrimPrefix(strings.TrimPrefix(e, "http://"), "https://")
		eps[i] = e
		if !strings.Contains(e, "://") {
			eps[i] = "http://" + e
			if o.TLS != nil {
				eps[i] = "https://" + e
			}
		}
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: eps, TLS: o.TLS, Username: o.Username, Password: o.Password,
		DialTimeout: o.Timeout, DialKeepAliveTime: 5 * time.Second, DialKeepAliveTimeout: 5 * time.Second,
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd state %s: %w", strings.Join(hosts, ","), err)
	}
	return &Store{cli: cli, prefix: prefix, ttl: o.TTL, timeout: o.Timeout, who: o.Who,
		where: "etcd://" + strings.Join(hosts, ",") + prefix}, nil
}

// Close releases the lock if still held and closes the connection.
func (s *Store) Close() error {
	s.mu.Lock()
	l := s.held
	s.mu.Unlock()
	if l != nil {
		_ = l.Unlock()
	}
	return s.cli.Close()
}

// Path is the state as etcd://hosts/prefix, without credentials.
func (s *Store) Path() string { return s.where }

// Client is the store's etcd client (for watches and tests).
func (s *Store) Client() *clientv3.Client { return s.cli }

// Prefix is the state's key prefix, without a trailing slash.
func (s *Store) Prefix() string { return s.prefix }

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

func (s *Store) me() string {
	if s.who == "" {
		return state.Me()
	}
	return s.who
}

// Create makes the state at the prefix (`boxswap state init`): its schema
// record; it reads as the fresh state (phase start, cycle 0). A prefix that already holds a state, or any
// key, is refused: nothing is overwritten.
func (s *Store) Create() error {
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.cli.Get(ctx, s.prefix+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return s.unreachable(err)
	}
	if resp.Count > 0 {
		if err := s.checkNesting(ctx); err != nil {
			return err
		}
		return fmt.Errorf("state %s: there is already a state (or other keys) at this prefix; "+
			"boxswap state init creates a new one only at an empty prefix", s.where)
	}
	if err := s.checkNesting(ctx); err != nil {
		return err
	}
	created, err := s.putSchema(ctx)
	if err == nil && !created {
		return fmt.Errorf("state %s: created meanwhile by another boxswap", s.where)
	}
	return err
}

// putSchema writes the schema record, which makes the state exist, unless
// another boxswap wrote one first (then false).
func (s *Store) putSchema(ctx context.Context) (bool, error) {
	txn, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(s.key(keySchema)), "=", 0)).
		Then(clientv3.OpPut(s.key(keySchema), strconv.Itoa(state.SchemaVersion))).Commit()
	if err != nil {
		return false, s.unreachable(err)
	}
	return txn.Succeeded, nil
}

// unreachable wraps a failed request: the cluster, or its quorum, is not
// reachable. Nothing is known to be written.
func (s *Store) unreachable(err error) error {
	if deniedBy(err) {
		return &deniedError{where: s.where, err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %s (is the cluster up, and has it a quorum?): %w", s.timeout, err)
	}
	return &unreachableError{where: s.where, err: err}
}

// unreachableError is a request etcd did not answer; it is
// state.ErrUnusable. A write it reports may still land: the next read
// tells, and every write is conditioned on what it read.
type unreachableError struct {
	where string
	err   error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("state %s: etcd did not answer: %v; nothing more was done: once the cluster answers, boxswap where shows the state and boxswap resume goes on", e.where, e.err)
}

func (e *unreachableError) Is(target error) bool {
	return target == state.ErrUnusable || target == state.ErrNoAnswer
}
func (e *unreachableError) Unwrap() error { return e.err }

// deniedBy reports a request etcd answered by refusing who asked: no user
// name, a wrong password, no permission on the prefix.
func deniedBy(err error) bool {
	for _, d := range []error{rpctypes.ErrUserEmpty, rpctypes.ErrAuthFailed, rpctypes.ErrPermissionDenied,
		rpctypes.ErrInvalidAuthToken, rpctypes.ErrAuthOldRevision, rpctypes.ErrUserNotFound} {
		if errors.Is(err, d) {
			return true
		}
	}
	return false
}

// deniedError is a request etcd answered with a refusal of the
// credentials; it is state.ErrUnusable and state.ErrDenied, not
// ErrNoAnswer: the cluster is up.
type deniedError struct {
	where string
	err   error
}

func (e *deniedError) Error() string {
	return fmt.Sprintf("state %s: etcd refused the request: %v; nothing was done", e.where, e.err)
}

func (e *deniedError) Is(target error) bool {
	return target == state.ErrUnusable || target == state.ErrDenied
}
func (e *deniedError) Unwrap() error { return e.err }
