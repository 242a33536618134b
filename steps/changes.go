package steps

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed" // changes.py
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"path"
	"strconv"
	"strings"
)

// The final sync of a move costs what changed since the pre-sync, not what
// exists: the pre-sync starts a watch (inotify, changes.py run with the
// box's python3) on the source folder before its first pass and on the
// destination folder after its last, and the final sync stops both and
// sends only the paths they list (rsync --files-from). Any doubt (no
// watch, a watch that overflowed, expired or was replaced, a watcher gone
// with a restarted box, a list rsync refused) falls back to the full scan,
// says so and counts it in the step's facts.

//go:embed changes.py
var changesPy string

// changesMaxAge bounds a watch's life on a box (seconds): a cycle stopped
// between its pre-sync and its final sync does not leave watchers behind
// for ever. A final sync after it scans.
const changesMaxAge = 6 * 3600

// changesDir holds the script and the watches' state on a box, under the
// home of the user boxswap logs in as.
const changesDir = "~/.cache/boxswap"

// changesScript is the script's path on a box: named after its content, so
// that boxes running different boxswap versions never mix them.
func changesScript() string {
	h := sha256.Sum256([]byte(changesPy))
	return changesDir + "/changes-" + hex.EncodeToString(h[:6]) + ".py"
}

// Where a watch runs: on the source box, or on the destination's.
const (
	watchSrc = "src"
	watchDst = "dst"
)

// watchState is a watch's folder on its box: a hash of what it watches
// for, so that no name reaches a path unquoted.
func (p SyncParams) watchState(role string) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s %s", role, p.countedKey())
	return fmt.Sprintf("%s/watch-%016x-%s", changesDir, h.Sum64(), role)
}

// watchBox is where the watch of role runs: a destination without a host
// is a local path on the source (tests).
func (p SyncParams) watchBox(role string) string {
	if role == watchDst && p.DstHost != "" {
		return p.Dst
	}
	return p.Src
}

func (p SyncParams) watchDir(role string) string {
	if role == watchDst {
		return p.dstDir()
	}
	return p.srcDir()
}

// watchKey is the fact a pre-sync leaves with its watches' tokens, or why
// there are none.
func (p SyncParams) watchKey() string { return "changes-watch/" + p.countedKey() }

// changesKey is the fact a final sync leaves: how it synced, and
// fullScansKey how many times it fell back to the full scan.
func (p SyncParams) changesKey() string   { return "final-sync/" + p.countedKey() }
func (p SyncParams) fullScansKey() string { return "final-sync-full-scans/" + p.countedKey() }

// WatchStartCommand installs the script and starts a watch of role on its
// box; it prints "ready FOLDERS" once every folder is watched, or
// "unavailable REASON". The heredoc keeps the script as it is in plan.
func WatchStartCommand(p SyncParams, role, token string) string {
	script := changesScript()
	return "mkdir -p " + changesDir + " && chmod 700 " + changesDir +
		" && cat > " + script + ".tmp <<'BOXSWAP_CHANGES_PY' && mv -f -- " + script + ".tmp " + script +
		" && python3 -I -S " + script + " start " + p.watchState(role) + " " + quote(p.watchDir(role)) + " " +
		token + " " + strconv.Itoa(changesMaxAge) + " " + role + "\n" + changesPy + "BOXSWAP_CHANGES_PY\n"
}

// WatchStopCommand ends the watch of role over its FIFO, without starting
// a python in the window: the destination's leaves its raw marks, the
// source's the list; it prints "ok N" or "doubt REASON". A watch that is
// not running left its last doubt in STATE/status; an "ok" there is from
// a final sync that already took the list.
func WatchStopCommand(p SyncParams, role, token string) string {
	verb := "stop"
	if role == watchDst {
		verb = "marks"
	}
	return "s=" + p.watchState(role) + `; if test -p "$s/ctl" && grep -qaF -- "$s" "/proc/$(cat "$s/pid" 2>/dev/null)/cmdline" 2>/dev/null; then ` +
		`timeout 20 sh -c 'printf "%s %s\n" "$2" "$3" > "$1/ctl" && cat "$1/reply"' sh "$s" ` + verb + " " + token +
		`; else st=$(cat "$s/status" 2>/dev/null); case $st in doubt*) echo "$st";; ` +
		`*) echo 'doubt no watch is running on this box: it expired, a final sync took its list before, or the box restarted';; esac; fi`
}

