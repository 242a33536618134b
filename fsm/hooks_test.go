package fsm

import (
	"slices"
	"strings"
	"testing"

	"boxswap/boxes"
	"boxswap/state"
	"boxswap/steps"
)

func at(name, on, point string, line int) boxes.Hook {
	return boxes.Hook{Name: name, On: on, Run: "echo " + name, Point: point, Line: line, PointLine: line + 3}
}

// boxOf returns the box the step with id runs on.
func boxOf(t *testing.T, st []steps.Step, id string) string {
	t.Helper()
	for _, s := range st {
		if s.ID() == id {
			return s.Describe().Box
		}
	}
	t.Fatalf("no step %s", id)
	return ""
}

func ids(st []steps.Step) []string {
	var out []string
	for _, s := range st {
		out = append(out, s.ID())
	}
	return out
}

// Issue 13, item 6: hooks at named points and beside step IDs, after the
// gate, each on the box its on: names where it runs: production is thurst
// before redirect's take-address and thermals after it.
func TestHooksAtPoints(t *testing.T) {
	cfg := testConfig()
	cfg.Hooks = map[Event]boxes.Hooks{Redirect: {
		Before: []boxes.Hook{{Name: "announce", On: boxes.Production, Run: "wall moving"}},
		After:  []boxes.Hook{{Name: "done", On: boxes.Production, Run: "true"}},
		At: []boxes.Hook{
			at("window", boxes.Production, boxes.PointBeforeWindow, 10),
			at("migrate", boxes.Production, boxes.PointAfterFinalSync, 20),
			at("smoke", boxes.Production, boxes.PointAfterTakeAddress, 30),
			at("checked", boxes.Production, boxes.PointAfterWindow, 40),
			at("early", boxes.Development, "before:install/thermals", 50),
			at("prefixed", "thermals", "after:redirect/settings/thermals", 60),
			at("first", boxes.Production, "after:approve", 70),
		},
	}}
	st, err := Steps(cfg, state.Meta{From: 27, To: 29}, Redirect)
	if err != nil {
		t.Fatal(err)
	}
	got := ids(st)
	h := func(where, name string) string { return "redirect/hook/" + where + "/" + name }
	if got[0] != "redirect/approve" || got[1] != h("at", "first") || got[2] != h("before", "announce") {
		t.Fatalf("the gate, after:approve, the before hooks first: %v", got[:3])
	}
	for _, pair := range [][2]string{
		{"redirect/sync/raw", h("at", "early")}, {h("at", "early"), "redirect/install/thermals"},
		{"redirect/settings/thermals", h("at", "prefixed")}, {h("at", "prefixed"), "redirect/install/thermals"},
		{"redirect/start-services/thermals", h("at", "window")}, {h("at", "window"), "redirect/stop-writers/thurst"},
		{"redirect/final-sync/raw", h("at", "migrate")}, {h("at", "migrate"), "redirect/start-writers/thermals"},
		{"redirect/take-address/thermals", h("at", "smoke")}, {h("at", "smoke"), h("at", "checked")},
		{h("at", "checked"), "redirect/record-time"}, {"redirect/record-time", h("after", "done")},
	} {
		before(t, got, pair[0], pair[1])
	}
	for id, box := range map[string]string{
		h("before", "announce"): "thurst", h("at", "window"): "thurst", h("at", "migrate"): "thurst",
		h("at", "smoke"): "thermals", h("at", "checked"): "thermals", h("after", "done"): "thermals",
		h("at", "early"): "thermals", h("at", "prefixed"): "thermals",
	} {
		if b := boxOf(t, st, id); b != box {
			t.Errorf("%s runs on %s, want %s", id, b, box)
		}
	}
	// Right after the take: immediately after take-address/thermals.
	if i := slices.Index(got, "redirect/take-address/thermals"); got[i+1] != h("at", "smoke") {
		t.Errorf("after-take-address is not right after the take: %v", got[i:])
	}
	for _, s := range st {
		if s.ID() == h("at", "smoke") && !strings.Contains(s.Describe().Text, "at after-take-address (on production: thermals)") {
			t.Errorf("plan text %q", s.Describe().Text)
		}
	}
}

// In switch-back production goes home: on: production is thermals before
// the take, thurst after it; an upgrade has no named points but any step.
func TestHooksAtPointsOfSwitchBackAndUpgrade(t *testing.T) {
	cfg := testConfig()
	cfg.Hooks = map[Event]boxes.Hooks{
		SwitchBack: {At: []boxes.Hook{at("down", boxes.Production, boxes.PointBeforeWindow, 1), at("up", boxes.Production, boxes.PointAfterTakeAddress, 5)}},
		UpgradeDev: {At: []boxes.Hook{at("pre", boxes.Development, "before:reboot", 9)}},
	}
	st, err := Steps(cfg, state.Meta{From: 27, To: 29}, SwitchBack)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := boxOf(t, st, "switch-back/hook/at/down"), boxOf(t, st, "switch-back/hook/at/up"); a != "thermals" || b != "thurst" {
		t.Errorf("switch-back: before the window on %s, after the take on %s; want thermals, thurst", a, b)
	}
	st, err = Steps(cfg, state.Meta{From: 27, To: 29}, UpgradeDev)
	if err != nil {
		t.Fatal(err)
	}
	got := ids(st)
	if i := slices.Index(got, "upgrade-dev/reboot"); i < 1 || got[i-1] != "upgrade-dev/hook/at/pre" || boxOf(t, st, got[i-1]) != "thermals" {
		t.Errorf("before:reboot: %v", got)
	}
}

// A point naming no step of the transition, or the gate from before, is
// refused with the file, the line of the point and the valid IDs.
func TestHookPointErrors(t *testing.T) {
	for _, tc := range []struct {
		hook boxes.Hook
		want []string
	}{
		{at("x", "thurst", "before:install/thurst", 7), []string{"boxes.yaml:10: hook \"x\" of redirect: point before:install/thurst: redirect has no step install/thurst; its steps are: preflight/reach/thurst,", "install/thermals", "take-address/thermals"}},
		{at("x", "thurst", "before:approve", 7), []string{"boxes.yaml:10:", "hooks run after the approval gate; use after:approve"}},
		{at("x", "thurst", "after:redirect/nope", 7), []string{"redirect has no step nope"}},
	} {
		cfg := testConfig()
		cfg.Hooks = map[Event]boxes.Hooks{Redirect: {At: []boxes.Hook{tc.hook}}}
		_, err := Steps(cfg, state.Meta{From: 27, To: 29}, Redirect)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want %q", tc.hook.Point, err, w)
			}
		}
	}
}
