package steps

import (
	"context"
	"errors"
	"strings"
	"testing"

	"boxswap/boxes"
)

func TestParseActive(t *testing.T) {
	for _, tc := range []struct {
		in      string
		state   string
		running bool
		err     bool
	}{
		{"active\n", "active", true, false},
		{"inactive", "inactive", false, false},
		{"failed\n", "failed", false, false},
		{"activating", "activating", true, false},
		{"deactivating", "deactivating", true, false},
		{"reloading", "reloading", true, false},
		{"unknown", "unknown", false, false},
		{"  active  ", "active", true, false},
		{"", "", false, true},
		{"Active", "Active", false, true},
		{"active active", "", false, true},
	} {
		state, running, err := parseActive(tc.in)
		if (err != nil) != tc.err || (!tc.err && (state != tc.state || running != tc.running)) {
			t.Errorf("parseActive(%q) = %q, %v, %v", tc.in, state, running, err)
		}
	}
}

func TestParseEnabled(t *testing.T) {
	for _, tc := range []struct {
		in      string
		enabled bool
		err     bool
	}{
		{"enabled\n", true, false},
		{"enabled-runtime", true, false},
		{"disabled", false, false},
		{"static", false, false},
		{"masked", false, false},
		{"indirect", false, false},
		{"generated", false, false},
		{"not-found", false, false},
		{"", false, true},
		{"yes", false, true},
	} {
		_, enabled, err := parseEnabled(tc.in)
		if (err != nil) != tc.err || enabled != tc.enabled {
			t.Errorf("parseEnabled(%q) = %v, %v", tc.in, enabled, err)
		}
	}
}

// unitBox simulates systemctl for one unit.
type unitBox struct {
	active, enabled string
	startFails      bool
}

func (u *unitBox) script(unit string) func(string) reply {
	q := boxes.Quote(unit)
	return func(cmd string) reply {
		switch cmd {
		case "systemctl is-active -- " + q:
			return reply{out: u.active + "\n", exit: map[bool]int{true: 0, false: 3}[u.active == "active"]}
		case "systemctl is-enabled -- " + q:
			return reply{out: u.enabled + "\n", exit: map[bool]int{true: 0, false: 1}[u.enabled == "enabled"]}
		case "systemctl enable -- " + q + " && systemctl start -- " + q:
			u.enabled = "enabled"
			if u.startFails {
				u.active = "failed"
				return reply{errout: "Job for x failed\n", exit: 0}
			}
			u.active = "active"
			return reply{}
		case "systemctl stop -- " + q + " && systemctl disable -- " + q:
			u.active, u.enabled = "inactive", "disabled"
			return reply{}
		case "systemctl status --no-pager --lines=10 -- " + q:
			return reply{out: "× nbhosting-addr.service\n   Active: failed (Result: exit-code)\n", exit: 3}
		}
		return reply{exit: 127, errout: "unexpected: " + cmd}
	}
}

func TestUnitUpDown(t *testing.T) {
	ctx := context.Background()
	u := &unitBox{active: "inactive", enabled: "disabled"}
	f := &fakeRunner{script: u.script("nbhosting-addr")}
	te := newEnv(map[string]boxes.Runner{"thermals": f})

	up := UnitUp("redirect/addr-up", "thermals", "nbhosting-addr")
	d := up.Describe()
	if want := []string{"systemctl enable -- nbhosting-addr && systemctl start -- nbhosting-addr", "systemctl is-active -- nbhosting-addr"}; !equalStrings(d.Commands, want) {
		t.Errorf("commands = %q", d.Commands)
	}
	if want := []string{"systemctl stop -- nbhosting-addr && systemctl disable -- nbhosting-addr"}; !equalStrings(d.Undo, want) {
		t.Errorf("undo = %q", d.Undo)
	}
	if done, why, err := up.Check(ctx, te.Env); done || err != nil || why != "nbhosting-addr is inactive and disabled on thermals" {
		t.Fatalf("check before = %v %q %v", done, why, err)
	}
	if err := up.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if done, _, err := up.Check(ctx, te.Env); !done || err != nil {
		t.Fatalf("check after apply = %v %v", done, err)
	}
	down := UnitDown("x/down", "thermals", "nbhosting-addr")
	if done, _, _ := down.Check(ctx, te.Env); done {
		t.Fatal("down is done while the unit is up")
	}
	if err := up.Undo(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if done, _, err := down.Check(ctx, te.Env); !done || err != nil {
		t.Fatalf("down after undo = %v %v", done, err)
	}
	if err := down.Undo(ctx, te.Env); err != nil || u.active != "active" || u.enabled != "enabled" {
		t.Fatalf("down undo: %v, %s/%s", err, u.active, u.enabled)
	}
}

func TestUnitUpFailsWithStatus(t *testing.T) {
	u := &unitBox{active: "inactive", enabled: "disabled", startFails: true}
	te := newEnv(map[string]boxes.Runner{"thermals": &fakeRunner{script: u.script("nbhosting-addr")}})
	err := UnitUp("id", "thermals", "nbhosting-addr").Apply(context.Background(), te.Env)
	if err == nil || err.Error() != "thermals: nbhosting-addr is failed after start; see journalctl -u nbhosting-addr there" {
		t.Fatalf("err = %v", err)
	}
	// systemctl status is the record's, not the operator's line.
	if d := Detail(err); !strings.Contains(d, "Active: failed (Result: exit-code)") {
		t.Errorf("Detail = %q, want systemctl status", d)
	}
}

func TestUnitState(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		active, enabled string
		wantA, wantE    bool
		ok              bool
	}{
		{"active", "enabled", true, true, true},
		{"inactive", "enabled", true, true, false},
		{"active", "disabled", true, true, false},
		{"inactive", "disabled", false, false, true},
		{"failed", "masked", false, false, true},
		{"active", "disabled", false, false, false},
	} {
		u := &unitBox{active: tc.active, enabled: tc.enabled}
		f := &fakeRunner{script: u.script("nbhosting-dev-addr")}
		te := newEnv(map[string]boxes.Runner{"thermals": f})
		s := UnitState("pre/unit", "thermals", "nbhosting-dev-addr", tc.wantA, tc.wantE)
		done, _, err := s.Check(ctx, te.Env)
		if err != nil || done != tc.ok {
			t.Errorf("%+v: check = %v, %v", tc, done, err)
		}
		err = s.Apply(ctx, te.Env)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrPrecondition)) {
			t.Errorf("%+v: apply = %v", tc, err)
		}
		if err != nil && !strings.Contains(err.Error(), "nbhosting-dev-addr is "+tc.active+" and "+tc.enabled+" on thermals, expected") {
			t.Errorf("apply error does not say what was seen: %v", err)
		}
		for _, c := range f.sent() {
			if strings.Contains(c, "start") || strings.Contains(c, "stop") {
				t.Errorf("check-only step sent %q", c)
			}
		}
	}
}

