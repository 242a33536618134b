package fsm

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"boxswap/boxes"
)

func TestTransitionsChainThroughEveryPhase(t *testing.T) {
	phase := Start
	var events []Event
	for {
		tr, ok := NextEvent(phase)
		if !ok {
			break
		}
		next, err := fire(phase, tr.Event)
		if err != nil {
			t.Fatalf("fire %s from %s: %v", tr.Event, phase, err)
		}
		if next != tr.To {
			t.Fatalf("%s from %s went to %s, want %s", tr.Event, phase, next, tr.To)
		}
		events = append(events, tr.Event)
		phase = next
	}
	if phase != Done {
		t.Fatalf("cycle ends at %s, want %s", phase, Done)
	}
	want := "[upgrade-dev redirect upgrade-prod switch-back epilogue]"
	if got := fmt.Sprint(events); got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
}

func TestFireRefusesOutOfOrderEvents(t *testing.T) {
	for _, tc := range []struct {
		phase Phase
		event Event
	}{
		{Start, Redirect}, {DevUpgraded, UpgradeDev}, {Done, UpgradeDev}, {Redirected, "bogus"},
	} {
		if _, err := fire(tc.phase, tc.event); err == nil {
			t.Errorf("fire(%s, %s) succeeded; want an error", tc.phase, tc.event)
		}
	}
	if _, err := fire("halfway", UpgradeDev); err == nil || !strings.Contains(err.Error(), "unknown phase") {
		t.Errorf("unknown phase: got %v", err)
	}
}

func TestGraphHasEveryTransition(t *testing.T) {
	g := Graph()
	if !strings.HasPrefix(g, "stateDiagram-v2\n") {
		t.Fatalf("not a Mermaid state diagram:\n%s", g)
	}
	for _, tr := range Transitions {
		line := "    " + string(tr.From) + " --> " + string(tr.To) + ": " + string(tr.Event) + "\n"
		if !strings.Contains(g, line) {
			t.Errorf("graph lacks %q:\n%s", line, g)
		}
		// Every edge drawn is one the machine really takes.
		if to, err := fire(tr.From, tr.Event); err != nil || to != tr.To {
			t.Errorf("edge %v not taken by the machine: %v %v", tr, to, err)
		}
	}
	if n := strings.Count(g, "-->"); n != len(Transitions)+2 {
		t.Errorf("graph has %d edges, want %d", n, len(Transitions)+2)
	}
}

// The machine's events are the ones boxes.yaml's hooks may name, in cycle
// order: one list (boxes.Events), not two kept in step by hand.
func TestTheMachineRunsTheEventsBoxesYamlKnows(t *testing.T) {
	var got []Event
	for _, tr := range Transitions {
		got = append(got, tr.Event)
	}
	if !slices.Equal(got, boxes.Events) {
		t.Fatalf("transitions %q, boxes.Events %q", got, boxes.Events)
	}
}
