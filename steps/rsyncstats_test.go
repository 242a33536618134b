package steps

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestParseRsyncStatsTable(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want RsyncStats
		err  bool
	}{
		{"rsync 3.1+ with separators", `
Number of files: 12,345 (reg: 12,000, dir: 345)
Number of created files: 1,001 (reg: 1,000, dir: 1)
Number of deleted files: 2,500 (reg: 2,500)
Number of regular files transferred: 1,200
Total file size: 9,876,543,210 bytes
Total transferred file size: 123,456 bytes
Literal data: 0 bytes
sent 129 bytes  received 49 bytes  356.00 bytes/sec
total size is 6  speedup is 0.03 (DRY RUN)
`, RsyncStats{Files: 12345, Created: 1001, Deleted: 2500, HasDeleted: true, Transferred: 1200, TotalSize: 9876543210, TransferredSize: 123456}, false},
		{"rsync 3.0 has no deleted count", `
Number of files: 4
Number of files transferred: 2
Total file size: 6 bytes
Total transferred file size: 6 bytes
`, RsyncStats{Files: 4, Transferred: 2, TotalSize: 6, TransferredSize: 6}, false},
		{"dotted locale", "Number of files: 1.234\nNumber of deleted files: 1.000\n", RsyncStats{Files: 1234, Deleted: 1000, HasDeleted: true}, false},
		{"no stats", "rsync: connection unexpectedly closed\n", RsyncStats{}, true},
		{"empty", "", RsyncStats{}, true},
		{"garbled number", "Number of files: 4\nNumber of deleted files: lots\n", RsyncStats{}, true},
		{"negative", "Number of files: -4\n", RsyncStats{}, true},
		{"overflow", "Number of files: 99999999999999999999999\n", RsyncStats{}, true},
		{"human readable is refused", "Number of files: 4\nTotal file size: 1.23M bytes\n", RsyncStats{}, true},
	} {
		got, err := ParseRsyncStats(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%s: got %+v, %v", tc.name, got, err)
		}
	}
}

// TestParseRsyncStatsReal parses what the installed rsync prints.
func TestParseRsyncStatsReal(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Fatalf("rsync is needed (apt-get install -y rsync): %v", err)
	}
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src")+"/", filepath.Join(dir, "dst")+"/"
	mustWrite(t, src+"sub/a", "12345")
	mustWrite(t, src+"b", "xy")
	for i := range 3 {
		mustWrite(t, fmt.Sprintf("%sold%d", dst, i), "o")
	}
	rsync := func(args ...string) string {
		out, err := exec.Command("rsync", append([]string{"-a", "--delete"}, append(args, src, dst)...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("rsync: %v: %s", err, out)
		}
		return string(out)
	}
	out := rsync("--dry-run", "--stats")
	st, err := ParseRsyncStats(out)
	if err != nil {
		t.Fatalf("%v in:\n%s", err, out)
	}
	if want := (RsyncStats{Files: 4, Created: 3, Deleted: 3, HasDeleted: true, Transferred: 2, TotalSize: 7, TransferredSize: 7}); st != want {
		t.Errorf("dry run: got %+v, want %+v\n%s", st, want, out)
	}
	rsync()
	st, err = ParseRsyncStats(rsync("--dry-run", "--stats"))
	if err != nil || st.Transferred != 0 || st.Deleted != 0 || st.Created != 0 || st.Files != 4 {
		t.Errorf("in sync: got %+v, %v", st, err)
	}
}

// TestParseRsyncStatsSample parses a dry run kept from rsync 3.5.0 (the
// same setup as TestParseRsyncStatsReal).
func TestParseRsyncStatsSample(t *testing.T) {
	st, err := ParseRsyncStats(mustRead(t, filepath.Join("testdata", "rsync-stats-dry-run.txt")))
	if want := (RsyncStats{Files: 4, Created: 3, Deleted: 3, HasDeleted: true, Transferred: 2, TotalSize: 7, TransferredSize: 7}); err != nil || st != want {
		t.Errorf("got %+v, %v", st, err)
	}
}
