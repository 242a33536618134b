package fsm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"boxswap/boxes"
	"boxswap/state"
	"boxswap/steps"
)

func planIDs(t *testing.T, cfg *boxes.Config, event Event) []string {
	t.Helper()
	st, err := Steps(cfg, state.Meta{Cycle: 1, From: 27, To: 29}, event)
	if err != nil {
		t.Fatalf("%s: %v", event, err)
	}
	var ids []string
	seen := map[string]bool{}
	for _, s := range st {
		if seen[s.ID()] {
			t.Fatalf("%s: step id %s twice", event, s.ID())
		}
		seen[s.ID()] = true
		if !strings.HasPrefix(s.ID(), string(event)+"/") {
			t.Fatalf("%s: step id %s not under the event", event, s.ID())
		}
		ids = append(ids, s.ID())
	}
	return ids
}

func before(t *testing.T, ids []string, a, b string) {
	t.Helper()
	i, j := slices.Index(ids, a), slices.Index(ids, b)
	if i < 0 || j < 0 {
		t.Fatalf("missing %s (%d) or %s (%d) in %v", a, i, b, j, ids)
	}
	if i >= j {
		t.Fatalf("%s must come before %s: %v", a, b, ids)
	}
}

func TestUpgradeDevRunsTheSeedsProcedureOnTheDevelopmentBox(t *testing.T) {
	cfg := testConfig()
	st, _ := Steps(cfg, state.Meta{From: 27, To: 29}, UpgradeDev)
	ids := planIDs(t, cfg, UpgradeDev)
	order := []string{
		"upgrade-dev/preflight/production/thurst", "upgrade-dev/preflight/development/thermals",
		"upgrade-dev/pip-snapshot", "upgrade-dev/dnf-upgrade", "upgrade-dev/dnf-plugin",
		"upgrade-dev/dnf-download", "upgrade-dev/reboot", "upgrade-dev/os-release",
		"upgrade-dev/pip-reinstall", "upgrade-dev/devel-branch", "upgrade-dev/install",
	}
	for i := 1; i < len(order); i++ {
		before(t, ids, order[i-1], order[i])
	}
	for _, s := range st {
		d := s.Describe()
		if strings.HasPrefix(s.ID(), "upgrade-dev/preflight/") {
			continue
		}
		if d.Box != "thermals" {
			t.Errorf("%s runs on %q, want thermals (the development box)", s.ID(), d.Box)
		}
		if s.ID() == "upgrade-dev/reboot" && !d.Irreversible {
			t.Errorf("the reboot into the new release must be marked irreversible")
		}
		if s.ID() == "upgrade-dev/dnf-download" && !slices.Contains(d.Commands, "systemd-run --unit=boxswap-upgrade-dev-dnf-download -- dnf system-upgrade download --releasever=29 -y") {
			t.Errorf("download commands %q", d.Commands)
		}
	}
}

func TestUpgradeProdRunsOnTheIdleOldProductionBox(t *testing.T) {
	cfg := testConfig()
	st, _ := Steps(cfg, state.Meta{From: 27, To: 29}, UpgradeProd)
	ids := planIDs(t, cfg, UpgradeProd)
	before(t, ids, "upgrade-prod/preflight/idle/thurst", "upgrade-prod/dnf-upgrade")
	// It irreversibly upgrades production's only fallback: gated first.
	if ids[0] != "upgrade-prod/approve" {
		t.Fatalf("upgrade-prod must begin at the gate: %v", ids)
	}
	for _, s := range st {
		// Preflights and record-code only read the other box.
		if strings.HasPrefix(s.ID(), "upgrade-prod/preflight/") || s.ID() == "upgrade-prod/approve" || s.ID() == "upgrade-prod/record-code/thermals" {
			continue
		}
		if b := s.Describe().Box; b != "thurst" {
			t.Errorf("%s runs on %q, want thurst", s.ID(), b)
		}
	}
}

