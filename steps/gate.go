package steps

import (
	"context"
	"fmt"
)

type gateStep struct {
	base
	prompt string
}

// Gate asks the operator to approve going on (Env.Approve: --yes or an
// interactive yes). The approval is kept in the fact gate/<id> with who
// gave it, so a resumed transition does not ask again. Undo forgets it.
func Gate(id, prompt string) Step {
	return &gateStep{prompt: prompt, base: base{id: id, desc: Description{
		Text: "ask the operator: " + prompt,
	}}}
}

// IsGate reports whether s is an approval gate.
func IsGate(s Step) bool {
	_, ok := s.(*gateStep)
	return ok
}

func (s *gateStep) key() string { return "gate/" + s.id }

func (s *gateStep) Check(_ context.Context, env *Env) (bool, string, error) {
	f, err := facts(env)
	if err != nil {
		return false, "", err
	}
	if who, ok := f.Get(s.key()); ok {
		return true, "approved by " + who, nil
	}
	return false, "not approved yet", nil
}

func (s *gateStep) Apply(ctx context.Context, env *Env) error {
	f, err := facts(env)
	if err != nil {
		return err
	}
	if env.Approve == nil {
		return fmt.Errorf("gate %s: nobody to ask: %w; run again with --yes once you have checked", s.id, ErrNotApproved)
	}
	who, err := env.Approve(ctx, s.id, s.prompt)
	if err != nil {
		return fmt.Errorf("gate %s: %w", s.id, err)
	}
	if who == "" {
		who = "unknown"
	}
	return f.Set(s.key(), who)
}

func (s *gateStep) Undo(_ context.Context, env *Env) error {
	f, err := facts(env)
	if err != nil {
		return err
	}
	return f.Delete(s.key())
}
