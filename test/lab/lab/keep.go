package lab

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// LogsDir is where KeepLogs keeps a failed run's logs, one folder a run.
var LogsDir = filepath.Join(os.TempDir(), "boxswap-lab-logs")

// KeepLogs copies what tells how the lab's run went — the lab's and each
// box's logs (console, supervisor, mirror), lab.json, boxes.yaml and the
// state file — to a new folder under LogsDir named for name, and returns
// it. Keys and the boxes' disks are not copied. For a failed test, whose
// own folder goes with it.
func (l *Lab) KeepLogs(name string) (string, error) {
	clean := regexp.MustCompile(`[^A-Za-z0-9._-]+`).ReplaceAllString(name, "_")
	dest := filepath.Join(LogsDir, clean+"-"+time.Now().UTC().Format("20060102T150405"))
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return "", fmt.Errorf("lab: keep logs: %w", err)
	}
	keep := func(rel string) bool {
		base := filepath.Base(rel)
		return strings.HasSuffix(base, ".log") || strings.HasSuffix(filepath.Dir(rel), ".logs") || base == "lab.json" || base == "boxes.yaml" || strings.HasPrefix(base, "boxswap.db")
	}
	var files []string
	dirs := append([]string{""}, BoxNames...)
	// The attempts' logs, beside a state file in the lab's folder.
	if logs, _ := filepath.Glob(filepath.Join(l.Dir, "*.logs")); len(logs) > 0 {
		for _, d := range logs {
			dirs = append(dirs, filepath.Base(d))
		}
	}
	for _, d := range dirs {
		ents, err := os.ReadDir(filepath.Join(l.Dir, d))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if rel := filepath.Join(d, e.Name()); e.Type().IsRegular() && keep(rel) {
				files = append(files, rel)
			}
		}
	}
	for _, rel := range files {
		if err := copyNoFollow(filepath.Join(l.Dir, rel), filepath.Join(dest, strings.ReplaceAll(rel, "/", "-"))); err != nil {
			return dest, err
		}
	}
	return dest, nil
}

// copyNoFollow copies the regular file src to the new file dst, following
// no symlink at either end.
func copyNoFollow(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("lab: keep logs: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return fmt.Errorf("lab: keep logs: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("lab: keep logs: %s: %w", dst, err)
	}
	return out.Close()
}
