package reliability

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"boxswap/boxes"
	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// TestFinalSyncChangesRealBoxes is the differential test of the final
// sync's change list (steps/changes.go) through the real final-sync steps
// between the lab's boxes, one seed a move: after the pre-syncs (boxswap
// stopped before the final sync), random changes on the source's data and
// a few on the destination's; boxswap resumes and stops again after the
// final syncs; the destination must then be what a full rsync -a --delete
// makes of a copy of it taken before (rsync -c itemizing nothing: content,
// mode, owner, times), and the steps' record must say the change list was
// used. The many-seed run is steps' TestFinalSyncChangesDifferential
// (BOXSWAP_DIFF_SEEDS).
func TestFinalSyncChangesRealBoxes(t *testing.T) {
	h := labtest.New(t, lab.Options{Kind: lab.KindSystemd, OS: lab.OSDebian})
	h.MovesOnly()
	for i, m := range []struct{ event, src, dst string }{
		{"redirect", lab.Thurst, lab.Thermals},
		{"switch-back", lab.Thermals, lab.Thurst},
	} {
		if m.event == "switch-back" {
			if r := h.Run("--yes", "next"); r.Code != 0 { // upgrade-prod, nothing to upgrade
				t.Fatalf("upgrade-prod: %s", r)
			}
		}
		changesMove(t, h, m.event, m.src, m.dst, int64(i+1))
	}
}

func changesMove(t *testing.T, h *labtest.Harness, event, src, dst string, seed int64) {
	t.Helper()
	first := event + "/final-sync/students"
	if r := h.Run("--yes", "next", "--stop-before", first); r.Code != 130 {
		t.Fatalf("%s: next --stop-before %s: %s", event, first, r)
	}
	rng := rand.New(rand.NewSource(seed))
	for _, f := range []string{"students", "raw"} {
		h.Sh(src, labMutations(t, h, src, "/nbhosting/"+f, rng, 60))
		h.Sh(dst, labMutations(t, h, dst, "/nbhosting/"+f, rng, 3)) // the destination's app writes too
		h.Sh(dst, "rm -rf /root/ref-"+f+" && cp -a /nbhosting/"+f+" /root/ref-"+f)
	}
	after := event + "/release-address/" + src
	if r := h.Run("--yes", "resume", "--stop-before", after); r.Code != 130 {
		for _, l := range strings.Split(r.Stdout+r.Stderr, "\n") {
			if strings.Contains(l, "final sync of") || strings.Contains(l, "change watch") {
				t.Log(l)
			}
		}
		t.Fatalf("%s: resume --stop-before %s: %s", event, after, r)
	}
	d := h.Lab.Info.Boxes[dst]
	ssh := fmt.Sprintf("ssh -p %d -o BatchMode=yes -o StrictHostKeyChecking=yes", d.Port)
	for _, f := range []string{"students", "raw"} {
		// The reference: a full rsync, from the source, over the copy.
		h.Sh(src, fmt.Sprintf("rsync -a --delete -e %s -- /nbhosting/%s/ root@%s:/root/ref-%s/", boxes.Quote(ssh), f, d.Host, f))
		if diff := h.Sh(dst, "rsync -a -c -i -n --delete -- /root/ref-"+f+"/ /nbhosting/"+f+"/"); diff != "" {
			t.Errorf("%s: seed %d: %s on %s differs from a full rsync's result:\n%s", event, seed, f, dst, diff)
		}
		h.Sh(dst, "rm -rf /root/ref-"+f)
	}
	att := h.LastAttempt()
	for _, s := range att.Steps {
		if !strings.Contains(s.ID, "/final-sync/") {
			continue
		}
		how := ""
		for k, v := range s.Facts {
			if strings.HasPrefix(k, "final-sync/") {
				how = v
			}
		}
		t.Logf("%s: %s", s.ID, how)
		if !strings.Contains(how, "paths changed") {
			t.Errorf("%s did not use the change list: %q (facts %v)", s.ID, how, s.Facts)
		}
	}
	for _, b := range []string{src, dst} {
		if left := h.Sh(b, "ls ~/.cache/boxswap/watch-*/pid 2>/dev/null || true"); left != "" {
			t.Errorf("%s: watches still running after the final syncs: %s", b, left)
		}
	}
	if r := h.Run("--yes", "resume"); r.Code != 0 {
		t.Fatalf("%s: resume: %s", event, r)
	}
}

