package reliability

import (
	"maps"
	"regexp"
	"strings"
	"testing"

	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// TestSyncGuardsAndOutcomesOnRealBoxes: the sync's first-pass guards and
// rsync's outcomes on real boxes (a moves-only cycle, Debian):
//   - a destination holding production's address (left behind, its unit
//     inactive) is refused before any transfer;
//   - a near-empty source over a full destination (thermals given far
//     more entries than thurst holds) is refused before any transfer;
//   - a destination without room (thermals' data root a small tmpfs) is
//     refused before any transfer, naming the free space and the need;
//   - files vanishing from thurst during the pre-sync (rsync exit 24) are
//     recorded with their count in the step's record, and redirect goes on;
//   - switch-back with data.files and data.exclude added: the database
//     file is synced by its own steps, the excluded files are neither
//     copied nor deleted, and a file thurst cannot take (immutable) fails
//     the pre-sync with exit 23 naming it; once fixed, resume completes;
//     the epilogue backs the database up on thermals like the folders.
func TestSyncGuardsAndOutcomesOnRealBoxes(t *testing.T) {
	h := labtest.New(t, lab.Options{Kind: lab.KindSystemd, OS: lab.OSDebian})
	h.MovesOnly()
	const root = "/nbhosting"
	rel := h.Lab.Info.From
	table := func(phase string) {
		t.Helper()
		if bad := h.CheckTable(phase, rel, rel); len(bad) > 0 {
			t.Errorf("boxes do not match the table at %s:\n  %s", phase, strings.Join(bad, "\n  "))
		}
	}
	refused := func(what string, want ...string) {
		t.Helper()
		r := h.Continue(nil)
		if r.Code != 5 {
			t.Fatalf("%s: want exit 5 (refused): %s", what, r)
		}
		// The operator's line may be cut in its middle (200 characters):
		// the record has the refusal whole.
		said := r.Stderr
		if w := h.Where(); w.Transition != nil {
			said += "\n" + w.Transition.Error
		}
		for _, w := range want {
			if !strings.Contains(said, w) {
				t.Errorf("%s: the refusal does not say %q: %s\nrecorded: %s", what, w, r, said)
			}
		}
		figure(t, "sync guard, %s: %s", what, firstLine(r.Stderr, "refusing"))
	}

	// The production address left on thermals (in thermals' own network
	// namespace), its unit inactive.
	addr := h.Sh(lab.Thermals, "getent ahosts nbhosting.lab | { read -r a _; echo $a; }")
	h.Sh(lab.Thermals, "ip addr add "+addr+"/32 dev host0")
	refused("address", "thermals holds production's address "+addr+" on an interface although nbhosting-addr is inactive there")
	h.Sh(lab.Thermals, "ip addr del "+addr+"/32 dev host0")

	// A near-empty source: thermals holds ten times thurst's entries.
	h.Sh(lab.Thermals, "mkdir -p /nbhosting/students/dev-bulk && cd /nbhosting/students/dev-bulk && "+
		"n=$(( $(find /nbhosting/students -mindepth 1 | wc -l) * 10 )); i=0; while [ $i -lt $n ]; do : > f$i; i=$((i+1)); done")
	devData := h.Sums(lab.Thermals, root, "students", "raw")
	refused("fraction", "holds", "fewer than 0.5 of the", "on thermals (data.min_source_fraction)", "probable wrong direction")
	if got := h.Sums(lab.Thermals, root, "students", "raw"); !maps.Equal(got, devData) {
		t.Errorf("thermals' data changed under a refused sync")
	}
	h.Sh(lab.Thermals, "rm -rf /nbhosting/students/dev-bulk")

	// No room: thermals' data root on a 2 MiB tmpfs holding its data, and
	// thurst's students 3 MiB more than thermals' (a 64 KiB margin).
	h.EditConfig(func(s string) string {
		return strings.Replace(s, "  max_delete: 1000\n", "  max_delete: 1000\n  room_margin: 64KiB\n", 1)
	})
	h.Sh(lab.Thurst, "head -c 3M /dev/urandom > /nbhosting/students/zz-big.bin")
	h.Sh(lab.Thermals, "mkdir -p /mnt/small && mount -t tmpfs -o size=2m tmpfs /mnt/small && cp -a /nbhosting/. /mnt/small/ && mount --bind /mnt/small /nbhosting")
	small := h.Sh(lab.Thermals, "cd /nbhosting && find . -type f | sort | xargs md5sum | md5sum")
	refused("room", "refusing to sync students from thurst to thermals: /nbhosting on thermals has ", "free, and the sync needs 3.", "plus 64.0 KiB left free (data.room_margin)")
	if got := h.Sh(lab.Thermals, "cd /nbhosting && find . -type f | sort | xargs md5sum | md5sum"); got != small {
		t.Errorf("thermals' small data root changed under a refused sync")
	}
	h.Sh(lab.Thermals, "umount /nbhosting && umount /mnt/small")

	// Files vanishing mid-transfer: a big file first in rsync's order, 30
	// small ones after it, deleted on thurst once rsync has the big one
	// open (listed before, opened after: vanished).
	h.Sh(lab.Thurst, "mkdir -p /nbhosting/students/zz-vanish && cd /nbhosting/students/zz-vanish && truncate -s 96M a-big && "+
		"for i in $(seq -w 0 29); do echo x > tmp$i; done")
	h.Sh(lab.Thurst, `systemd-run --unit=lab-vanisher sh -c 'until ls -l /proc/[0-9]*/fd 2>/dev/null | grep -q /zz-vanish/a-big; do sleep 0.005; done; rm -f /nbhosting/students/zz-vanish/tmp*'`)
	if r := h.Continue(nil); r.Code != 0 {
		t.Fatalf("redirect with files vanishing: %s", r)
	}
	table("redirected")
	rec, ok := stepRecord(h, "redirect/sync/students")
	if !ok {
		t.Fatalf("no redirect/sync/students in the last attempt")
	}
	got := rec.Facts["sync-vanished/redirect/sync/students"]
	if !regexp.MustCompile(`^30 files vanished \(rsync exit 24\), accepted`).MatchString(got) {
		t.Errorf("the step's record says %q of the vanished files; facts %v", got, rec.Facts)
	}
	if !strings.Contains(strings.Join(rec.Tail, "\n"), "warning: 30 files vanished from /nbhosting/students on thurst") {
		t.Errorf("no warning in the step's tail: %q", rec.Tail)
	}
	if h.Exists(lab.Thermals, "/nbhosting/students/zz-vanish/tmp00") || !h.Exists(lab.Thermals, "/nbhosting/students/zz-vanish/a-big") {
		t.Errorf("thermals' copy of zz-vanish is not thurst's")
	}
	figure(t, "rsync exit 24 on the pre-sync: %s", got)

	// switch-back: a database file, excludes, and exit 23 (one file thurst
	// cannot replace).
	advance(t, h, "prod-upgraded")
	h.EditConfig(func(s string) string {
		return strings.Replace(s, "  folders: [students, raw]\n", "  folders: [students, raw]\n  files: [db.sqlite3]\n  exclude: [\".~*\"]\n", 1)
	})
	h.Sh(lab.Thermals, "head -c 200000 /dev/urandom > /nbhosting/db.sqlite3 && echo tmp > /nbhosting/students/.~thermals-tmp")
	h.Sh(lab.Thurst, "head -c 150000 /dev/urandom > /nbhosting/db.sqlite3 && echo keep > /nbhosting/students/.~thurst-tmp")
	db := h.Sh(lab.Thermals, "md5sum < /nbhosting/db.sqlite3")
	h.Sh(lab.Thermals, "echo changed-on-thermals > /nbhosting/raw/locked.json")
	h.Sh(lab.Thurst, "echo old > /nbhosting/raw/locked.json && touch -d '1 hour ago' /nbhosting/raw/locked.json && chattr +i /nbhosting/raw/locked.json")
	t.Cleanup(func() { _, _, _ = h.Lab.Run(lab.Thurst, "chattr -i /nbhosting/raw/locked.json") })
	r := h.Continue(nil)
	if r.Code == 0 || r.Code == 5 {
		t.Fatalf("switch-back onto an immutable file: want a failure: %s", r)
	}
	for _, w := range []string{"exit 23", "1 files of /nbhosting/raw were not synced from thermals to thurst: /nbhosting/raw/locked.json (Operation not permitted (1))", "then run boxswap resume"} {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("the failure does not say %q: %s", w, r)
		}
	}
	figure(t, "rsync exit 23: %s", firstLine(r.Stderr, "were not synced"))
	h.Sh(lab.Thurst, "chattr -i /nbhosting/raw/locked.json")
	if r := h.Continue(nil); r.Code != 0 {
		t.Fatalf("resume after the fix: %s", r)
	}
	table("switched-back")
	if got := h.Sh(lab.Thurst, "cat /nbhosting/raw/locked.json"); got != "changed-on-thermals" {
		t.Errorf("thurst's locked.json after the resume: %q", got)
	}
	if got := h.Sh(lab.Thurst, "md5sum < /nbhosting/db.sqlite3"); got != db {
		t.Errorf("thurst's database is not thermals'")
	}
	if h.Exists(lab.Thurst, "/nbhosting/students/.~thermals-tmp") || !h.Exists(lab.Thurst, "/nbhosting/students/.~thurst-tmp") {
		t.Errorf("an excluded file was copied or deleted")
	}
	ids := map[string]bool{}
	for _, s := range h.LastAttempt().Steps {
		ids[s.ID] = true
	}
	if !ids["switch-back/sync/db.sqlite3"] || !ids["switch-back/final-sync/db.sqlite3"] {
		t.Errorf("switch-back has no steps of its own for db.sqlite3: %v", ids)
	}
	advance(t, h, "done")
	table("done")
	if !h.Exists(lab.Thermals, "/nbhosting/db.sqlite3.prod") || h.Exists(lab.Thermals, "/nbhosting/db.sqlite3") {
		t.Errorf("the epilogue did not back thermals' database up as db.sqlite3.prod")
	}
}

// stepRecord returns the record of step id in the last attempt.
func stepRecord(h *labtest.Harness, id string) (rec struct {
	Facts map[string]string
	Tail  []string
}, ok bool) {
	for _, a := range h.Log().Attempts {
		for _, s := range a.Steps {
			if s.ID == id {
				rec.Facts, rec.Tail, ok = s.Facts, s.Tail, true
			}
		}
	}
	return rec, ok
}

// firstLine returns the first line of s holding sub, for a figure.
func firstLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
