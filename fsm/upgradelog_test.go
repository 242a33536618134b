package fsm

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"boxswap/boxes"
)

// The reboot step's error shows dnf's own lines of the upgrade boot's
// journal, not the shutdown that ends it; without any, the whole log.
func TestDnfUpgradeLogKeepsDnfsLines(t *testing.T) {
	dir := t.TempDir()
	journal := filepath.Join(dir, "journal")
	fake := "#!/bin/sh\ncat " + boxes.Quote(journal) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "dnf"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(log string) string {
		t.Helper()
		if err := os.WriteFile(journal, []byte(log), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", "-c", dnfUpgradeLog)
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	log := "Dec 01 thermals systemd[1]: Starting System Upgrade using DNF...\n" +
		"Dec 01 thermals dnf-3[412]: error: lua script failed: fedora-release-29 refuses to install\n" +
		"Dec 01 thermals dnf[412]: Error: Transaction failed\n" +
		"Dec 01 thermals systemd[1]: Reached target Reboot.\n"
	if got := run(log); got != "Dec 01 thermals dnf-3[412]: error: lua script failed: fedora-release-29 refuses to install\nDec 01 thermals dnf[412]: Error: Transaction failed\n" {
		t.Errorf("dnf's lines: %q", got)
	}
	if got := run("-- No entries --\n"); got != "-- No entries --\n" {
		t.Errorf("without dnf lines: %q", got)
	}
}
