package steps

import (
	"context"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"
)

// excludes are the --exclude options of every rsync run, each one quoted
// word: what they match is neither copied nor deleted on the destination,
// so the deletion count of a dry run leaves it out as the real runs do.
func excludes(p SyncParams) string {
	var b strings.Builder
	for _, e := range p.Exclude {
		b.WriteString(" " + quote("--exclude="+e))
	}
	return b.String()
}

// guardText says, for plan, what the first pass's guards refuse besides
// max_delete.
func guardText(p SyncParams) string {
	t := ", onto a box holding " + p.function() + " or without room for it"
	if p.MinSourceFraction > 0 {
		unit := "entries"
		if p.File {
			unit = "bytes"
		}
		t += fmt.Sprintf(", or from a source with less than %g of the destination's %s", p.MinSourceFraction, unit)
	}
	return t
}

// blockSize rounds each transferred file up in the room guard: a
// filesystem gives a small file a whole block, and a folder of notebooks
// is mostly small files.
const blockSize = 4096

// dstSeen is what the destination answered to dstGuardCmd.
type dstSeen struct {
	unit    string // systemctl is-active of the function's unit
	address string // the function's address, when the box holds it
	avail   int64  // bytes free on the data root's filesystem
	noRoot  bool   // df found no data root
	entries int64  // under the folder (recursive), or bytes of the file
}

// dstGuardCmd is the one command the destination runs before the first
// pass: its function unit's state, whether it holds the function's
// address, the room on the data root and what the destination already
// holds of the synced folder or file, one "key value" line each; df's
// lines each follow the key df, as parseDF reads them.
func dstGuardCmd(p SyncParams) string {
	target := quote(path.Join(p.dstRoot(), p.Folder))
	cmd := "printf 'unit %s\\n' \"$(" + isActiveCmd(p.SrcUnit) + ")\"; "
	if p.Address != "" {
		// A name the box resolves to loopback (its own /etc/hosts) says
		// nothing of who holds the function.
		cmd += "a=$(getent ahosts -- " + quote(p.Address) + " | { read -r a _; echo \"$a\"; }); case $a in 127.*|::1) a=;; esac; " +
			"if test -n \"$a\" && test -n \"$(ip -o addr show to \"$a\")\"; then printf 'address %s\\n' \"$a\"; fi; "
	}
	cmd += "df -P -B1 -- " + quote(p.dstRoot()) + " 2>/dev/null | sed 's/^/df /'; "
	if p.File {
		return cmd + "printf 'entries %s\\n' \"$(stat -c %s -- " + target + " 2>/dev/null || echo 0)\""
	}
	return cmd + "printf 'entries %s\\n' \"$(find " + target + " -mindepth 1 2>/dev/null | wc -l)\""
}

// dstGuard runs the destination's side of the first pass's guards: the
// destination must not hold the function the sync moves (a sync onto it
// would overwrite the live data), and must answer how much room it has.
func (s *syncStep) dstGuard(ctx context.Context, env *Env) (dstSeen, error) {
	p := s.p
	res, err := run(ctx, env, p.Dst, "checking the destination of "+p.Folder, dstGuardCmd(p), false)
	if err != nil {
		return dstSeen{}, err
	}
	seen, err := parseDstSeen(res.Stdout)
	if err != nil {
		return seen, fmt.Errorf("%s: guard of the destination: %w", p.Dst, err)
	}
	if seen.noRoot {
		return seen, refusal(fmt.Sprintf("refusing to sync %s from %s to %s: the data root %s does not exist on %s (df found no filesystem for it); create it there (mkdir -p %s), then run boxswap resume",
			p.Folder, p.Src, p.Dst, p.dstRoot(), p.Dst, quote(p.dstRoot())), ErrRefused)
	}
	if seen.unit == "active" || seen.unit == "activating" || seen.unit == "reloading" {
		return seen, advised(fmt.Sprintf("refusing to sync %s from %s to %s: %s holds %s (%s is %s there)", p.Folder, p.Src, p.Dst, p.Dst, p.function(), p.SrcUnit, seen.unit),
			fmt.Sprintf("the sync would overwrite the data it serves: check which box holds %s (boxswap where), stop %s on the one that should not, then run boxswap resume", p.function(), p.SrcUnit), ErrRefused)
	}
	if seen.address != "" {
		addr := seen.address
		if p.Address != seen.address {
			addr += " (" + p.Address + ")"
		}
		return seen, advised(fmt.Sprintf("refusing to sync %s from %s to %s: %s holds %s's address %s on an interface although %s is %s there",
			p.Folder, p.Src, p.Dst, p.Dst, p.function(), addr, p.SrcUnit, seen.unit),
			fmt.Sprintf("the sync would overwrite the data it may serve: remove the address from %s (ip addr del), then run boxswap resume", p.Dst), ErrRefused)
	}
	return seen, nil
}

