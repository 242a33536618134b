package state

import (
	"errors"
	"testing"
)

// A fact a step learns is stored and recorded with the step in one
// transaction: with no such step, neither is written.
func TestSetStepFactIsOneWrite(t *testing.T) {
	s := newStore(t)
	id, err := s.Begin(&Attempt{Cycle: 1, Event: "upgrade-dev", Steps: []StepRecord{{ID: "upgrade-dev/reboot"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetStepFact(id, "upgrade-dev/reboot", "c1/", "thermals/boot-id", "b1"); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.Fact("c1/thermals/boot-id"); err != nil || !ok || v != "b1" {
		t.Fatalf("fact %q %v %v", v, ok, err)
	}
	a, err := s.Attempt(id)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Steps[0].Facts["thermals/boot-id"]; got != "b1" {
		t.Fatalf("step facts %v", a.Steps[0].Facts)
	}
	if err := s.SetStepFact(id, "upgrade-dev/nope", "c1/", "k", "v"); !errors.Is(err, ErrNoStep) {
		t.Fatalf("unknown step: %v", err)
	}
	if _, ok, _ := s.Fact("c1/k"); ok {
		t.Fatal("the fact of an unknown step was written")
	}
}