func TestUnitUnknownToOldSystemd(t *testing.T) {
	f := &fakeRunner{script: func(cmd string) reply {
		if strings.Contains(cmd, "is-active") {
			return reply{out: "unknown\n", exit: 3}
		}
		return reply{errout: "Failed to get unit file state for nope.service: No such file or directory\n", exit: 1}
	}}
	te := newEnv(map[string]boxes.Runner{"b": f})
	done, why, err := UnitDown("id", "b", "nope").Check(context.Background(), te.Env)
	if err != nil || !done || why != "nope is unknown and not-found on b" {
		t.Fatalf("check = %v %q %v", done, why, err)
	}
}

func TestStopServices(t *testing.T) {
	ctx := context.Background()
	running := map[string]bool{"nbh-uwsgi": true, "nbh-monitor": true, "docker": false}
	order := []string{"nbh-uwsgi", "nbh-monitor", "docker"}
	f := &fakeRunner{script: func(cmd string) reply {
		switch cmd {
		case "systemctl is-active -- nbh-uwsgi nbh-monitor docker":
			var out string
			for _, s := range order {
				out += map[bool]string{true: "active\n", false: "inactive\n"}[running[s]]
			}
			return reply{out: out, exit: 3}
		case "systemctl stop -- nbh-uwsgi nbh-monitor docker":
			for k := range running {
				running[k] = false
			}
			return reply{}
		case "systemctl start -- nbh-uwsgi nbh-monitor docker":
			for k := range running {
				running[k] = true
			}
			return reply{}
		}
		return reply{exit: 127}
	}}
	te := newEnv(map[string]boxes.Runner{"thurst": f})
	s := StopServices("redirect/stop-app", "thurst", order)
	if d := s.Describe(); !equalStrings(d.Commands, []string{"systemctl stop -- nbh-uwsgi nbh-monitor docker"}) ||
		!equalStrings(d.Undo, []string{"systemctl start -- nbh-uwsgi nbh-monitor docker"}) {
		t.Errorf("describe = %+v", d)
	}
	done, why, err := s.Check(ctx, te.Env)
	if done || err != nil || why != "nbh-uwsgi is active, nbh-monitor is active on thurst" {
		t.Fatalf("check = %v %q %v", done, why, err)
	}
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if done, _, err := s.Check(ctx, te.Env); !done || err != nil {
		t.Fatalf("after apply: %v %v", done, err)
	}
	if err := s.Undo(ctx, te.Env); err != nil || !running["docker"] {
		t.Fatalf("undo: %v", err)
	}
}

func TestStopServicesShortAnswer(t *testing.T) {
	f := &fakeRunner{script: func(string) reply { return reply{out: "active\n", exit: 0} }}
	te := newEnv(map[string]boxes.Runner{"b": f})
	if _, _, err := StopServices("id", "b", []string{"a", "b"}).Check(context.Background(), te.Env); err == nil {
		t.Fatal("one answer for two services was accepted")
	}
}