// The same code on both boxes: upgrade-dev branches at origin's branch
// (or upgrade.devel_ref), upgrade-prod at the commit thermals runs, read
// at run time; switch-back checks thurst is at it before stopping
// anything; both upgrades refuse a dirty checkout before changing it.
func TestSameCodePlan(t *testing.T) {
	cfg := testConfig()
	cmds := func(event Event, id string) []string {
		st, err := Steps(cfg, state.Meta{From: 27, To: 29}, event)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st {
			if s.ID() == id {
				return s.Describe().Commands
			}
		}
		t.Fatalf("%s: no step %s", event, id)
		return nil
	}
	co := cfg.App.Checkout
	if got := cmds(UpgradeDev, "upgrade-dev/devel-branch"); got[2] != "git -C "+co+" checkout -b f29 origin/f29" {
		t.Errorf("upgrade-dev branch: %q", got)
	}
	cfg.Upgrade.DevelRef = "v4.2"
	if got := cmds(UpgradeDev, "upgrade-dev/devel-branch"); got[2] != "git -C "+co+" checkout -b f29 v4.2" {
		t.Errorf("upgrade-dev branch at devel_ref: %q", got)
	}
	if got := cmds(UpgradeProd, "upgrade-prod/devel-branch"); !strings.Contains(got[0], "fetch --quiet ssh://") ||
		got[2] != "git -C "+co+" checkout -b f29 '<thermals/code>'" {
		t.Errorf("upgrade-prod branch: %q", got)
	}
	before(t, planIDs(t, cfg, UpgradeProd), "upgrade-prod/record-code/thermals", "upgrade-prod/devel-branch")
	for _, ev := range []Event{UpgradeDev, UpgradeProd} {
		ids := planIDs(t, cfg, ev)
		box := map[Event]string{UpgradeDev: "thermals", UpgradeProd: "thurst"}[ev]
		before(t, ids, string(ev)+"/preflight/checkout/"+box, string(ev)+"/devel-branch")
	}
	ids := planIDs(t, cfg, SwitchBack)
	before(t, ids, "switch-back/preflight/checkout/thurst", "switch-back/preflight/same-code/thurst")
	for _, id := range ids {
		if strings.HasPrefix(id, "switch-back/sync/") {
			before(t, ids, "switch-back/preflight/same-code/thurst", id)
		}
	}
	before(t, ids, "switch-back/preflight/same-code/thurst", "switch-back/stop-writers/thermals")
}

// The window without production holds only: stop the writers on both
// boxes, the final delta sync, start the new box's writers, the address
// move. Everything slow comes first, app.check on the new box included;
// the checks of the address and through it come after (issue 13, item 3).
func TestRedirectKeepsTheCutOverWindowShort(t *testing.T) {
	cfg := testConfig()
	ids := planIDs(t, cfg, Redirect)
	if ids[0] != "redirect/approve" {
		t.Fatalf("redirect must begin at the gate: %v", ids)
	}
	before(t, ids, "redirect/drop-development/thermals", "redirect/sync/students")
	order := []string{"redirect/sync/raw", "redirect/settings/thermals", "redirect/install/thermals", "redirect/start-services/thermals",
		"redirect/check/thermals", "redirect/stop-writers/thurst", "redirect/stop-writers/thermals", "redirect/final-sync/students",
		"redirect/final-sync/raw", "redirect/start-writers/thermals", "redirect/release-address/thurst", "redirect/take-address/thermals",
		"redirect/verify-address/thermals", "redirect/check-production", "redirect/record-time"}
	i := slices.Index(ids, order[0])
	if i < 0 || !slices.Equal(ids[i:], order) {
		t.Fatalf("redirect ends with\n%s\nwant\n%s", strings.Join(ids[max(i, 0):], "\n"), strings.Join(order, "\n"))
	}
}