// parseDstSeen reads dstGuardCmd's answer; unit and entries must be
// there. entries comes after df's lines: an answer that has it and no df
// line is a data root df found no filesystem for.
func parseDstSeen(out string) (dstSeen, error) {
	var d dstSeen
	var df []string
	got := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		key, val, _ := strings.Cut(strings.TrimSpace(l), " ")
		val = strings.TrimSpace(val)
		switch key {
		case "unit":
			d.unit = val
		case "address":
			d.address = val
		case "df":
			df = append(df, val)
		case "entries":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				return d, fmt.Errorf("%s is not a count in the answer (%q)", key, clip(l))
			}
			d.entries = n
		default:
			continue
		}
		got[key] = true
	}
	for _, k := range []string{"unit", "entries"} {
		if !got[k] {
			return d, fmt.Errorf("no %s in the answer %q", k, clip(strings.TrimSpace(out)))
		}
	}
	if len(df) == 0 {
		d.noRoot = true
		return d, nil
	}
	rows, err := parseDF(strings.Join(df, "\n"))
	if err != nil {
		return d, err
	}
	if len(rows) == 0 {
		d.noRoot = true
		return d, nil
	}
	d.avail = rows[0].Avail
	return d, nil
}

// fits applies the guards that need the first dry run: the source holds
// at least MinSourceFraction of what the destination holds (a near-empty
// source over a full destination is a probable wrong direction), and the
// destination has room for what the sync writes plus RoomMargin. What it
// writes is what the dry run would transfer, each file rounded up to a
// block: with a --copy-dest basis too (dry runs leave it out), since the
// basis is copied, not linked, and stays beside the new copy.
func (s *syncStep) fits(d dstSeen, st RsyncStats) error {
	p := s.p
	have, unit := st.Files-1, "entries" // rsync counts the folder itself
	if p.File {
		have, unit = st.TotalSize, "bytes"
	}
	if want := int64(math.Ceil(p.MinSourceFraction * float64(d.entries))); have < want {
		return advised(fmt.Sprintf("refusing to sync %s from %s to %s: %s holds %d %s on %s, fewer than %g of the %d on %s (data.min_source_fraction)",
			p.Folder, p.Src, p.Dst, path.Join(p.Root, p.Folder), have, unit, p.Src, p.MinSourceFraction, d.entries, p.Dst),
			fmt.Sprintf("a probable wrong direction; nothing was changed: check that %s holds %s's data, then lower data.min_source_fraction if this is right", p.Src, p.function()), ErrRefused)
	}
	need := st.TransferredSize + st.Transferred*blockSize
	if need+p.RoomMargin > d.avail {
		return advised(fmt.Sprintf("refusing to sync %s from %s to %s: %s on %s has %s free, and the sync needs %s plus %s left free (data.room_margin)",
			p.Folder, p.Src, p.Dst, p.dstRoot(), p.Dst, human(d.avail), human(need), human(p.RoomMargin)),
			fmt.Sprintf("nothing was changed (%d files, %s, to transfer): free room on %s (or grow its filesystem), then run boxswap resume",
				st.Transferred, human(st.TransferredSize), p.Dst), ErrRefused)
	}
	return nil
}
