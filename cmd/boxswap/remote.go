package main

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"boxswap/boxes"
	"boxswap/internal/text"
	"boxswap/steps"
)

// The remote command lines of status, sizes and check. They are pure
// functions of boxes.yaml so that tests pin them; every value in them goes
// through boxes.Quote.

// unitsCommand prints "UNIT<tab>ACTIVE<tab>ENABLED" for each unit; a unit
// that does not exist shows as inactive with an empty enabled state.
func unitsCommand(units []string) string {
	return "for u in " + boxes.QuoteAll(units) + `; do printf '%s\t%s\t%s\n' "$u" "$(systemctl is-active -- "$u" 2>/dev/null)" "$(systemctl is-enabled -- "$u" 2>/dev/null)"; done`
}

// settingsCommand prints the lines of file that set one of keys, the way
// the settings step finds them (^key *=).
func settingsCommand(file string, keys []string) string {
	alt := make([]string, len(keys))
	for i, k := range keys {
		alt[i] = regexp.QuoteMeta(k)
	}
	return "grep -E -- " + boxes.Quote("^("+strings.Join(alt, "|")+") *=") + " " + boxes.Quote(file)
}

// duCommand prints "PATH<tab>BYTES" for each folder, or "PATH<tab>-" when
// it does not exist.
func duCommand(paths []string) string {
	return "for p in " + boxes.QuoteAll(paths) + `; do if [ -d "$p" ]; then printf '%s\t%s\n' "$p" "$(du -sb -- "$p" 2>/dev/null | cut -f1)"; else printf '%s\t-\n' "$p"; fi; done`
}

// imagesCommand lists the container images as "REPOSITORY:TAG ID".
func imagesCommand() string {
	return "docker images --format " + boxes.Quote("{{.Repository}}:{{.Tag}} {{.ID}}")
}

// sshCommand is how a box reaches the other one for rsync, with the same
// options the sync steps use (steps.SSHProbeCommand).
func sshCommand(to boxes.Box) string {
	user := to.User
	if user == "" {
		user = "root"
	}
	return steps.SSHProbeCommand(to.Host, to.Port.Int(), user)
}

// dataPaths are the data folders under the data root, then their backups
// (the epilogue's renames) when withBackups and a suffix is set.
func dataPaths(cfg *boxes.Config, withBackups bool) []string {
	var p []string
	for _, f := range cfg.Data.Folders {
		p = append(p, path.Join(cfg.Data.Root, f))
	}
	if withBackups && cfg.Data.BackupSuffix != "" {
		for _, f := range cfg.Data.Folders {
			p = append(p, path.Join(cfg.Data.Root, f+cfg.Data.BackupSuffix))
		}
	}
	return p
}

// statusUnits are the units status reports: both address units, then the
// app services.
func statusUnits(cfg *boxes.Config) []string {
	var u []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			u = append(u, s)
		}
	}
	add(cfg.Functions[boxes.Production].AddressUnit)
	add(cfg.Functions[boxes.Development].AddressUnit)
	for _, s := range cfg.App.Services {
		add(s)
	}
	return u
}

// Parsers of the commands' output.

type unitStatus struct {
	Unit    string `json:"unit"`
	Active  string `json:"active"`
	Enabled string `json:"enabled"`
}

func parseUnits(out string) []unitStatus {
	var us []unitStatus
	for _, l := range lines(out) {
		f := strings.Split(l, "\t")
		for len(f) < 3 {
			f = append(f, "")
		}
		u := unitStatus{Unit: f[0], Active: f[1], Enabled: f[2]}
		if u.Enabled == "" {
			u.Enabled = "-"
		}
		if u.Active == "" {
			u.Active = "-"
		}
		us = append(us, u)
	}
	return us
}

type folderSize struct {
	Path   string `json:"path"`
	Exists bool   `json:"exists"`
	Bytes  int64  `json:"bytes"`
}

func parseDu(out string) ([]folderSize, error) {
	var fs []folderSize
	for _, l := range lines(out) {
		p, n, ok := strings.Cut(l, "\t")
		if !ok {
			return nil, fmt.Errorf("du: unexpected line %q", l)
		}
		f := folderSize{Path: p}
		if n != "-" {
			b, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("du: %s: size %q is not a number (could it be read?)", p, n)
			}
			f.Exists, f.Bytes = true, b
		}
		fs = append(fs, f)
	}
	return fs, nil
}

type image struct {
	Name    string `json:"name"`
	ID      string `json:"id"`
	Differs bool   `json:"differs"` // the other box has no image by this name, or another ID
}

func parseImages(out string) []image {
	var im []image
	for _, l := range lines(out) {
		name, id, _ := strings.Cut(l, " ")
		im = append(im, image{Name: name, ID: strings.TrimSpace(id)})
	}
	return im
}

// markImageDiffs marks, on both lists, the images that are not the same
// (name and ID) on the other box.
func markImageDiffs(a, b []image) {
	ids := func(l []image) map[string]string {
		m := map[string]string{}
		for _, i := range l {
			m[i.Name] = i.ID
		}
		return m
	}
	ia, ib := ids(a), ids(b)
	for i := range a {
		id, ok := ib[a[i].Name]
		a[i].Differs = !ok || id != a[i].ID
	}
	for i := range b {
		id, ok := ia[b[i].Name]
		b[i].Differs = !ok || id != b[i].ID
	}
}

func lines(out string) []string {
	var ls []string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if strings.TrimSpace(l) != "" {
			ls = append(ls, l)
		}
	}
	return ls
}

// capture runs cmd on r and returns its stdout; a non-zero exit is an
// error naming the box and what it printed on stderr.
func capture(ctx context.Context, box string, r boxes.Runner, what, cmd string) (string, int, error) {
	var out, errb bytes.Buffer
	code, err := r.Run(ctx, cmd, &out, &errb)
	if err != nil {
		return out.String(), code, fmt.Errorf("%s: %s: %w", box, what, err)
	}
	if code != 0 {
		msg := text.LastLine(text.Tail(errb.String(), 1))
		if msg == "" {
			msg = text.LastLine(text.Tail(out.String(), 1))
		}
		return out.String(), code, fmt.Errorf("%s: %s: exit %d: %s", box, what, code, msg)
	}
	return out.String(), 0, nil
}