// The writers are stopped on both boxes, the old box's containers too,
// and started on the new box only; the check through the production
// address runs from the old box and moves production back to the start
// of the window when it fails.
func TestMoveStopsWritersAndChecks(t *testing.T) {
	cfg := testConfig()
	st, err := Steps(cfg, state.Meta{From: 27, To: 29}, SwitchBack)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]steps.Description{}
	for _, s := range st {
		got[s.ID()] = s.Describe()
	}
	cmds := func(id string) string {
		t.Helper()
		d, ok := got[id]
		if !ok {
			t.Fatalf("no step %s", id)
		}
		return strings.Join(d.Commands, "\n")
	}
	if c := cmds("switch-back/stop-writers/thermals"); !strings.Contains(c, "systemctl stop -- nbh-monitor docker") || !strings.Contains(c, "podman ps") {
		t.Errorf("stop-writers/thermals: %s", c)
	}
	if c := cmds("switch-back/stop-writers/thurst"); strings.Contains(c, "podman") || strings.Contains(c, "nbh-uwsgi") {
		t.Errorf("stop-writers/thurst stops more than the writers: %s", c)
	}
	if c := cmds("switch-back/start-writers/thurst"); c != "systemctl start -- nbh-monitor docker" {
		t.Errorf("start-writers/thurst: %s", c)
	}
	if c := cmds("switch-back/check/thurst"); !strings.Contains(c, "--resolve nbhosting.inria.fr:443:127.0.0.1 --cacert /etc/ssl/lab-ca.pem") ||
		!strings.Contains(c, "https://nbhosting.inria.fr/hub/login") || got["switch-back/check/thurst"].Box != "thurst" {
		t.Errorf("check/thurst: %s on %s", c, got["switch-back/check/thurst"].Box)
	}
	d := got["switch-back/check-production"]
	if d.Box != "thermals" || d.RevertTo != "switch-back/stop-writers/thermals" || !strings.Contains(cmds("switch-back/check-production"), "--resolve nbhosting.inria.fr:443:193.51.196.151") {
		t.Errorf("check-production: on %s, reverts to %q: %s", d.Box, d.RevertTo, cmds("switch-back/check-production"))
	}
	if c := cmds("switch-back/release-address/thermals"); !strings.Contains(c, "ip -o -4 addr show to 193.51.196.151") {
		t.Errorf("release-address does not check the address: %s", c)
	}
	if c := cmds("switch-back/verify-address/thurst"); !strings.Contains(c, "arping -q -U") || !strings.Contains(c, "arping -D") {
		t.Errorf("verify-address: %s", c)
	}
	// Without app.check nor an address: the move as before, no checks.
	cfg.App.Check, cfg.Functions = nil, map[string]boxes.Function{boxes.Production: {AddressUnit: "nbhosting-addr"}, boxes.Development: {AddressUnit: "nbhosting-dev-addr"}}
	ids := planIDs(t, cfg, SwitchBack)
	for _, id := range []string{"switch-back/check/thurst", "switch-back/check-production", "switch-back/verify-address/thurst"} {
		if slices.Contains(ids, id) {
			t.Errorf("%s planned without app.check or an address", id)
		}
	}
}

func TestSwitchBackMovesProductionHome(t *testing.T) {
	cfg := testConfig()
	st, _ := Steps(cfg, state.Meta{From: 27, To: 29}, SwitchBack)
	ids := planIDs(t, cfg, SwitchBack)
	if ids[0] != "switch-back/approve" {
		t.Fatalf("switch-back must ask first: %v", ids)
	}
	if slices.Contains(ids, "switch-back/drop-development/thurst") {
		t.Fatalf("switch-back drops no development function: %v", ids)
	}
	before(t, ids, "switch-back/release-address/thermals", "switch-back/take-address/thurst")
	for _, s := range st {
		if strings.Contains(s.ID(), "sync/") && !strings.Contains(strings.Join(s.Describe().Commands, " "), "root@thurst.inria.fr:/nbhosting/") {
			t.Errorf("%s does not sync towards thurst: %q", s.ID(), s.Describe().Commands)
		}
		if strings.Contains(s.ID(), "sync/") && s.Describe().Box != "thermals" {
			t.Errorf("%s must run on the source box thermals, runs on %s", s.ID(), s.Describe().Box)
		}
	}
}

func TestEpilogueMakesThermalsADevelopmentBoxAgain(t *testing.T) {
	cfg := testConfig()
	ids := planIDs(t, cfg, Epilogue)
	before(t, ids, "epilogue/backup/students", "epilogue/install/thermals")
	before(t, ids, "epilogue/settings/thermals", "epilogue/install/thermals")
	before(t, ids, "epilogue/install/thermals", "epilogue/take-address/thermals")
	if slices.Contains(ids, "epilogue/cleanup-containers/thermals") {
		t.Fatal("container cleanup must be off by default")
	}
	cfg.Cleanup.Containers = true
	cfg.Data.BackupSuffix = ""
	ids = planIDs(t, cfg, Epilogue)
	if !slices.Contains(ids, "epilogue/cleanup-containers/thermals") || slices.Contains(ids, "epilogue/backup/students") {
		t.Fatalf("cleanup on, backup off: %v", ids)
	}
}

