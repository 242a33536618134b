package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// plant puts a hostile file at path: a link to victim, a dangling link
// (to missing), a link to /dev/null, a FIFO, a directory, an empty file.
var plants = []string{"link", "dangling-link", "devnull-link", "fifo", "directory", "empty"}

func plant(t *testing.T, kind, path, victim, missing string) {
	t.Helper()
	var err error
	switch kind {
	case "link":
		err = os.Symlink(victim, path)
	case "dangling-link":
		err = os.Symlink(missing, path)
	case "devnull-link":
		err = os.Symlink(os.DevNull, path)
	case "fifo":
		err = syscall.Mkfifo(path, 0o600)
	case "directory":
		err = os.Mkdir(path, 0o700)
	case "empty":
		var f *os.File
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
			err = f.Close()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestHostileOperator plants every kind of hostile file at every name
// boxswap reads or writes beside its state (the state, its lock, the logs
// folder, an attempt's log file) and runs every verb that touches them:
// none may exit 1 or run a step, and nothing is ever written through a
// link (the victim stays byte for byte, a dangling link's target is never
// created). The counts go in docs/reliability.md ("Hostile operator").
func TestHostileOperator(t *testing.T) {
	shipped, err := os.ReadFile(filepath.Join("..", "..", "boxes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	lab, err := labConfig(string(shipped))
	if err != nil {
		t.Fatal(err)
	}
	verbs := [][]string{{"where"}, {"where", "--json"}, {"plan", "--offline"}, {"log"}, {"log", "--json"}, {"--yes", "next"}, {"--yes", "resume"}, {"rollback"}, {"unlock", "--force", "--reason", "test"}}
	spots := []string{"boxswap.db", "boxswap.db.lock", "boxswap.db.logs", "boxswap.db.logs/0001-upgrade-dev.log"}
	inputs, refused, touched := 0, 0, 0
	codes := map[int]int{}
	for _, spot := range spots {
		for _, kind := range plants {
			// What boxswap itself leaves there is not hostile: an empty
			// lock (a crash before the holder was written), its logs
			// folder, an empty log file.
			if kind == "empty" && spot != "boxswap.db" || kind == "directory" && spot == "boxswap.db.logs" {
				continue
			}
			for _, verb := range verbs {
				dir := t.TempDir()
				outside := t.TempDir()
				victim := filepath.Join(outside, "victim")
				missing := filepath.Join(outside, "missing")
				keep := []byte("keep\n")
				if err := os.WriteFile(victim, keep, 0o600); err != nil {
					t.Fatal(err)
				}
				old := time.Now().Add(-time.Hour)
				_ = os.Chtimes(victim, old, old)
				for name, body := range map[string]string{"lab.yaml": lab, "known_hosts": "", "ssh_config": ""} {
					if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				if strings.HasPrefix(spot, "boxswap.db.logs/") {
					if err := os.Mkdir(filepath.Join(dir, "boxswap.db.logs"), 0o700); err != nil {
						t.Fatal(err)
					}
				}
				plant(t, kind, filepath.Join(dir, spot), victim, missing)
				args := append([]string{"-c", filepath.Join(dir, "lab.yaml")}, verb...)
				code, stdout, stderr := runCLI(t, args...)
				inputs++
				codes[code]++
				if code != 0 {
					refused++
				}
				what := fmt.Sprintf("%s at %s, %s", kind, spot, strings.Join(verb, " "))
				if code == exitFailure || code == exitRefused {
					t.Errorf("%s: exit %d\n%s\n%s", what, code, stdout, stderr)
				}
				if strings.Contains(stdout, "[1/") {
					t.Errorf("%s: a step ran:\n%s", what, stdout)
				}
				if data, err := os.ReadFile(victim); err != nil || !bytes.Equal(data, keep) {
					touched++
					t.Errorf("%s: the victim was written: %q, %v", what, data, err)
				} else if fi, _ := os.Stat(victim); !fi.ModTime().Equal(old) {
					touched++
					t.Errorf("%s: the victim's mtime changed", what)
				}
				if _, err := os.Lstat(missing); !errors.Is(err, os.ErrNotExist) {
					touched++
					t.Errorf("%s: a dangling link's target was created", what)
				}
				if entries, _ := os.ReadDir(outside); len(entries) != 1 {
					touched++
					t.Errorf("%s: files appeared outside the state's folder: %v", what, entries)
				}
			}
		}
	}
	t.Logf("FIGURE hostile operator: %d inputs (%d names × %d plants × %d verbs), %d refused, exit codes %v, files touched through links: %d",
		inputs, len(spots), len(plants), len(verbs), refused, codes, touched)
}
