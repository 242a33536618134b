package steps

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// refusedUntouched applies s and wants a refusal saying each of want, with
// no rsync run but dry runs and the destination as it was.
func refusedUntouched(t *testing.T, ls *localSync, s Step, want ...string) {
	t.Helper()
	before := tree(t, ls.dst)
	err := s.Apply(context.Background(), ls.te.Env)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v, want a refusal", err)
	}
	// The refusal and its advice (the operator's hint), as recorded.
	for _, w := range want {
		if !strings.Contains(Detail(err), w) {
			t.Errorf("the refusal lacks %q:\n%s", w, Detail(err))
		}
	}
	for _, c := range ls.r.cmds {
		if strings.HasPrefix(c, "rsync") && !strings.Contains(c, "--dry-run") {
			t.Errorf("rsync ran after the guard refused: %s", c)
		}
	}
	if after := tree(t, ls.dst); after != before {
		t.Errorf("the destination changed:\n%s\nwas\n%s", after, before)
	}
}

// tree lists the files under dir with their content.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		fmt.Fprintf(&b, "%s=%q\n", p, data)
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return b.String()
}

func TestSyncRefusesADestinationHoldingTheFunction(t *testing.T) {
	ls := newLocalSync(t, "active")
	mustWrite(t, filepath.Join(ls.src, "students", "a"), "a")
	mustWrite(t, filepath.Join(ls.dst, "students", "b"), "b")
	ls.dstUnit(t, "active")
	refusedUntouched(t, ls, Sync("redirect/sync/students", ls.p),
		"refusing to sync students from thurst to thermals: thermals holds production (nbhosting-addr is active there)",
		"boxswap where", "then run boxswap resume")
	for _, c := range ls.r.cmds {
		if strings.Contains(c, "--dry-run") {
			t.Errorf("a dry run ran before the destination's guard: %s", c)
		}
	}
}

// The address check is real: this machine holds its own address, as a
// destination whose unit is inactive but which kept the address would. A
// name resolving to loopback (a box's own /etc/hosts) is no holder.
func TestSyncRefusesADestinationHoldingTheAddress(t *testing.T) {
	ls := newLocalSync(t, "active")
	mustWrite(t, filepath.Join(ls.src, "students", "a"), "a")
	own := ownAddress(t)
	ls.p.Address = own
	refusedUntouched(t, ls, Sync("redirect/sync/students", ls.p),
		"the data root "+ls.dst+" does not exist on thermals (df found no filesystem for it); create it there")
	if err := os.MkdirAll(ls.dst, 0o755); err != nil {
		t.Fatal(err)
	}
	refusedUntouched(t, ls, Sync("redirect/sync/students", ls.p),
		"thermals holds production's address "+own+" on an interface although nbhosting-addr is inactive there",
		"remove the address from thermals")
	// An address nobody here holds, or loopback, lets the sync go on.
	for _, a := range []string{"198.18.0.100", "localhost"} {
		ls.p.Address = a
		if err := Sync("redirect/sync/students", ls.p).Apply(context.Background(), ls.te.Env); err != nil {
			t.Fatalf("with %s: %v", a, err)
		}
	}
}

// ownAddress is an IPv4 address one of this machine's interfaces holds,
// loopback aside.
func ownAddress(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	t.Fatalf("this machine holds no address but loopback: %v", addrs)
	return ""
}

func TestSyncRefusesANearEmptySourceOverAFullDestination(t *testing.T) {
	ls := newLocalSync(t, "active")
	ls.p.MaxDelete, ls.p.MinSourceFraction = 1000, 0.5
	mustWrite(t, filepath.Join(ls.src, "students", "s1", "nb"), "1")
	for i := range 20 {
		mustWrite(t, filepath.Join(ls.dst, "students", fmt.Sprintf("d%d", i), "nb"), "x")
	}
	// 2 entries on the source (s1, s1/nb), 40 on the destination.
	refusedUntouched(t, ls, Sync("redirect/sync/students", ls.p),
		"holds 2 entries on thurst, fewer than 0.5 of the 40 on thermals (data.min_source_fraction)",
		"probable wrong direction", "nothing was changed")
	// The same source is enough at a lower fraction.
	ls.p.MinSourceFraction = 0.05
	if err := Sync("redirect/sync/students", ls.p).Apply(context.Background(), ls.te.Env); err != nil {
		t.Fatalf("at 0.05: %v", err)
	}
	if exists(filepath.Join(ls.dst, "students", "d0")) || !exists(filepath.Join(ls.dst, "students", "s1", "nb")) {
		t.Error("the sync did not run")
	}
}

// The room guard compares what the dry run would transfer (each file a
// block at least) plus the margin with the destination's free space, as
// df tells it.
func TestSyncRefusesADestinationWithoutRoom(t *testing.T) {
	ls := newLocalSync(t, "active")
	for i := range 10 {
		mustWrite(t, filepath.Join(ls.src, "students", fmt.Sprintf("f%d", i)), strings.Repeat("x", 1000))
	}
	if err := os.MkdirAll(filepath.Join(ls.dst, "students"), 0o755); err != nil {
		t.Fatal(err)
	}
	ls.p.RoomMargin = 1 << 60 // more than any disk here has
	refusedUntouched(t, ls, Sync("redirect/sync/students", ls.p),
		"refusing to sync students from thurst to thermals: "+ls.dst+" on thermals has ",
		"and the sync needs 49.8 KiB plus 1.0 EiB left free (data.room_margin)",
		"(10 files, 9.8 KiB, to transfer)", "free room on thermals")
	ls.p.RoomMargin = 1 << 20
	if err := Sync("redirect/sync/students", ls.p).Apply(context.Background(), ls.te.Env); err != nil {
		t.Fatalf("with room: %v", err)
	}
}