func TestHooksRunBeforeAndAfterOnTheBoxTheyName(t *testing.T) {
	cfg := testConfig()
	cfg.Hooks = map[Event]boxes.Hooks{
		Redirect: {
			Before: []boxes.Hook{{Name: "announce", On: boxes.Production, Run: "wall 'moving'"}},
			After:  []boxes.Hook{{Name: "smoke", On: "thermals", Run: "curl -fs localhost", Check: "true", Undo: "echo undo"}},
		},
		UpgradeProd: {Before: []boxes.Hook{{Name: "nowhere", On: boxes.Development, Run: "true", Line: 42}}},
	}
	st, err := Steps(cfg, state.Meta{From: 27, To: 29}, Redirect)
	if err != nil {
		t.Fatal(err)
	}
	// Issue 10, item 7: the gate first, then the before hooks.
	if st[0].ID() != "redirect/approve" {
		t.Fatalf("step 1 is %s, want the gate redirect/approve before the hooks", st[0].ID())
	}
	first, last := st[1].Describe(), st[len(st)-1].Describe()
	if st[1].ID() != "redirect/hook/before/announce" || first.Box != "thurst" || first.Commands[0] != "wall 'moving'" {
		t.Fatalf("before hook: %s %+v", st[1].ID(), first)
	}
	if st[len(st)-1].ID() != "redirect/hook/after/smoke" || last.Box != "thermals" {
		t.Fatalf("after hook: %s %+v", st[len(st)-1].ID(), last)
	}
	// At redirected nobody holds development: the hook names the file and line.
	_, err = Steps(cfg, state.Meta{From: 27, To: 29}, UpgradeProd)
	if err == nil || !strings.Contains(err.Error(), "boxes.yaml:42") {
		t.Fatalf("hook on a function nobody holds: %v", err)
	}
}

func TestEveryStepDescribesItsCommands(t *testing.T) {
	cfg := testConfig()
	for _, tr := range Transitions {
		st, err := Steps(cfg, state.Meta{From: 27, To: 29}, tr.Event)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st {
			d := s.Describe()
			if d.Text == "" {
				t.Errorf("%s has no text", s.ID())
			}
			if d.Box == "" && s.ID() != string(tr.Event)+"/approve" && s.ID() != "redirect/record-time" {
				t.Errorf("%s runs on no box", s.ID())
			}
			var _ steps.Step = s
		}
	}
}

// redirect starts thermals' copy from the backup the last epilogue left
// (students.prod); switch-back has none to start from on thurst.
func TestRedirectSyncsStartFromTheLastBackup(t *testing.T) {
	cfg := testConfig()
	for _, tc := range []struct {
		event Event
		want  bool
	}{{Redirect, true}, {SwitchBack, false}} {
		syncs := syncSteps(t, cfg, tc.event)
		for _, s := range syncs {
			cmds := strings.Join(s.Describe().Commands, "\n")
			folder := s.ID()[strings.LastIndex(s.ID(), "/")+1:]
			if got := strings.Contains(cmds, "'--copy-dest=../"+folder+".prod'"); got != tc.want {
				t.Errorf("%s: basis %v, want %v:\n%s", s.ID(), got, tc.want, cmds)
			}
		}
		if len(syncs) != 4 {
			t.Fatalf("%s: %d syncs, want 4", tc.event, len(syncs))
		}
	}
	cfg.Data.BackupSuffix = ""
	st, _ := Steps(cfg, state.Meta{From: 27, To: 29}, Redirect)
	for _, s := range st {
		if strings.Contains(strings.Join(s.Describe().Commands, " "), "--copy-dest") {
			t.Errorf("%s uses a basis with no backup suffix", s.ID())
		}
	}
}

