package labtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"boxswap/test/lab/lab"
)

// Row is one box's line of the seed's table.
type Row struct {
	Function string // production, development or "" (none)
	Release  int
}

// Table returns the seed's table (shared/DESIGN.md) at phase, for a cycle
// from → to: thurst's row, then thermals'.
func Table(phase string, from, to int) (thurst, thermals Row, ok bool) {
	const p, d = "production", "development"
	switch phase {
	case "start":
		return Row{p, from}, Row{d, from}, true
	case "dev-upgraded":
		return Row{p, from}, Row{d, to}, true
	case "redirected":
		return Row{"", from}, Row{p, to}, true
	case "prod-upgraded":
		return Row{"", to}, Row{p, to}, true
	case "switched-back":
		return Row{p, to}, Row{"", to}, true
	case "done":
		return Row{p, to}, Row{d, to}, true
	}
	return Row{}, Row{}, false
}

// CheckTable checks the boxes themselves against the table at phase: who
// answers the production and development addresses (the body names the
// box, its release and function), each box's os-release and address units.
// It returns the problems found, none when the boxes match.
func (h *Harness) CheckTable(phase string, from, to int) []string {
	h.T.Helper()
	tu, tm, ok := Table(phase, from, to)
	if !ok {
		return []string{"no table row for phase " + phase}
	}
	rows := map[string]Row{lab.Thurst: tu, lab.Thermals: tm}
	var bad []string
	for _, fn := range []string{"production", "development"} {
		url := h.Lab.Info.ProductionURL
		if fn == "development" {
			url = h.Lab.Info.DevelopmentURL
		}
		want := ""
		for _, b := range lab.BoxNames {
			if rows[b].Function == fn {
				want = fmt.Sprintf("%s %s%d %s", b, h.releasePrefix(), rows[b].Release, fn)
			}
		}
		got, err := Get(h.Lab, url)
		switch {
		case want == "" && err == nil:
			bad = append(bad, fmt.Sprintf("%s: the %s address answers %q, want none", phase, fn, got))
		case want != "" && got != want:
			bad = append(bad, fmt.Sprintf("%s: the %s address answers %q (%v), want %q", phase, fn, got, err, want))
		}
	}
	if h.Real() {
		bad = append(bad, h.checkHolders(phase, rows)...)
	}
	for _, b := range lab.BoxNames {
		out, code, err := h.Lab.Run(b, ". /etc/os-release && echo $VERSION_ID; systemctl is-active nbhosting-addr nbhosting-dev-addr")
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %s: %v", phase, b, err))
			continue
		}
		_ = code // is-active exits 3 when a unit is inactive
		f := strings.Fields(out)
		want := []string{fmt.Sprint(rows[b].Release), "inactive", "inactive"}
		switch rows[b].Function {
		case "production":
			want[1] = "active"
		case "development":
			want[2] = "active"
		}
		if strings.Join(f, " ") != strings.Join(want, " ") {
			bad = append(bad, fmt.Sprintf("%s: %s: os-release, nbhosting-addr, nbhosting-dev-addr: %q, want %q", phase, b, f, want))
		}
	}
	return bad
}

// Get fetches url on a fresh connection (whoever holds the address now)
// from the operator's side of l. An answer other than 200 is an error,
// as users see it: nginx's 502 with the app stopped is down.
func Get(l *lab.Lab, url string) (string, error) {
	resp, err := l.HTTPClient(2 * time.Second).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = &StatusError{URL: url, Status: resp.Status}
	}
	return strings.TrimSpace(string(b)), err
}

// StatusError is an HTTP answer other than 200: the site is down for its
// users (nginx's 502 when the app behind it is stopped).
type StatusError struct{ URL, Status string }

func (e *StatusError) Error() string { return e.URL + ": " + e.Status }

// Sums returns a digest of each folder under the data root of box (relative
// paths, types, modes' permission bits and contents, in order), read from
// its disk: equal digests mean bit-identical trees. A missing folder has
// the digest "missing".
func (h *Harness) Sums(box, root string, folders ...string) map[string]string {
	h.T.Helper()
	out := map[string]string{}
	for _, f := range folders {
		d, err := TreeDigest(h.Disk(box, filepath.Join(root, f)))
		if err != nil {
			h.T.Fatalf("%s: digest of %s/%s: %v", box, root, f, err)
		}
		out[f] = d
	}
	return out
}

// CountFiles counts the regular files under rel on box's disk (its overlay
// upper dir, as Sums reads it): a data check over an empty folder could
// not fail. A missing rel fails the test.
func (h *Harness) CountFiles(box, rel string) int {
	h.T.Helper()
	n := 0
	err := filepath.WalkDir(h.Disk(box, rel), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		h.T.Fatalf("%s: count files in %s: %v", box, rel, err)
	}
	return n
}

// TreeDigest is the digest Sums computes, of one directory.
func TreeDigest(dir string) (string, error) {
	if _, err := os.Lstat(dir); os.IsNotExist(err) {
		return "missing", nil
	}
	type entry struct{ rel, line string }
	var ents []entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %s %o", rel, info.Mode().Type(), info.Mode().Perm())
		switch {
		case info.Mode().IsRegular():
			raw, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(raw)
			line += " " + hex.EncodeToString(s[:])
		case info.Mode()&fs.ModeSymlink != 0:
			t, _ := os.Readlink(p)
			line += " -> " + t
		}
		ents = append(ents, entry{rel, line})
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].rel < ents[j].rel })
	hs := sha256.New()
	for _, e := range ents {
		fmt.Fprintln(hs, e.line)
	}
	return fmt.Sprintf("%d:%s", len(ents), hex.EncodeToString(hs.Sum(nil))[:16]), nil
}

// checkHolders checks, on real boxes, that each function's address is
// held by exactly the box the table gives (none for a function nobody
// holds), read from the boxes' network namespaces: a kernel fact.
func (h *Harness) checkHolders(phase string, rows map[string]Row) []string {
	var bad []string
	addrs := map[string]string{"production": h.Lab.Info.ProductionAddress, "development": h.Lab.Info.DevelopmentAddress}
	for _, fn := range []string{"production", "development"} {
		var want, got []string
		for _, b := range lab.BoxNames {
			if rows[b].Function == fn {
				want = append(want, b)
			}
			held, err := h.Lab.Holds(b, addrs[fn])
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s: %v", phase, err))
			}
			if held {
				got = append(got, b)
			}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			bad = append(bad, fmt.Sprintf("%s: the %s address %s is held by %q, want %q", phase, fn, addrs[fn], got, want))
		}
	}
	return bad
}
