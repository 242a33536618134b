package etcdstate

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"boxswap/state"
)

// Pairs' prefixes sit side by side (/boxswap/site-a, /boxswap/site-b):
// a state inside another's prefix would put its keys among the outer
// pair's records. Create and Load refuse a prefix inside or above another
// pair's (state.ErrNestedPrefix). A pair that already nests (made before
// this check) is read without the inner pair's keys, which none of the
// outer pair's reads list, and Verify leaves a warning (Warnings); one
// whose prefix is inside the outer pair's record folders (…/a, …/f) is
// damage (state.ErrCorrupt): its keys read as the outer pair's records.

// ancestors are the prefixes above p: /a/b/c gives /a/b, /a.
func ancestors(p string) []string {
	var out []string
	for i := strings.LastIndexByte(p, '/'); i > 0; i = strings.LastIndexByte(p[:i], '/') {
		out = append(out, p[:i])
	}
	return out
}

// checkNesting refuses this prefix when a pair's state is above it or
// below it.
func (s *Store) checkNesting(ctx context.Context) error {
	for _, a := range ancestors(s.prefix) {
		resp, err := s.cli.Get(ctx, a+"/"+keySchema, clientv3.WithCountOnly())
		if err != nil {
			return s.unreachable(err)
		}
		if resp.Count > 0 {
			return &nestedError{where: s.where, other: a, inside: true}
		}
	}
	resp, err := s.cli.Get(ctx, s.prefix+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return s.unreachable(err)
	}
	if inner := nestedPrefixes(s.prefix, resp.Kvs); len(inner) > 0 {
		return &nestedError{where: s.where, other: inner[0]}
	}
	return nil
}

type keyed interface{ GetKey() []byte }

// nestedPrefixes are the prefixes of the pairs' states below prefix,
// found by their schema keys among kvs.
func nestedPrefixes[K keyed](prefix string, kvs []K) []string {
	var out []string
	for _, kv := range kvs {
		k := string(kv.GetKey())
		if p, ok := strings.CutSuffix(k, "/"+keySchema); ok && p != prefix && strings.HasPrefix(p, prefix+"/") {
			out = append(out, p)
		}
	}
	return out
}

// nestedError is a prefix inside or above another pair's; it is
// state.ErrNestedPrefix.
type nestedError struct {
	where, other string
	inside       bool
}

func (e *nestedError) Error() string {
	if e.inside {
		return fmt.Sprintf("state %s is inside the prefix of the pair at %s: its keys would mix with that pair's records", e.where, e.other)
	}
	return fmt.Sprintf("state %s is above the pair at %s: that pair's keys would mix with this state's records", e.where, e.other)
}

func (e *nestedError) Is(target error) bool { return target == state.ErrNestedPrefix }

// Warnings are what the last Verify found that works but should be fixed:
// pairs' states nested under this one.
func (s *Store) Warnings() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.warnings...)
}

func (s *Store) warnNested(inner []string) {
	var w []string
	for _, p := range inner {
		w = append(w, fmt.Sprintf("%s holds another pair's state at %s; boxswap ignores its keys: "+
			"move that pair beside this one (state push to a new prefix)", s.where, p))
	}
	s.mu.Lock()
	s.warnings = w
	s.mu.Unlock()
}

// tangled refuses a nested pair whose prefix is under one of this state's
// own record folders (a/, s/, f/, …): its keys are read as this state's
// records, which cannot be told apart from damage.
func (s *Store) tangled(inner []string) error {
	for _, p := range inner {
		first, _, _ := strings.Cut(strings.TrimPrefix(p, s.prefix+"/"), "/")
		switch first + "/" {
		case dirAttempts, dirSummaries, dirFacts, dirApprovals, dirHistory, seqPrefix, "m/":
			return state.CorruptError(s.where, fmt.Errorf("another pair's state at %s is among this state's own records (%s/%s/)", p, s.prefix, first))
		}
	}
	return nil
}