// mergeCmd copies the destination watch's marks next to the source's
// watch (STATE/extra), on the source box, over the box-to-box connection.
func mergeCmd(p SyncParams) string {
	src, dst := p.watchState(watchSrc)+"/extra", p.watchState(watchDst)+"/marks"
	if p.DstHost == "" {
		return "cat -- " + dst + " > " + src
	}
	return sshCmd(p, " -- ") + quote(p.dstLogin()) + " 'cat -- " + dst + "' > " + src
}

// changedOpts are the rsync options that send only the listed paths (a
// folder listed as "F/" one level deep, with --delete: what is gone from
// the source is deleted there, counted against --max-delete as in a full
// sync). Without the folders each path goes through (--no-implied-dirs:
// a file changed in each of 1,000 folders made rsync compare 2,000 more)
// and writing changed files in place (--inplace: no temporary file, so a
// folder whose entries did not change keeps its time; one whose entries
// did is listed, and its time set after): the app is stopped, nobody
// reads a file half written, and an interrupted run is run again.
func changedOpts(p SyncParams) string {
	return " --from0 --no-implied-dirs --inplace --files-from " + p.watchState(watchSrc) + "/list"
}

func newToken() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startWatch starts the watch of role and returns its token, or "" and why
// there is none: the sync goes on without it (the final sync scans).
func (s *syncStep) startWatch(ctx context.Context, env *Env, role string) (string, string) {
	p := s.p
	token := newToken()
	box := p.watchBox(role)
	res, err := run(ctx, env, box, "change watch on "+path.Join(p.watchDir(role)), WatchStartCommand(p, role, token), false)
	out := strings.TrimSpace(res.Stdout)
	if err != nil || !strings.HasPrefix(out, "ready ") {
		why := out
		if err != nil {
			why = err.Error()
		}
		progress(env, "no change watch on %s for %s (%s): the final sync will scan the whole folder", box, p.Folder, why)
		return "", fmt.Sprintf("no watch on %s: %s", box, why)
	}
	progress(env, "change watch on %s: %s folders of %s watched", box, strings.TrimPrefix(out, "ready "), p.watchDir(role))
	return token, ""
}

// startSrcWatch runs before a move's pre-sync passes (what changes during
// them is listed too); startDstWatch after them, and leaves the fact the
// final sync reads.
func (s *syncStep) startSrcWatch(ctx context.Context, env *Env) string {
	if !s.p.Mux || s.p.Final {
		return ""
	}
	token, why := s.startWatch(ctx, env, watchSrc)
	if token == "" {
		return "none: " + why
	}
	return "src=" + token
}

func (s *syncStep) startDstWatch(ctx context.Context, env *Env, src string) error {
	if !s.p.Mux || s.p.Final || env == nil || env.Facts == nil {
		return nil
	}
	v := src
	if strings.HasPrefix(src, "src=") {
		if token, why := s.startWatch(ctx, env, watchDst); token == "" {
			v = "none: " + why
		} else {
			v += " dst=" + token
		}
	}
	return env.Facts.Set(s.p.watchKey(), v)
}

// changedList stops both watches and leaves on the source the list of
// what changed since the pre-sync; it returns how many paths, or why the
// final sync must scan.
func (s *syncStep) changedList(ctx context.Context, env *Env) (how, why string) {
	p := s.p
	v, ok := "", false
	if env != nil && env.Facts != nil {
		v, ok = env.Facts.Get(p.watchKey())
	}
	if !ok {
		return "", "the pre-sync left no change watch"
	}
	if strings.HasPrefix(v, "none: ") {
		return "", strings.TrimPrefix(v, "none: ")
	}
	var src, dst string
	if _, err := fmt.Sscanf(v, "src=%s dst=%s", &src, &dst); err != nil {
		return "", fmt.Sprintf("the pre-sync's watch fact %q is not one this boxswap reads", v)
	}
	if !hexToken(src) || !hexToken(dst) {
		return "", fmt.Sprintf("the pre-sync's watch fact %q holds a token this boxswap did not draw", v)
	}
	// The destination's marks first: the source's watch resolves them
	// against the source's tree with its own.
	var counts [2]int
	for i, w := range []struct{ role, token string }{{watchDst, dst}, {watchSrc, src}} {
		box := p.watchBox(w.role)
		if w.role == watchSrc && counts[0] > 0 {
			if _, err := run(ctx, env, p.Src, "bring the change marks of "+p.Dst, mergeCmd(p), false); err != nil {
				return "", fmt.Sprintf("could not bring %s's change marks to %s: %v", p.Dst, p.Src, err)
			}
		}
		res, err := run(ctx, env, box, "stop the change watch on "+p.watchDir(w.role), WatchStopCommand(p, w.role, w.token), false)
		out := strings.TrimSpace(res.Stdout)
		if err != nil {
			return "", fmt.Sprintf("the watch on %s did not answer: %v", box, err)
		}
		if _, err := fmt.Sscanf(out, "ok %d", &counts[i]); err != nil {
			return "", fmt.Sprintf("watch on %s: %s", box, strings.TrimPrefix(out, "doubt "))
		}
	}
	return fmt.Sprintf("%d paths changed (with %d changes seen on %s)", counts[1], counts[0], p.Dst), ""
}

