package fsm

import (
	"fmt"
	"sync"

	"boxswap/state"
	"boxswap/steps"
)

// facts scopes the step facts to the cycle and writes them through to the
// state at once, so a crash right after a step learnt something keeps it.
type facts struct {
	store   state.Backend
	prefix  string
	attempt uint64
	step    func() string
}

func (f *facts) Get(key string) (string, bool) {
	v, ok, err := f.store.Fact(f.prefix + key)
	return v, ok && err == nil
}

func (f *facts) Set(key, value string) error {
	return f.store.SetStepFact(f.attempt, f.step(), f.prefix, key, value)
}

func (f *facts) Delete(key string) error { return f.store.DeleteFact(f.prefix + key) }

// factsPrefix scopes facts to a cycle: a second cycle must not see the
// boot id or pip list of the first.
func factsPrefix(cycle int) string { return fmt.Sprintf("c%d/", cycle) }

// ReadOnlyFacts reads the facts of cycle from store and keeps what is set
// in memory: for running checks (plan) without changing the record.
func ReadOnlyFacts(store state.Backend, cycle int) steps.Facts {
	return &readFacts{store: store, prefix: factsPrefix(cycle), set: map[string]*string{}}
}

type readFacts struct {
	store  state.Backend
	prefix string
	mu     sync.Mutex
	set    map[string]*string // nil value: deleted
}

func (f *readFacts) Get(key string) (string, bool) {
	f.mu.Lock()
	v, ok := f.set[key]
	f.mu.Unlock()
	if ok {
		if v == nil {
			return "", false
		}
		return *v, true
	}
	s, ok, err := f.store.Fact(f.prefix + key)
	return s, ok && err == nil
}

func (f *readFacts) Set(key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set[key] = &value
	return nil
}

func (f *readFacts) Delete(key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set[key] = nil
	return nil
}
