package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"boxswap/internal/golden"
	"boxswap/state"
)

// golden compares got with testdata/golden/NAME; -update rewrites it.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", "golden", name), got, "go test ./cmd/boxswap -run "+t.Name()+" -update rewrites it")
}

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
	printLog(&b, out)
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
	printStatus(&b, s)
	checkGolden(t, "status.txt", b.String())
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