// upgrade.method: apt replaces the dnf steps with the apt ones, before the
// same reboot-and-check, and names releases by their codename.
func TestUpgradeWithApt(t *testing.T) {
	cfg := testConfig()
	cfg.Upgrade = boxes.Upgrade{Method: boxes.MethodApt, From: 12, To: 13, RebootTimeout: time.Hour, DevelBranch: "trixie", MinFreeDisk: 1 << 20,
		Suites: map[int]string{12: "bookworm", 13: "trixie"}, KeepSources: []string{"nodesource.sources"}}
	for _, ev := range []Event{UpgradeDev, UpgradeProd} {
		st, err := Steps(cfg, state.Meta{Cycle: 1, From: 12, To: 13}, ev)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		desc := map[string]steps.Description{}
		for _, s := range st {
			ids = append(ids, s.ID())
			desc[strings.TrimPrefix(s.ID(), string(ev)+"/")] = s.Describe()
		}
		order := []string{"pip-snapshot", "apt-sources", "apt-update", "apt-upgrade", "reboot", "os-release", "pip-reinstall", "devel-branch", "install"}
		for i := 1; i < len(order); i++ {
			before(t, ids, string(ev)+"/"+order[i-1], string(ev)+"/"+order[i])
		}
		for _, id := range ids {
			if strings.Contains(id, "dnf") {
				t.Errorf("%s: dnf step %s in an apt upgrade", ev, id)
			}
		}
		src := desc["apt-sources"]
		if !strings.Contains(src.Commands[0], "bookworm((-[a-z]+)*([[:space:]]|$))/\\1trixie") || !strings.Contains(src.Commands[0], "' nodesource.sources '") {
			t.Errorf("%s: apt-sources commands %q", ev, src.Commands)
		}
		if r := desc["reboot"]; !r.Irreversible || r.Commands[1] != "systemctl reboot" || len(r.Commands) != 5 ||
			r.Text != "reboot "+r.Box+" into trixie (release 13) and wait up to 1h0m0s for it to come back" {
			t.Errorf("%s: reboot %+v", ev, r)
		}
		if d := desc["os-release"]; d.Text != "check that "+d.Box+" runs trixie (release 13)" {
			t.Errorf("%s: os-release %q", ev, d.Text)
		}
		if d := desc["devel-branch"]; !strings.Contains(d.Text, "trixie") {
			t.Errorf("%s: devel branch %q", ev, d.Text)
		}
	}
	st, err := Steps(cfg, state.Meta{Cycle: 1, From: 12, To: 13}, Redirect)
	if err != nil {
		t.Fatal(err)
	}
	if d := st[0].Describe(); !strings.Contains(d.Text, "thermals has been validated on trixie;") {
		t.Errorf("gate %q", d.Text)
	}
}

// recorder is a box that records the commands it is asked to run and
// answers none of them successfully.
type recorder struct {
	mu   sync.Mutex
	cmds []string
}

func (r *recorder) Run(_ context.Context, cmd string, _, _ io.Writer) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds = append(r.cmds, cmd)
	return 1, nil
}

// Issue 10, item 7: the docs' `wall 'nbhosting moves in 5 minutes'` went
// out even when the gate was then declined. The gate now comes first: a
// declined redirect ran nothing on any box.
func TestADeclinedGateRunsNoBeforeHook(t *testing.T) {
	cfg := testConfig()
	cfg.Hooks = map[Event]boxes.Hooks{Redirect: {
		Before: []boxes.Hook{{Name: "warn-users", On: boxes.Production, Run: "wall 'nbhosting moves in 5 minutes'"}},
	}}
	store := state.Open(filepath.Join(t.TempDir(), "boxswap.db"))
	if err := store.Init(state.Meta{Phase: DevUpgraded, Cycle: 1, From: 27, To: 29}); err != nil {
		t.Fatal(err)
	}
	box := &recorder{}
	e := &Engine{Config: cfg, Store: store, Who: "tester@here", Command: "next",
		Boxes: func(string) (boxes.Runner, error) { return box, nil },
		Approve: func(context.Context, string, string) (string, error) {
			return "", fmt.Errorf("%w: the answer was no", steps.ErrNotApproved)
		},
	}
	if _, err := e.Next(context.Background()); !errors.Is(err, steps.ErrNotApproved) {
		t.Fatalf("next: %v, want not approved", err)
	}
	if len(box.cmds) != 0 {
		t.Errorf("commands ran before the gate was approved: %q", box.cmds)
	}
}

// A cycle with to equal to from swaps without a release change: the
// upgrade transitions keep their checks, the devel branch and install.sh,
// and have no step that changes the release or reboots.
func TestSwapWithoutReleaseChange(t *testing.T) {
	cfg := testConfig()
	for _, ev := range []Event{UpgradeDev, UpgradeProd} {
		st, err := Steps(cfg, state.Meta{Cycle: 1, From: 27, To: 27}, ev)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range st {
			ids = append(ids, s.ID())
		}
		all := strings.Join(ids, " ")
		for _, no := range []string{"dnf-", "reboot", "os-release", "pip-"} {
			if strings.Contains(all, "/"+no) {
				t.Errorf("%s without a release change plans %s: %v", ev, no, ids)
			}
		}
		for _, want := range []string{"/preflight/release/", "/devel-branch", "/install"} {
			if !strings.Contains(all, want) {
				t.Errorf("%s without a release change lacks %s: %v", ev, want, ids)
			}
		}
	}
}
