package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"boxswap/boxes"
	"boxswap/fsm"
	"boxswap/internal/golden"
	"boxswap/internal/text"
	"boxswap/state"
)

// golden compares got with testdata/golden/NAME; -update rewrites it.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Check(t, filepath.Join(goldenDir, name), got, "go test ./cmd/boxswap -run "+t.Name()+" -update rewrites it")
}

// goldenDir is absolute: a test may change its working folder (t.Chdir).
var goldenDir, _ = filepath.Abs(filepath.Join("testdata", "golden"))

// inUTC shows times in UTC for the test, so the golden files hold them.
func inUTC(t *testing.T) {
	old := time.Local
	time.Local = time.UTC
	t.Cleanup(func() { time.Local = old })
}

// A state with a done transition and a failed one, written with fixed
// times, as log and log --json show it.
func TestLogGolden(t *testing.T) {
	inUTC(t)
	dir := t.TempDir()
	store := state.Open(filepath.Join(dir, "boxswap.db"))
	t0 := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	var err error
	if err := store.Init(state.Meta{Phase: "start", Cycle: 1, From: 27, To: 29, Changed: t0}); err != nil {
		t.Fatal(err)
	}
	if err := store.Record(state.Event{Time: t0, Who: "op@desk", Kind: "cycle", Detail: "cycle 1 begins: f27 to f29"}); err != nil {
		t.Fatal(err)
	}
	exit0, exit1 := 0, 1
	id, err := store.Begin(&state.Attempt{Cycle: 1, Event: "upgrade-dev", From: "start", To: "dev-upgraded", Status: state.Running, Command: "next", Started: t0,
		Steps: []state.StepRecord{
			{ID: "upgrade-dev/dnf-download", Box: "thermals", Text: "download f29", Status: state.StepDone, Attempts: 1, Started: t0, Ended: at(12*time.Minute + 3*time.Second), Exit: &exit0},
			{ID: "upgrade-dev/reboot", Box: "thermals", Text: "reboot into f29", Status: state.StepDone, Attempts: 2, Started: at(13 * time.Minute), Ended: at(31 * time.Minute), Exit: &exit0},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetPhase(id, "dev-upgraded"); err != nil {
		t.Fatal(err)
	}
	if err := store.UpdateAttempt(id, func(a *state.Attempt) error { a.Ended = at(31 * time.Minute); return nil }); err != nil {
		t.Fatal(err)
	}
	id, err = store.Begin(&state.Attempt{Cycle: 1, Event: "redirect", From: "dev-upgraded", To: "redirected", Status: state.Running, Command: "next", Started: at(time.Hour),
		Steps: []state.StepRecord{
			{ID: "redirect/approve", Text: "ask the operator", Status: state.StepDone, Attempts: 1, Started: at(time.Hour), Ended: at(time.Hour + 2*time.Second)},
			{ID: "redirect/sync/raw", Box: "thurst", Text: "sync raw", Status: state.StepDone, Attempts: 1, Started: at(time.Hour + 2*time.Second), Ended: at(time.Hour + 3*time.Second), Exit: &exit0,
				Facts: map[string]string{"sync-vanished/redirect/sync/raw": "3 files vanished (rsync exit 24), accepted; last: a pass of the pre-sync"}},
			{ID: "redirect/sync/students", Box: "thurst", Text: "sync students", Status: state.StepFailed, Attempts: 1, Started: at(time.Hour + 3*time.Second), Ended: at(time.Hour + 5*time.Second), Exit: &exit1,
				Error: "refusing to sync students from thurst to thermals: the dry run would delete 2000 files on thermals, more than max_delete (1000)"},
			{ID: "redirect/final-sync/students", Box: "thurst", Text: "final sync", Status: state.Pending},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.UpdateAttempt(id, func(a *state.Attempt) error {
		a.Status, a.FailedStep, a.Error, a.Ended = state.Failed, "redirect/sync/students", "refusing to sync students", at(time.Hour+5*time.Second)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := store.Approve(state.Approval{Attempt: id, Gate: "redirect/approve", Who: "op@desk", When: at(time.Hour + time.Second)}); err != nil {
		t.Fatal(err)
	}
	// The store writes its own history lines with the clock and this
	// machine's user: those are fixed here, the rest is as read.
	var out logJSON
	if out.History, err = store.History(); err != nil {
		t.Fatal(err)
	}
	for i := range out.History {
		out.History[i].Time, out.History[i].Who = at(time.Duration(out.History[i].Seq)*time.Minute), "op@desk"
	}
	if out.Attempts, err = store.Attempts(); err != nil {
		t.Fatal(err)
	}
	if out.Approvals, err = store.Approvals(); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	printLog(&b, out, false)
	checkGolden(t, "log.txt", b.String())
	b.Reset()
	g := &globalOptions{stdout: &b}
	if err := g.printJSON(out); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "log.json", b.String())
}

// status side by side, from a fixed report.
func TestStatusGolden(t *testing.T) {
	s := statusJSON{keys: []string{"server_name", "ssl_certificate", "ssl_certificate_key"}, Boxes: []*boxStatus{
		{Name: "thurst", Host: "thurst.inria.fr", Declared: "production", Function: "none", Release: "29",
			Units:        []unitStatus{{"nbhosting-addr", "inactive", "disabled"}, {"nbhosting-dev-addr", "inactive", "disabled"}, {"nbh-uwsgi", "inactive", "enabled"}},
			SettingsFile: "/root/nbhosting/django/nbh_main/sitesettings.py",
			Settings:     []string{"server_name = 'nbhosting.inria.fr'", "ssl_certificate = '/etc/p.crt'", "ssl_certificate_key = '/etc/p.key'"},
			Data:         []folderSize{{"/nbhosting/students", true, 52 << 30}, {"/nbhosting/raw", true, 3 << 20}},
			Images:       []image{{"nbhosting/scipy:latest", "aaaa1111", true}, {"nbhosting/base:latest", "cccc3333", false}}},
		{Name: "thermals", Host: "thermals.inria.fr", Declared: "development", Function: "production", Release: "29",
			Units:         []unitStatus{{"nbhosting-addr", "active", "enabled"}, {"nbhosting-dev-addr", "inactive", "disabled"}, {"nbh-uwsgi", "active", "enabled"}},
			SettingsFile:  "/root/nbhosting/django/nbh_main/sitesettings.py",
			Settings:      []string{"server_name = 'nbhosting.inria.fr'", "ssl_certificate = '/etc/p.crt'"},
			Data:          []folderSize{{"/nbhosting/students", true, 52 << 30}, {"/nbhosting/raw", false, 0}},
			Images:        []image{{"nbhosting/scipy:latest", "bbbb2222", true}, {"nbhosting/base:latest", "cccc3333", false}, {"nbhosting/extra:1", "dddd4444", true}},
			SectionErrors: []string{"thermals: images: exit 1: Cannot connect to the Docker daemon"}},
	}}
	var b strings.Builder
	printStatus(&b, s, false)
	fits(t, "status", b.String())
	checkGolden(t, "status.txt", b.String())

	// Values too long for 80 columns are cut; --wide shows them whole.
	long := "'/etc/pki/tls/certs/nbhosting-production-wildcard-2026_inria_fr.fullchain.crt'"
	s.Boxes[0].Settings[1] = "ssl_certificate = " + long
	s.Boxes[0].Data[0].Path = "/srv/nbhosting-production-storage/courses/students"
	b.Reset()
	printStatus(&b, s, false)
	fits(t, "status, long values", b.String())
	checkGolden(t, "status-long.txt", b.String())
	b.Reset()
	printStatus(&b, s, true)
	if !strings.Contains(b.String(), long) || !strings.Contains(b.String(), s.Boxes[0].Data[0].Path) {
		t.Errorf("status --wide cut a value:\n%s", b.String())
	}
}

// log's default text shows earlier cycles one line per attempt, from their
// summaries, and the current cycle with its steps; --all shows every step.
func TestLogShowsEarlierCyclesOnOneLine(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "boxes.yaml")
	shipped, err := os.ReadFile("../../boxes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, shipped, 0o644); err != nil {
		t.Fatal(err)
	}
	store := state.Open(filepath.Join(dir, "boxswap.db"))
	for cycle := 1; cycle <= 2; cycle++ {
		id, err := store.Begin(&state.Attempt{Cycle: cycle, Event: "upgrade-dev", From: "start", To: "dev-upgraded", Status: state.Running, Command: "next", Started: time.Now(),
			Steps: []state.StepRecord{{ID: fmt.Sprintf("upgrade-dev/step-of-cycle-%d", cycle), Box: "thermals", Status: state.StepDone, Attempts: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.SetPhase(id, "dev-upgraded"); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := runCLI(t, "-c", cfg, "log")
	if code != 0 {
		t.Fatalf("log: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "earlier cycles") || !regexp.MustCompile(`attempt 1\s+upgrade-dev\s+cycle 1\s+done\s+1/1 steps done`).MatchString(out) {
		t.Fatalf("no one-line summary of cycle 1:\n%s", out)
	}
	if strings.Contains(out, "step-of-cycle-1") || !strings.Contains(out, "step-of-cycle-2") {
		t.Fatalf("steps shown: want only the current cycle's:\n%s", out)
	}
	_, out, _ = runCLI(t, "-c", cfg, "log", "--all")
	if !strings.Contains(out, "step-of-cycle-1") || !strings.Contains(out, "step-of-cycle-2") || strings.Contains(out, "earlier cycles") {
		t.Fatalf("log --all:\n%s", out)
	}
}

// fits fails t for each line of out wider than 80 columns (text.Width):
// what a person reads fits a terminal; --wide and --json have the rest.
func fits(t *testing.T, what, out string) {
	t.Helper()
	for i, l := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(l); n > text.Width {
			t.Errorf("%s: line %d is %d columns wide (at most %d):\n%s", what, i+1, n, text.Width, l)
		}
	}
}

// shippedCopy copies the shipped boxes.yaml into a temporary folder, where
// the state goes too, and returns its path.
func shippedCopy(t *testing.T) string { return etcdConfig(t) }

// cli runs a command line that must succeed and returns its stdout.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// The root's --help and every verb's, at 80 columns.
func TestHelpGolden(t *testing.T) {
	var verbs [][]string
	var walk func(path []string, c *cobra.Command)
	walk = func(path []string, c *cobra.Command) {
		verbs = append(verbs, path)
		for _, sub := range c.Commands() {
			if !sub.Hidden && sub.Name() != "help" {
				walk(append(slices.Clone(path), sub.Name()), sub)
			}
		}
	}
	walk(nil, newRootCommand(&globalOptions{}))
	if len(verbs) < 18 {
		t.Fatalf("only %d commands found", len(verbs))
	}
	for _, v := range verbs {
		name := strings.Join(append([]string{"boxswap"}, v...), "-")
		out := cli(t, append(v, "--help")...)
		fits(t, name+" --help", out)
		checkGolden(t, filepath.Join("help", name+".txt"), out)
	}
}

// plan --offline in the operator's words, and with --commands, at 80
// columns (plan --offline's golden copy is in golden_plain.txtar); --commands --wide shows each command exactly as --json has it.
func TestPlanGolden(t *testing.T) {
	cfg := shippedCopy(t)
	// Its golden copy is golden_plain.txtar's plan.txt.
	out := cli(t, "-c", cfg, "plan", "--offline")
	fits(t, "plan --offline", out)
	if strings.Contains(out, "$ ") || strings.Contains(out, "Apply") {
		t.Errorf("plan --offline shows commands or the code's words:\n%s", out)
	}
	out = cli(t, "-c", cfg, "plan", "--offline", "--commands")
	fits(t, "plan --offline --commands", out)
	checkGolden(t, "plan-commands.txt", out)
}

// The commands plan --commands --wide prints are those of plan --json,
// which are the steps' Describe().Commands, which steps'
// TestPlanIsWhatApplySends holds to what Apply sends: so what the operator
// reads is what runs.
func TestPlanCommandsAreWhatJSONShows(t *testing.T) {
	cfg := shippedCopy(t)
	var j planJSON
	if err := json.Unmarshal([]byte(cli(t, "-c", cfg, "--json", "plan", "--offline")), &j); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, s := range j.Steps {
		want = append(want, s.Commands...)
	}
	loaded, err := boxes.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	planned, err := fsm.Steps(loaded, state.Meta{Cycle: 1, From: loaded.Upgrade.From, To: loaded.Upgrade.To}, fsm.UpgradeDev)
	if err != nil {
		t.Fatal(err)
	}
	var described []string
	for _, s := range planned {
		described = append(described, s.Describe().Commands...)
	}
	if !slices.Equal(want, described) {
		t.Fatalf("plan --json's commands are not the steps' own:\n%q\n%q", want, described)
	}
	var got []string
	for _, l := range strings.Split(cli(t, "-c", cfg, "plan", "--offline", "--commands", "--wide"), "\n") {
		if c, ok := strings.CutPrefix(l, "    $ "); ok {
			got = append(got, c)
		}
	}
	if len(want) < 20 || !slices.Equal(got, want) {
		t.Fatalf("plan --commands --wide shows other commands than plan --json:\n%q\n%q", got, want)
	}
	// Folded, they are the same characters on more lines (a break stands
	// for a space, or splits a word too long for a line).
	folded := cli(t, "-c", cfg, "plan", "--offline", "--commands")
	var f []string
	for _, l := range strings.Split(folded, "\n") {
		if c, ok := strings.CutPrefix(l, "    $ "); ok {
			f = append(f, c)
		} else if c, ok := strings.CutPrefix(l, "        "); ok && len(f) > 0 {
			f[len(f)-1] += c
		}
	}
	unspaced := func(l []string) string { return strings.Join(strings.Fields(strings.Join(l, "\n")), "") }
	if len(f) != len(want) || unspaced(f) != unspaced(want) {
		t.Errorf("plan --commands folded is not the commands unfolded:\n%q\n%q", f, want)
	}
}

// where on a fresh state, and on a cycle in progress whose boxes.yaml no
// longer matches it: a warning, exit 0 (plan refuses, exit 7).
func TestWhereGolden(t *testing.T) {
	inUTC(t)
	// boxes.yaml by a relative path, as the messages show it.
	t.Chdir(filepath.Dir(shippedCopy(t)))
	cfg := "boxes.yaml"
	// Its golden copy is golden_plain.txtar's where.txt.
	out := cli(t, "-c", cfg, "where")
	fits(t, "where", out)

	dir := filepath.Dir(cfg)
	store := state.Open(filepath.Join(dir, "boxswap.db"))
	t0 := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	if err := store.Init(state.Meta{Phase: "dev-upgraded", Cycle: 1, From: 27, To: 29, Changed: t0}); err != nil {
		t.Fatal(err)
	}
	yaml, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(yaml), "to: 29", "to: 30", 1)
	if changed == string(yaml) {
		t.Fatal("the shipped boxes.yaml has no upgrade.to: 29")
	}
	if err := os.WriteFile(cfg, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCLI(t, "-c", cfg, "plan", "--offline"); code != exitPhase {
		t.Fatalf("plan on a changed boxes.yaml: exit %d, want %d", code, exitPhase)
	}
	out = cli(t, "-c", cfg, "where")
	fits(t, "where, boxes.yaml changed", out)
	checkGolden(t, "where-changed.txt", out)
	if !strings.Contains(out, "warning: boxes.yaml changed") {
		t.Errorf("where does not warn that boxes.yaml changed:\n%s", out)
	}
	var j whereJSON
	if err := json.Unmarshal([]byte(cli(t, "-c", cfg, "--json", "where")), &j); err != nil {
		t.Fatal(err)
	}
	if len(j.Warnings) == 0 {
		t.Errorf("where --json has no warnings")
	}
}

// redirectPending records the redirect as boxes.yaml (in the working
// folder) plans it, failed at its sync of students with cause, the steps
// before it done.
func redirectPending(t *testing.T, cause string) *boxes.Config {
	t.Helper()
	loaded, err := boxes.Load("boxes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	store := state.Open("boxswap.db")
	meta := state.Meta{Phase: fsm.DevUpgraded, Cycle: 1, From: 27, To: 29, Changed: time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)}
	if err := store.Init(meta); err != nil {
		t.Fatal(err)
	}
	planned, err := fsm.Steps(loaded, meta, fsm.Redirect)
	if err != nil {
		t.Fatal(err)
	}
	a := &state.Attempt{Cycle: 1, Event: fsm.Redirect, From: fsm.DevUpgraded, To: fsm.Redirected, Status: state.Failed,
		Command: "next", Started: meta.Changed, Configs: []string{loaded.Source}, FailedStep: "redirect/sync/students", Error: cause}
	status := state.StepDone
	for _, s := range planned {
		d := s.Describe()
		r := state.StepRecord{ID: s.ID(), Box: d.Box, Text: d.Text, Commands: d.Commands, Undo: d.Undo, Status: status, Attempts: 1}
		if s.ID() == a.FailedStep {
			r.Status, r.Attempts, r.Error, status = state.StepFailed, 2, cause, state.Pending
		} else if status == state.Pending {
			r.Attempts = 0
		}
		a.Steps = append(a.Steps, r)
	}
	id, err := store.Begin(a)
	if err != nil {
		t.Fatal(err)
	}
	// Begin records it running: as next leaves it when the step fails.
	if err := store.UpdateAttempt(id, func(x *state.Attempt) error { x.Status = state.Failed; return nil }); err != nil {
		t.Fatal(err)
	}
	return loaded
}

// where with a failed transition pending, its error too long for a line.
func TestWherePendingGolden(t *testing.T) {
	inUTC(t)
	t.Chdir(filepath.Dir(shippedCopy(t)))
	cause := "refusing to sync students from thurst to thermals: the dry run would delete 2000 files on thermals, " +
		"more than max_delete (1000); look at what it would delete (boxswap log), then boxswap resume --force max-delete if that is right"
	redirectPending(t, cause)
	out := cli(t, "where")
	fits(t, "where, a transition failed", out)
	checkGolden(t, "where-pending.txt", out)
	if strings.Contains(out, "warning") {
		t.Errorf("where warns with boxes.yaml unchanged:\n%s", out)
	}
	if wide := cli(t, "where", "--wide"); !strings.Contains(wide, cause) {
		t.Errorf("where --wide does not show the whole error:\n%s", wide)
	}
}

// where on a failed transition whose steps boxes.yaml now plans otherwise
// (max_delete changed): a warning with the difference, exit 0; resume
// refuses (exit 7).
func TestWherePlanChangedGolden(t *testing.T) {
	inUTC(t)
	t.Chdir(filepath.Dir(shippedCopy(t)))
	loaded := redirectPending(t, "refusing to sync students")
	changed := strings.Replace(loaded.Source, "max_delete: 1000", "max_delete: 50", 1)
	if changed == loaded.Source {
		t.Fatal("the shipped boxes.yaml has no max_delete: 1000")
	}
	if err := os.WriteFile("boxes.yaml", []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "--yes", "resume"); code != exitPhase {
		t.Fatalf("resume on a changed plan: exit %d, want %d: %s", code, exitPhase, errOut)
	}
	out := cli(t, "where")
	fits(t, "where, the pending plan changed", out)
	checkGolden(t, "where-plan-changed.txt", out)
	if !strings.Contains(out, "warning: boxes.yaml changed: boxes.yaml now plans the pending redirect") {
		t.Errorf("where does not warn that the pending plan changed:\n%s", out)
	}
}

// log of a whole cycle, every transition's steps as plan lists them, done;
// one step failed once with a long error, one marked done by hand, one
// with a warning.
func TestLogCycleGolden(t *testing.T) {
	inUTC(t)
	cfg := shippedCopy(t)
	loaded, err := boxes.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := state.Open(filepath.Join(filepath.Dir(cfg), "boxswap.db"))
	meta := state.Meta{Phase: fsm.Start, Cycle: 1, From: 27, To: 29}
	clock := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	tick := func(d time.Duration) time.Time { clock = clock.Add(d); return clock }
	if err := store.Init(meta); err != nil {
		t.Fatal(err)
	}
	exit0 := 0
	for _, tr := range fsm.Transitions {
		planned, err := fsm.Steps(loaded, meta, tr.Event)
		if err != nil {
			t.Fatal(err)
		}
		a := &state.Attempt{Cycle: 1, Event: tr.Event, From: tr.From, To: tr.To, Status: state.Running, Command: "next", Started: tick(time.Minute)}
		for i, s := range planned {
			d := s.Describe()
			started := clock
			r := state.StepRecord{ID: s.ID(), Box: d.Box, Text: d.Text, Status: state.StepDone, Attempts: 1, Started: started, Ended: tick(time.Duration(i+1) * 7 * time.Second), Exit: &exit0}
			switch i {
			case 3:
				r.Attempts, r.Error = 2, "thermals: exit 1: Error: Transaction test error: file /usr/lib/python3.6/site-packages/foo/__init__.py from install of python3-foo-2.0-1.fc29.noarch conflicts with file from package python3-foo-1.0-1.fc27.noarch; fixed by hand, then resumed"
			case 5:
				r.Facts = map[string]string{"sync-vanished/" + s.ID(): "3 files vanished (rsync exit 24), accepted"}
			case 7:
				r.Marked = &state.Mark{Who: "op@desk", Reason: "done by hand", Was: state.StepFailed, When: clock}
			}
			a.Steps = append(a.Steps, r)
		}
		id, err := store.Begin(a)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.SetPhase(id, tr.To); err != nil {
			t.Fatal(err)
		}
		end := tick(time.Second)
		if err := store.UpdateAttempt(id, func(a *state.Attempt) error { a.Ended = end; return nil }); err != nil {
			t.Fatal(err)
		}
		meta.Phase = tr.To
	}
	var out logJSON
	if out.History, err = store.History(); err != nil {
		t.Fatal(err)
	}
	for i := range out.History {
		out.History[i].Time, out.History[i].Who = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC).Add(time.Duration(out.History[i].Seq)*time.Minute), "op@desk"
	}
	if out.Attempts, err = store.Attempts(); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	printLog(&b, out, false)
	fits(t, "log", b.String())
	checkGolden(t, "log-cycle.txt", b.String())
	if n := strings.Count(b.String(), "\n"); n < 100 {
		t.Errorf("log of a whole cycle is %d lines: not the whole cycle", n)
	}
}
