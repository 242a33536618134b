package steps

import (
	"context"
	"fmt"
	"time"
)

type gateStep struct {
	base
	prompt string
	// sinceKey names a fact holding a time (Stamp); the prompt then says
	// sinceText "for D (since T)".
	sinceKey, sinceText string
}

// Gate asks the operator to approve going on (Env.Approve: --yes or an
// interactive yes). The approval is kept in the fact gate/<id> with who
// gave it, so a resumed transition does not ask again. Undo forgets it.
func Gate(id, prompt string) Step {
	return &gateStep{prompt: prompt, base: base{id: id, desc: Description{
		Text: "ask the operator: " + prompt,
	}}}
}

// GateSince is Gate whose prompt also says how long ago the time in fact
// sinceKey (recorded by Stamp) was: "thermals has served production for
// 2h10m (since 2024-05-02 09:12 UTC)".
func GateSince(id, prompt, sinceKey, sinceText string) Step {
	g := Gate(id, prompt).(*gateStep)
	g.sinceKey, g.sinceText = sinceKey, sinceText
	return g
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
	prompt := s.prompt
	if s.sinceKey != "" {
		if at, ok := f.Get(s.sinceKey); ok {
			if t, err := time.Parse(time.RFC3339, at); err == nil {
				prompt = fmt.Sprintf("%s for %s (since %s); %s", s.sinceText, time.Since(t).Round(time.Second),
					t.UTC().Format("2006-01-02 15:04 UTC"), prompt)
			}
		}
	}
	who, err := env.Approve(ctx, s.id, prompt)
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

type stampStep struct {
	base
	key string
}

// Stamp records the time it runs in fact key (what says text, for
// plan), once: a resume keeps the first time. Undo forgets it.
func Stamp(id, key, text string) Step {
	return &stampStep{key: key, base: base{id: id, desc: Description{Text: "record " + text}}}
}

func (s *stampStep) Check(_ context.Context, env *Env) (bool, string, error) {
	f, err := facts(env)
	if err != nil {
		return false, "", err
	}
	if at, ok := f.Get(s.key); ok {
		return true, "recorded: " + at, nil
	}
	return false, "not recorded yet", nil
}

func (s *stampStep) Apply(_ context.Context, env *Env) error {
	f, err := facts(env)
	if err != nil {
		return err
	}
	return f.Set(s.key, nowText())
}

func (s *stampStep) Undo(_ context.Context, env *Env) error {
	f, err := facts(env)
	if err != nil {
		return err
	}
	return f.Delete(s.key)
}
