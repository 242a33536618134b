package fsm

import (
	"strings"
	"testing"

	"boxswap/state"
)

// The move's syncs: pre-syncs repeat passes and open the shared
// connection; final syncs reuse it and start with a run that deletes
// nothing (steps.Sync holds the logic; this pins what move asks for).
func TestMoveSyncsPrepareAShortWindow(t *testing.T) {
	cfg := testConfig()
	for _, event := range []Event{Redirect, SwitchBack} {
		plan, err := Steps(cfg, state.Meta{From: 27, To: 29}, event)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, s := range plan {
			id, d := s.ID(), s.Describe()
			all := strings.Join(d.Commands, "\n")
			for _, f := range cfg.Data.Folders {
				switch id {
				case string(event) + "/sync/" + f:
					seen[id] = true
					if !strings.Contains(d.Text, "up to 3 passes") || !strings.Contains(all, "ControlMaster=yes -o ControlPersist=") {
						t.Errorf("%s: not a multi-pass pre-sync leaving a shared connection: %s\n%s", id, d.Text, all)
					}
				case string(event) + "/final-sync/" + f:
					seen[id] = true
					if !strings.Contains(firstRsync(d.Commands), "--max-delete=-1") || !strings.Contains(all, "--files-from") || !strings.Contains(all, "ControlPath=") || strings.Contains(all, "ControlMaster=yes") {
						t.Errorf("%s: the final sync does not start with a no-delete run over the shared connection:\n%s", id, all)
					}
				}
			}
		}
		if len(seen) != 2*len(cfg.Data.Folders) {
			t.Errorf("%s: syncs found %v", event, seen)
		}
	}
}

// firstRsync is the first rsync command of a step (the change watches'
// commands come before it).
func firstRsync(cmds []string) string {
	for _, c := range cmds {
		if strings.HasPrefix(c, "rsync ") {
			return c
		}
	}
	return ""
}