// labMutations returns a shell script of n random changes under dir on
// box, as users make them: creates, appends, truncations, deletions,
// renames of files and folders, chmod, chown, type changes, deep paths,
// times, symlinks, names with spaces, newlines and bytes not UTF-8. Each
// change may fail (a path an earlier one moved): the script goes on.
func labMutations(t *testing.T, h *labtest.Harness, box, dir string, rng *rand.Rand, n int) string {
	t.Helper()
	raw := h.ShRaw(box, "find "+boxes.Quote(dir)+` -mindepth 1 -printf '%y %p\0'`)
	var dirs, files []string
	for _, e := range strings.Split(raw, "\x00") {
		if typ, p, ok := strings.Cut(e, " "); ok && typ == "d" {
			dirs = append(dirs, p)
		} else if ok {
			files = append(files, p)
		}
	}
	names := []string{"a b", "new\nline", "\xff\xfe raw", "ü", "-dash", "x'q\"", "*"}
	k := 0
	name := func() string { k++; return fmt.Sprintf("%s%d-%d", names[rng.Intn(len(names))], rng.Intn(1000), k) }
	pick := func(l []string) string {
		if len(l) == 0 {
			return dir
		}
		return l[rng.Intn(len(l))]
	}
	q := boxes.Quote
	var b strings.Builder
	for range n {
		d, f := pick(append(dirs, dir)), pick(files)
		in := func(p, nm string) string { return q(p + "/" + nm) }
		var c string
		switch rng.Intn(14) {
		case 0:
			c = "head -c " + fmt.Sprint(rng.Intn(5000)) + " /dev/urandom > " + in(d, name())
		case 1:
			c = "echo changed >> " + q(f)
		case 2:
			c = "truncate -s " + fmt.Sprint(rng.Intn(10)) + " -- " + q(f)
		case 3:
			c = "rm -f -- " + q(f)
		case 4:
			c = "mv -- " + q(f) + " " + in(pick(append(dirs, dir)), name())
		case 5:
			c = "mv -- " + q(pick(dirs)) + " " + in(dir, name())
		case 6:
			c = "rm -rf -- " + q(pick(dirs))
		case 7:
			c = "chmod " + []string{"600", "640", "755", "700"}[rng.Intn(4)] + " -- " + q(pick(append(dirs, files...)))
		case 8:
			c = fmt.Sprintf("chown %d:%d -- %s", 1000+rng.Intn(3), 1000+rng.Intn(3), q(pick(append(dirs, files...))))
		case 9: // a file becomes a folder
			c = "rm -f -- " + q(f) + " && mkdir -- " + q(f) + " && echo x > " + in(f, name())
		case 10: // a folder becomes a file
			x := pick(dirs)
			c = "rm -rf -- " + q(x) + " && echo x > " + q(x)
		case 11: // deep
			p := d
			for range 3 + rng.Intn(5) {
				p += "/" + name()
			}
			c = "mkdir -p -- " + q(p) + " && echo deep > " + in(p, name())
		case 12:
			c = "touch -m -d @" + fmt.Sprint(1500000000+rng.Intn(1e8)) + " -- " + q(pick(append(dirs, files...)))
		case 13:
			c = "ln -s ../x " + in(d, name())
		}
		b.WriteString("{ " + c + "; } 2>/dev/null || true\n")
	}
	return b.String()
}
