package fsm

import (
	"slices"
	"strings"
	"testing"

	"boxswap/boxes"
	"boxswap/state"
	"boxswap/steps"
)

// data.files: each file is its own sync step in both moves, synced as a
// file (no trailing slash, no basis), and backed up in the epilogue like
// the folders; data.exclude reaches every sync.
func TestMovesSyncTheDataFiles(t *testing.T) {
	cfg := testConfig()
	cfg.Data.Files = []string{"db.sqlite3"}
	cfg.Data.Exclude = []string{".~*"}
	for _, ev := range []Event{Redirect, SwitchBack} {
		ids := planIDs(t, cfg, ev)
		e := string(ev)
		before(t, ids, e+"/sync/raw", e+"/sync/db.sqlite3")
		before(t, ids, e+"/sync/db.sqlite3", e+"/install/"+map[Event]string{Redirect: "thermals", SwitchBack: "thurst"}[ev])
		before(t, ids, e+"/final-sync/raw", e+"/final-sync/db.sqlite3")
		for _, s := range syncSteps(t, cfg, ev) {
			cmds := strings.Join(s.Describe().Commands, "\n")
			if !strings.Contains(cmds, "'--exclude=.~*'") {
				t.Errorf("%s: no exclude:\n%s", s.ID(), cmds)
			}
			if strings.HasSuffix(s.ID(), "/db.sqlite3") {
				if !strings.Contains(cmds, " -- /nbhosting/db.sqlite3 root@") || strings.Contains(cmds, "--copy-dest") {
					t.Errorf("%s: not synced as a file without a basis:\n%s", s.ID(), cmds)
				}
				if !strings.Contains(cmds, "stat -c %s -- /nbhosting/db.sqlite3") {
					t.Errorf("%s: the destination's guard does not measure the file:\n%s", s.ID(), cmds)
				}
			}
			if !strings.Contains(cmds, "getent ahosts -- "+cfg.Functions["production"].Address) {
				t.Errorf("%s: the destination's guard does not look for production's address:\n%s", s.ID(), cmds)
			}
		}
	}
	ids := planIDs(t, cfg, Epilogue)
	if !slices.Contains(ids, "epilogue/backup/db.sqlite3") || !slices.Contains(ids, "epilogue/backup/students") {
		t.Errorf("epilogue backs up %v", ids)
	}
	cfg.Data.BackupSuffix = ""
	if ids := planIDs(t, cfg, Epilogue); slices.Contains(ids, "epilogue/backup/db.sqlite3") {
		t.Errorf("a backup without backup_suffix: %v", ids)
	}
}

// Without a declared address, the destination's guard looks for what
// production's alias resolves to there; the data guards' settings reach
// every sync's plan text.
func TestSyncGuardLooksForTheAliasWithoutAnAddress(t *testing.T) {
	cfg := testConfig()
	prod := cfg.Functions[boxes.Production]
	prod.Address = ""
	cfg.Functions[boxes.Production] = prod
	cfg.Data.MinSourceFraction = 0.25
	for _, s := range syncSteps(t, cfg, Redirect) {
		d := s.Describe()
		if cmds := strings.Join(d.Commands, "\n"); !strings.Contains(cmds, "getent ahosts -- "+prod.Alias+" ") {
			t.Errorf("%s: the destination's guard does not look for %s:\n%s", s.ID(), prod.Alias, cmds)
		}
		if !strings.Contains(d.Text, "less than 0.25 of the destination's entries") {
			t.Errorf("%s: plan does not say data.min_source_fraction: %s", s.ID(), d.Text)
		}
	}
}

// syncSteps are the sync and final-sync steps of event's plan (from 27 to
// 29); a plan without any fails the test.
func syncSteps(t *testing.T, cfg *boxes.Config, event Event) []steps.Step {
	t.Helper()
	st, err := Steps(cfg, state.Meta{From: 27, To: 29}, event)
	if err != nil {
		t.Fatal(err)
	}
	var out []steps.Step
	for _, s := range st {
		if strings.Contains(s.ID(), "sync/") {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no sync step", event)
	}
	return out
}