// record says how the final sync ran, in its step's facts: a full scan
// where a change list was expected is counted.
func (s *syncStep) record(env *Env, how, fullScanWhy string) error {
	p := s.p
	if fullScanWhy != "" {
		progress(env, "final sync of %s: full scan: %s", p.Folder, fullScanWhy)
		how = "full scan: " + fullScanWhy
	} else {
		progress(env, "final sync of %s: %s", p.Folder, how)
	}
	if env == nil || env.Facts == nil {
		return nil
	}
	if fullScanWhy != "" {
		n, _ := env.Facts.Get(p.fullScansKey())
		c, _ := strconv.Atoi(n)
		if err := env.Facts.Set(p.fullScansKey(), strconv.Itoa(c+1)); err != nil {
			return err
		}
	}
	return env.Facts.Set(p.changesKey(), how)
}

// finalApply is the final sync after a pre-sync counted the deletions
// (presync says what it did): with the change list when both watches
// answered, else (or when rsync refuses the list) with the full scan,
// recorded either way first.
func (s *syncStep) finalApply(ctx context.Context, env *Env, presync string) error {
	p := s.p
	progress(env, "final sync of %s from %s to %s (pre-sync: %s)", p.Folder, p.Src, p.Dst, presync)
	how, why := s.changedList(ctx, env)
	if err := s.record(env, how, why); err != nil {
		return err
	}
	if why != "" {
		return s.finalRun(ctx, env, "")
	}
	err := s.finalRun(ctx, env, changedOpts(s.p))
	if err == nil || errors.Is(err, ErrRefused) || exitCode(err) == 255 {
		return err
	}
	// The list's run failed where a full one may not (an rsync that
	// refuses a list entry): scan.
	if rerr := s.record(env, "", fmt.Sprintf("rsync with the change list failed: %v", err)); rerr != nil {
		return rerr
	}
	return s.finalRun(ctx, env, "")
}

// planToken stands for a watch's token in plan: it is drawn at run time.
const planToken = "<token>"

// hexToken says whether a token read back from the state is one newToken
// drew: tokens reach the box's shell unquoted.
func hexToken(t string) bool {
	_, err := hex.DecodeString(t)
	return err == nil && len(t) == 24
}

// watchStartCmds are what a move's pre-sync sends for its watches, as plan
// shows them: the script's text is steps/changes.py.
func watchStartCmds(p SyncParams) []string {
	if p.Final || !p.Mux {
		return nil
	}
	var out []string
	for _, role := range []string{watchSrc, watchDst} {
		c := WatchStartCommand(p, role, planToken)
		head, _, _ := strings.Cut(c, "\n")
		out = append(out, head+"\n<steps/changes.py of this boxswap>\nBOXSWAP_CHANGES_PY\n")
	}
	return out
}

// finalChangedCmds are what a final sync sends for the change list.
func finalChangedCmds(p SyncParams) []string {
	if !p.Mux {
		return nil
	}
	return []string{
		WatchStopCommand(p, watchDst, planToken), mergeCmd(p), WatchStopCommand(p, watchSrc, planToken),
		rsyncCmd(p, noDelete+changedOpts(p)), rsyncCmd(p, capped(p, false)+changedOpts(p)),
	}
}