// The guards of the first pass need no repeating in the window: a final
// sync after its pre-sync counted runs nothing on the destination.
func TestFinalSyncAfterPresyncSkipsTheDestinationGuard(t *testing.T) {
	ctx := context.Background()
	ls := newChangesSync(t).localSync // watches under a temporary HOME, ended after
	mustWrite(t, filepath.Join(ls.src, "students", "a"), "a")
	mustWrite(t, filepath.Join(ls.dst, "students", "b"), "b")
	if err := Sync("redirect/sync/students", ls.p).Apply(ctx, ls.te.Env); err != nil {
		t.Fatal(err)
	}
	if len(ls.dr.cmds) != 1 {
		t.Fatalf("the pre-sync sent %q to the destination, want its guard", ls.dr.cmds)
	}
	ls.dr.cmds = nil
	f := ls.p
	f.Final = true
	if err := Sync("redirect/final-sync/students", f).Apply(ctx, ls.te.Env); err != nil {
		t.Fatal(err)
	}
	if len(ls.dr.cmds) != 0 {
		t.Errorf("the final sync sent %q to the destination", ls.dr.cmds)
	}
}

// data.files: one file under the root, synced as it is (no trailing
// slash, so rsync does not make it a folder), with the folders' guards.
func TestSyncOneFile(t *testing.T) {
	ctx := context.Background()
	ls := newLocalSync(t, "active")
	ls.p.Folder, ls.p.File, ls.p.MinSourceFraction = "db.sqlite3", true, 0.5
	src, dst := filepath.Join(ls.src, "db.sqlite3"), filepath.Join(ls.dst, "db.sqlite3")
	s := Sync("redirect/sync/db.sqlite3", ls.p)
	mustWrite(t, dst, strings.Repeat("d", 100))
	refusedUntouched(t, ls, s, "does not exist there (as a file); check data.root and data.files")
	mustWrite(t, src, "")
	refusedUntouched(t, ls, s, "is empty there")
	mustWrite(t, src, "tiny")
	refusedUntouched(t, ls, s, "holds 4 bytes on thurst, fewer than 0.5 of the 100 on thermals")
	mustWrite(t, src, strings.Repeat("p", 80))
	if err := s.Apply(ctx, ls.te.Env); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, dst); got != strings.Repeat("p", 80) {
		t.Errorf("copied %q", got)
	}
	if fi, err := os.Stat(dst); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("%s is not a file: %v", dst, err)
	}
	if done, why, err := s.Check(ctx, ls.te.Env); !done || err != nil {
		t.Errorf("check after = %v %q %v", done, why, err)
	}
}

// data.exclude: what a pattern matches is neither copied nor deleted nor
// counted as a deletion, on every pass.
func TestSyncExcludes(t *testing.T) {
	ls := newLocalSync(t, "active")
	ls.p.MaxDelete = 0 // any counted deletion is refused
	ls.p.Exclude = []string{".~*", "cache dir/"}
	mustWrite(t, filepath.Join(ls.src, "students", "a", "nb.ipynb"), "{}")
	mustWrite(t, filepath.Join(ls.src, "students", "a", ".~nb.ipynb"), "tmp")
	mustWrite(t, filepath.Join(ls.src, "students", "cache dir", "x"), "c")
	mustWrite(t, filepath.Join(ls.dst, "students", "b", ".~old"), "kept")
	if err := Sync("redirect/sync/students", ls.p).Apply(context.Background(), ls.te.Env); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(ls.dst, "students", "a", ".~nb.ipynb")) || exists(filepath.Join(ls.dst, "students", "cache dir")) {
		t.Error("an excluded file was copied")
	}
	if mustRead(t, filepath.Join(ls.dst, "students", "b", ".~old")) != "kept" {
		t.Error("an excluded file was deleted")
	}
	if mustRead(t, filepath.Join(ls.dst, "students", "a", "nb.ipynb")) != "{}" {
		t.Error("the rest was not copied")
	}
	for _, c := range ls.r.cmds {
		if strings.HasPrefix(c, "rsync") && !strings.Contains(c, ` '--exclude=.~*' '--exclude=cache dir/' `) {
			t.Errorf("a run without the excludes: %s", c)
		}
	}
}

// The destination's answer is read with df's own parser: a filesystem
// name with spaces does not shift the free space to another column, and
// a data root df found nothing for is told apart from a cut answer.
func TestParseDstSeen(t *testing.T) {
	d, err := parseDstSeen("unit inactive\n" +
		"df Filesystem 1-blocks Used Available Capacity Mounted on\n" +
		"df map auto home 4096000 1024 3072000 1% /nbhosting\n" +
		"entries 7\n")
	if err != nil || d.avail != 3072000 || d.entries != 7 || d.unit != "inactive" || d.noRoot {
		t.Errorf("spaced filesystem: %+v %v", d, err)
	}
	if d, err := parseDstSeen("unit inactive\nentries 0\n"); err != nil || !d.noRoot {
		t.Errorf("no df line: %+v %v, want no root", d, err)
	}
	if _, err := parseDstSeen("unit inactive\ndf Filesystem 1-blocks Used Available Capacity Mounted on\n"); err == nil {
		t.Error("an answer cut before entries was read")
	}
}
