package steps

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"path"
	"strconv"
	"strings"
)

// ForceMaxDelete is the override (--force max-delete) that lets a sync
// delete more files on its destination than data.max_delete.
const ForceMaxDelete Guard = "max-delete"

// SyncParams says what one Sync moves, from where to where.
type SyncParams struct {
	Src, Dst string // box names; the command runs on Src
	// DstHost, DstPort and DstUser reach Dst from Src (box to box). An
	// empty DstHost makes the destination a local path on Src (tests).
	DstHost string
	DstPort int // default 22
	DstUser string
	Folder  string // one folder under Root: students, raw (a file with File)
	// File makes Folder a single file under Root (data.files: db.sqlite3):
	// synced as it is, without a trailing slash or a basis (--delete has
	// nothing to delete beside one file).
	File    bool
	Root    string // absolute data root on both boxes
	DstRoot string // data root on Dst when it differs (tests); default Root
	// SrcUnit is the address unit Src must hold active: a source that does
	// not hold the function is the wrong direction.
	SrcUnit  string
	Function string // what SrcUnit stands for, for messages; default production
	// MaxDelete is the most files the sync may delete on Dst (a dry run
	// counts them first); negative means no limit.
	MaxDelete int
	Final     bool // the sync after the app was stopped
	// Passes bounds the passes of a pre-sync (not Final) on a live source:
	// after the first, another runs while its dry run shows more than a few
	// changes and fewer than the pass before. 0 and 1 mean one pass.
	Passes int
	// Basis names a sibling folder on Dst (the epilogue's backup,
	// students.prod) whose identical files the real runs copy locally
	// instead of sending them (rsync --copy-dest): what makes the next
	// cycle's first sync a delta. Dry runs leave it out: with it, rsync
	// counts a file found in the basis as neither created nor transferred,
	// and a check would call an empty destination in sync.
	Basis string
	// Mux makes the box-to-box ssh share one connection: the pre-sync
	// leaves a master connection on Src (ControlPersist, muxPersist) that the
	// final sync reuses, so no ssh handshake happens inside the window.
	Mux bool
	// Exclude are rsync patterns left out of every run (data.exclude).
	Exclude []string
	// The guards of the first pass (syncguard.go): the destination must
	// not hold the function (its SrcUnit active, or Address on one of its
	// interfaces: an IP or a name it resolves; "" checks the unit only),
	// must have RoomMargin bytes left free after the transfer, and the
	// source must hold at least MinSourceFraction of the destination's
	// entries (bytes for a File); 0 keeps only the empty-source guard.
	Address           string
	RoomMargin        int64
	MinSourceFraction float64
}

// A pre-sync pass whose dry run shows at most fewFiles changes and
// fewBytes to transfer is the last: one more pass would save the final
// sync next to nothing, since its cost is the scan of the whole folder.
const (
	fewFiles = 100
	fewBytes = 64 << 20
)

// muxPersist is how long the box-to-box master connection outlives its
// last use: enough for the settings switch and install.sh between the
// pre-sync and the final sync. A later final sync simply dials again.
const muxPersist = "900"

// srcDir is the source as rsync is given it: a folder with a trailing
// slash (its content), a file as it is.
func (p SyncParams) srcDir() string { return path.Join(p.Root, p.Folder) + p.slash() }

func (p SyncParams) dstDir() string { return path.Join(p.dstRoot(), p.Folder) + p.slash() }

func (p SyncParams) dstRoot() string {
	if p.DstRoot == "" {
		return p.Root
	}
	return p.DstRoot
}

func (p SyncParams) slash() string {
	if p.File {
		return ""
	}
	return "/"
}

// what names the synced entry in the operator's words: folder or file.
func (p SyncParams) what() string {
	if p.File {
		return "file"
	}
	return "folder"
}

func (p SyncParams) function() string {
	if p.Function == "" {
		return "production"
	}
	return p.Function
}

// validate refuses parameters that would make rsync act on a path nobody
// meant: a relative root, a folder that is not one plain name.
func (p SyncParams) validate() error {
	if !path.IsAbs(p.Root) || (p.DstRoot != "" && !path.IsAbs(p.DstRoot)) {
		return fmt.Errorf("data root %q is not an absolute path: fix data.root in boxes.yaml", p.Root)
	}
	if p.Folder == "" || p.Folder == "." || p.Folder == ".." || strings.Contains(p.Folder, "/") {
		return fmt.Errorf("data %s %q is not one plain %s name: fix data.%ss in boxes.yaml", p.what(), p.Folder, p.what(), p.what())
	}
	if p.SrcUnit == "" {
		return errors.New("no address unit to guard the sync source (internal error)")
	}
	if p.Basis != "" && p.File {
		return errors.New("a file is synced without a basis (internal error)")
	}
	if p.Basis != "" && (p.Basis == "." || p.Basis == ".." || strings.Contains(p.Basis, "/")) {
		return fmt.Errorf("basis folder %q is not one plain folder name (internal error)", p.Basis)
	}
	return nil
}

// RsyncCommand returns the rsync command line run on p.Src. --protect-args
// keeps the destination path from being split or expanded by the
// destination's shell (rsync < 3.2.4 hands it to that shell otherwise).
func RsyncCommand(p SyncParams, dryRun bool) string {
	if dryRun {
		p.Basis = "" // see SyncParams.Basis
		return rsyncCmd(p, " --dry-run --stats")
	}
	return rsyncCmd(p, "")
}

// noDelete makes a real run transfer everything but delete nothing, and
// report the deletions it skipped ("Deletions stopped due to --max-delete
// limit (N skipped)", exit 25). -1 rather than 0: rsync before 3.0 read 0
// as no limit, every later one reads a negative limit as no deletion.
const noDelete = " --max-delete=-1"

// capped returns the --max-delete option bounding a real run to the
// limit the dry run was checked against, so that files vanishing from the
// live source between the dry run and the run cannot raise the count.
func capped(p SyncParams, forced bool) string {
	if forced || p.MaxDelete < 0 {
		return ""
	}
	return " --max-delete=" + strconv.Itoa(max(p.MaxDelete, 0))
}

// rsyncCmd is the rsync command line with extra options.
func rsyncCmd(p SyncParams, opts string) string {
	var b strings.Builder
	b.WriteString("rsync -a --delete --protect-args")
	b.WriteString(opts)
	b.WriteString(excludes(p))
	if p.Basis != "" {
		// Relative to the destination folder; a missing basis is only a
		// warning to rsync.
		b.WriteString(" " + quote("--copy-dest=../"+p.Basis))
	}
	dst := p.dstDir()
	if p.DstHost != "" {
		b.WriteString(" -e " + quote(sshCmd(p, "")))
		dst = p.dstLogin() + ":" + dst
	}
	b.WriteString(" -- " + quote(p.srcDir()) + " " + quote(dst))
	return b.String()
}

func (p SyncParams) dstLogin() string {
	if p.DstUser != "" {
		return p.DstUser + "@" + p.DstHost
	}
	return p.DstHost
}

// sshCmd is the box-to-box ssh command (before the destination), with
// extra options. With Mux it uses the shared connection when there is one
// and dials as usual otherwise (ControlMaster=no: it never becomes one).
func sshCmd(p SyncParams, extra string) string {
	port := p.DstPort
	if port == 0 {
		port = 22
	}
	c := "ssh -p " + strconv.Itoa(port) + " -o BatchMode=yes -o StrictHostKeyChecking=yes"
	if p.Mux {
		c += " -o ControlPath=" + muxPath(p)
	}
	return c + extra
}

// muxPath names the master connection's socket on Src: one per
// destination, a hash so that no host name reaches a path unquoted.
func muxPath(p SyncParams) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s@%s:%d", p.DstUser, p.DstHost, p.DstPort)
	return fmt.Sprintf("~/.ssh/boxswap-mux-%016x", h.Sum64())
}

// SSHProbeCommand is what a box runs to see that it reaches another box
// (host, port, user) the way a sync does: the same ssh options, a known
// host key only, no password prompt.
func SSHProbeCommand(host string, port int, user string) string {
	p := SyncParams{DstHost: host, DstPort: port, DstUser: user}
	return sshCmd(p, "") + " " + quote(p.dstLogin()) + " true"
}

// MuxCommand starts the shared box-to-box connection on Src unless one
// answers: with every stream on /dev/null, so the backgrounded master does
// not hold the session open, and a stale socket removed first. It always
// exits 0: without a master the final sync dials as usual.
func MuxCommand(p SyncParams) string {
	if p.DstHost == "" || !p.Mux {
		return ""
	}
	login := quote(p.dstLogin())
	return sshCmd(p, " -O check -- ") + login + " >/dev/null 2>&1 || { rm -f -- " + muxPath(p) + "; " +
		sshCmd(p, " -o ControlMaster=yes -o ControlPersist="+muxPersist+" -f -N -- ") + login +
		" </dev/null >/dev/null 2>&1; }; true"
}

type syncStep struct {
	base
	p SyncParams
}

// Sync copies one data folder from p.Src to p.Dst with rsync -a --delete,
// run on the source box, box to box. It is guarded: the source must hold
// p.SrcUnit active, its folder must exist and not be empty, the
// destination must pass its guards (syncguard.go), and a dry run must not
// delete more than p.MaxDelete files. Undo leaves the copy.
func Sync(id string, p SyncParams) Step {
	what := "sync"
	if p.Final {
		what = "final sync"
		if p.Mux {
			what = "final sync (of what the pre-sync's change watches listed; a full scan at any doubt)"
		}
	}
	cmds := []string{guardCmd(p), dstGuardCmd(p), RsyncCommand(p, true), rsyncCmd(p, capped(p, false))}
	if p.Final {
		// The destination's guard and the dry run only run when no
		// pre-sync of this cycle counted; the change list's when its
		// watches answered (changes.go).
		cmds = append(append([]string{guardCmd(p)}, finalChangedCmds(p)...),
			rsyncCmd(p, noDelete), rsyncCmd(p, capped(p, false)), dstGuardCmd(p), RsyncCommand(p, true))
	} else if p.Passes > 1 {
		what = fmt.Sprintf("sync (up to %d passes while the delta shrinks)", p.Passes)
	}
	if p.Mux && !p.Final {
		what += ", with change watches on both boxes for the final sync"
	}
	if m := MuxCommand(p); m != "" && !p.Final {
		cmds = append(cmds, m)
	}
	if w := watchStartCmds(p); w != nil {
		// The source's watch starts before the passes, the destination's after.
		cmds = append(append([]string{cmds[0], w[0]}, cmds[1:]...), w[1])
	}
	return &syncStep{p: p, base: base{id: id, desc: Description{
		Box: p.Src,
		Text: fmt.Sprintf("%s of %s from %s to %s (rsync -a --delete, refused above %d deletions%s); undo leaves the copy on %s, %s is untouched",
			what, path.Join(p.Root, p.Folder), p.Src, p.Dst, p.MaxDelete, guardText(p), p.Dst, p.Src),
		Commands: cmds,
		Retry:    true,
	}}}
}

// countedKey is the fact a pre-sync leaves once its dry run counted the
// deletions and its passes ran: the final sync of the same folder between
// the same boxes may then skip its own dry run (see finalApply).
func (p SyncParams) countedKey() string {
	return "sync-counted/" + p.Src + ">" + p.Dst + ":" + path.Join(p.Root, p.Folder) + ">" + p.dstDir()
}

// guardCmd asks the source in one round trip (a final sync runs it in the
// window): "unit STATE" (as dstGuardCmd says it), then "there" and the
// folder's first entry (a file: its path when not empty), or "missing".
// No pipe after find: its exit status is the command's, so a folder it
// cannot read is an error, not an empty folder.
func guardCmd(p SyncParams) string {
	dir := quote(path.Join(p.Root, p.Folder))
	test, first := "test -d "+dir, "find "+dir+" -mindepth 1 -maxdepth 1 -print -quit"
	if p.File {
		test, first = "test -f "+dir, "find "+dir+" -maxdepth 0 -size +0c"
	}
	return `printf 'unit %s\n' "$(` + isActiveCmd(p.SrcUnit) + `)"; if ` + test + "; then echo there; " + first + "; else echo missing; fi"
}

// guard returns an error wrapping ErrRefused when the source must not be
// synced from, or a Runner/exit error when it could not tell.
func (s *syncStep) guard(ctx context.Context, env *Env) error {
	p := s.p
	if err := p.validate(); err != nil {
		return refusal(fmt.Sprintf("refusing to sync %s from %s: %v", p.Folder, p.Src, err), ErrRefused)
	}
	doing := "checking " + p.Folder + " before syncing it"
	res, err := execute(ctx, env, p.Src, doing, guardCmd(p), false)
	if err != nil {
		return err
	}
	lines := strings.SplitN(res.Stdout, "\n", 3)
	unit, ok := strings.CutPrefix(lines[0], "unit ")
	if !ok {
		return fmt.Errorf("%s: %s: unexpected answer %q", p.Src, doing, clip(res.Stdout))
	}
	state, _, perr := parseActive(unit)
	if perr != nil {
		return fmt.Errorf("%s: %s: %w", p.Src, doing, perr)
	}
	if state != "active" {
		return refusal(fmt.Sprintf("refusing to sync %s from %s: it does not hold %s (%s is %s); wrong direction?",
			p.Folder, p.Src, p.function(), p.SrcUnit, state), ErrRefused)
	}
	dir := path.Join(p.Root, p.Folder)
	switch {
	case len(lines) > 1 && lines[1] == "missing":
		return refusal(fmt.Sprintf("refusing to sync %s from %s: %s does not exist there (as a %s); check data.root and data.%ss in boxes.yaml",
			p.Folder, p.Src, dir, p.what(), p.what()), ErrRefused)
	case len(lines) < 3 || lines[1] != "there":
		return fmt.Errorf("%s: %s: unexpected answer %q", p.Src, doing, clip(res.Stdout))
	case res.Exit != 0: // find could not read the folder
		return &ExitError{Box: p.Src, Command: doing, Cmd: guardCmd(p), Code: res.Exit, Tail: res.Tail}
	case strings.TrimSpace(lines[2]) == "":
		how := "--delete would empty"
		if p.File {
			how = "the sync would empty"
		}
		return refusal(fmt.Sprintf("refusing to sync %s from %s: %s is empty there, and %s %s on %s; wrong direction?",
			p.Folder, p.Src, dir, how, p.dstDir(), p.Dst), ErrRefused)
	}
	return nil
}

// dryRun returns what the sync would do.
func (s *syncStep) dryRun(ctx context.Context, env *Env) (RsyncStats, error) {
	cmd := RsyncCommand(s.p, true)
	res, rep, err := s.scanRsync(ctx, env, "trying the sync of "+path.Join(s.p.Root, s.p.Folder)+" (dry run)", cmd, true)
	if err != nil {
		if err = s.rsyncOutcome(env, "a dry run", rep, err); err != nil {
			return RsyncStats{}, err
		}
	}
	st, err := ParseRsyncStats(res.Stdout)
	if err != nil {
		return st, fmt.Errorf("%s: rsync --dry-run: %w", s.p.Src, err)
	}
	return st, nil
}

func (s *syncStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	if s.p.Final {
		// Telling whether it is done costs a scan of the whole folder, as
		// much as doing it; in the window that scan would count twice.
		return false, "the final sync always runs: on data in sync it only scans", nil
	}
	if s.p.Mux {
		// A move's pre-sync leaves what makes the final sync short (the
		// counted deletions, the shared connection) even when the data is
		// already in sync, so it is never skipped; that costs one scan.
		return false, "a pre-sync always runs: it prepares the final sync", nil
	}
	if err := s.guard(ctx, env); err != nil {
		if errors.Is(err, ErrRefused) {
			return false, err.Error(), nil
		}
		return false, "", err
	}
	st, err := s.dryRun(ctx, env)
	if err != nil {
		return false, "", err
	}
	if st.Transferred == 0 && st.Created == 0 && st.Deleted == 0 && st.HasDeleted {
		return true, fmt.Sprintf("%s is in sync on %s (%d files)", s.p.Folder, s.p.Dst, st.Files), nil
	}
	return false, fmt.Sprintf("%s to do: %d files to transfer (%d bytes), %d to create, %d to delete",
		s.p.Folder, st.Transferred, st.TransferredSize, st.Created, st.Deleted), nil
}

func (s *syncStep) Apply(ctx context.Context, env *Env) error {
	p := s.p
	if err := s.guard(ctx, env); err != nil {
		return err
	}
	if p.Final {
		if v, ok := counted(env, p); ok {
			return s.finalApply(ctx, env, v)
		}
	}
	// The first pass: the destination's guards, the source's change watch
	// (what the passes miss is listed), then the dry run's.
	seen, err := s.dstGuard(ctx, env)
	if err != nil {
		return err
	}
	watch := s.startSrcWatch(ctx, env)
	st, err := s.dryRun(ctx, env)
	if err != nil {
		return err
	}
	if err := s.fits(seen, st); err != nil {
		return err
	}
	if err := s.allowed(env, st); err != nil {
		return err
	}
	progress(env, "syncing %s from %s to %s: %d files (%d bytes) to transfer, %d to delete",
		p.Folder, p.Src, p.Dst, st.Transferred, st.TransferredSize, st.Deleted)
	if err := s.rsync(ctx, env, capped(p, force(env, ForceMaxDelete))); err != nil {
		return err
	}
	if p.Final {
		return nil
	}
	st, passes, err := s.morePasses(ctx, env, st)
	if err != nil {
		return err
	}
	if m := MuxCommand(p); m != "" {
		// Best effort: without it the final sync dials as usual.
		if _, err := stream(ctx, env, p.Src, "opening an ssh connection to "+p.Dst, m, false); err != nil {
			progress(env, "no shared connection to %s for the final sync: %v", p.Dst, err)
		}
	}
	if err := s.startDstWatch(ctx, env, watch); err != nil {
		return err
	}
	if env != nil && env.Facts != nil {
		v := fmt.Sprintf("%d passes, dry run counted %d deletions", passes, st.Deleted)
		if err := env.Facts.Set(p.countedKey(), v); err != nil {
			return err
		}
	}
	return nil
}

// morePasses runs the passes of a pre-sync after its first (st is that
// first pass's dry run) while the delta shrinks; it returns the last dry
// run and the number of passes run.
func (s *syncStep) morePasses(ctx context.Context, env *Env, st RsyncStats) (RsyncStats, int, error) {
	p := s.p
	var err error
	passes := 1
	for prev := changes(st); passes < p.Passes; passes++ {
		// The source is live: what changed during the pass is the next
		// delta. Stop once it is small, or no longer shrinking.
		if st, err = s.dryRun(ctx, env); err != nil {
			return st, passes, err
		}
		n := changes(st)
		if n <= fewFiles && st.TransferredSize <= fewBytes {
			progress(env, "%s: %d changes left after pass %d: few enough for the final sync", p.Folder, n, passes)
			break
		}
		if n >= prev {
			progress(env, "%s: %d changes left after pass %d, not fewer than before: stopping the passes", p.Folder, n, passes)
			break
		}
		if err := s.allowed(env, st); err != nil {
			return st, passes, err
		}
		progress(env, "%s: pass %d: %d files (%d bytes) to transfer, %d to delete",
			p.Folder, passes+1, st.Transferred, st.TransferredSize, st.Deleted)
		if err := s.rsync(ctx, env, capped(p, force(env, ForceMaxDelete))); err != nil {
			return st, passes, err
		}
		prev = n
	}
	return st, passes, nil
}

// counted returns the fact of a pre-sync of the same folder between the
// same boxes in this cycle.
func counted(env *Env, p SyncParams) (string, bool) {
	if env == nil || env.Facts == nil {
		return "", false
	}
	return env.Facts.Get(p.countedKey())
}

// finalRun is the rsync runs of the final sync after a pre-sync counted
// the deletions (finalApply), opts adding the change list: one scan instead of
// two in the common case, with the data guard kept. A first run transfers
// but deletes nothing and reports how many deletions it skipped; none (the
// usual case: nobody deletes files during the window) ends it; more than
// max_delete is refused with nothing deleted; otherwise a second run
// deletes them, capped at max_delete. The guard's direction and
// empty-source checks ran before.
func (s *syncStep) finalRun(ctx context.Context, env *Env, opts string) error {
	p := s.p
	_, rep, err := s.scanRsync(ctx, env, "syncing "+path.Join(p.Root, p.Folder)+" to "+p.Dst, rsyncCmd(p, noDelete+opts), false)
	switch code := exitCode(err); {
	case err == nil:
		return nil
	case code == rsyncVanished:
		// rsync says 24 rather than 25 when files also vanished.
		if err := s.vanished(env, "the final sync", rep); err != nil || !rep.HasSkipped {
			return err
		}
	case code == rsyncPartial && rep.HasSkipped:
		// A type change (a folder replaced by a file) also needs a
		// deletion: rsync then exits 23, having said how many it skipped.
	case code != 25:
		return s.rsyncOutcome(env, "the final sync", rep, err)
	}
	pending, ok := rep.Skipped, rep.HasSkipped
	if !ok {
		return refusal(fmt.Sprintf("refusing to finish the final sync of %s from %s to %s: rsync stopped at its deletion limit but did not say how many deletions it skipped; nothing was deleted; check %s on %s by hand, then run boxswap resume",
			p.Folder, p.Src, p.Dst, p.dstDir(), p.Dst), ErrRefused)
	}
	if err := s.allowed(env, RsyncStats{Deleted: pending, HasDeleted: true}); err != nil {
		return err
	}
	progress(env, "final sync of %s: deleting %d files on %s", p.Folder, pending, p.Dst)
	return s.rsync(ctx, env, capped(p, force(env, ForceMaxDelete))+opts)
}

// changes is how many files a sync would write or delete (created files
// are among the transferred ones).
func changes(st RsyncStats) int64 { return st.Transferred + st.Deleted }

// allowed applies the max_delete guard to what a dry run counted.
func (s *syncStep) allowed(env *Env, st RsyncStats) error {
	p := s.p
	if force(env, ForceMaxDelete) {
		return nil
	}
	if !st.HasDeleted {
		return refusal(fmt.Sprintf("refusing to sync %s from %s to %s: rsync on %s did not report how many files it would delete (older than 3.1?); check by hand, then run again with --force %s",
			p.Folder, p.Src, p.Dst, p.Src, ForceMaxDelete), ErrRefused)
	}
	if p.MaxDelete >= 0 && st.Deleted > int64(p.MaxDelete) {
		return refusal(fmt.Sprintf("refusing to sync %s from %s to %s: the dry run would delete %d files on %s, more than max_delete (%d); nothing was deleted; check the direction and the folders, then raise data.max_delete in boxes.yaml or run again with --force %s",
			p.Folder, p.Src, p.Dst, st.Deleted, p.Dst, p.MaxDelete, ForceMaxDelete), ErrRefused)
	}
	return nil
}

// rsync runs the real sync with extra options.
func (s *syncStep) rsync(ctx context.Context, env *Env, opts string) error {
	p := s.p
	run := "a pass of the pre-sync"
	if p.Final {
		run = "the final sync"
	}
	_, rep, err := s.scanRsync(ctx, env, "syncing "+path.Join(p.Root, p.Folder)+" to "+p.Dst, rsyncCmd(p, opts), false)
	if err == nil {
		return nil
	}
	return s.rsyncOutcome(env, run, rep, err)
}

func (s *syncStep) sshHint(err error) error {
	if exitCode(err) == 255 {
		return fmt.Errorf("%w; %s could not reach %s over ssh: run boxswap check", err, s.p.Src, s.p.Dst)
	}
	if exitCode(err) == 25 {
		return fmt.Errorf("%w; rsync stopped deleting at max_delete (%d): files vanished from %s during the sync; check, then run boxswap resume", err, s.p.MaxDelete, s.p.Src)
	}
	return err
}

// Undo leaves the copied data on the destination: the source is untouched,
// and the next sync brings the destination in line again.
func (s *syncStep) Undo(context.Context, *Env) error { return nil }

// hinted is an error whose text is a complete sentence for the operator
// while errors.Is still finds the sentinel it stands for. A long one's
// advice is its hint, the operator's second line (Hint).
type hinted struct {
	msg, hint string
	err       error
	more      string // for the record only: a list, a log's end
}

func (h *hinted) Error() string { return h.msg }
func (h *hinted) Unwrap() error { return h.err }

// Hint is what the operator should do, or "".
func (h *hinted) Hint() string { return h.hint }

// Detail is the message and its advice, for the record.
func (h *hinted) Detail() string {
	d := h.msg
	if h.err != nil && !isSentinel(h.err) {
		d += " [" + Detail(h.err) + "]"
	}
	if h.hint != "" {
		d += "; " + h.hint
	}
	if h.more != "" {
		d += " [" + h.more + "]"
	}
	return d
}

// isSentinel says err is one of the package's bare sentinels, whose text a
// hinted message already says.
func isSentinel(err error) bool {
	return err == ErrRefused || err == ErrPrecondition || err == ErrHalted || err == ErrNotApproved
}

// refusal is msg standing for sentinel. The advice of a msg too long for
// one line (what follows its last "; ") becomes its hint.
func refusal(msg string, sentinel error) error {
	h := &hinted{msg: msg, err: sentinel}
	if i := strings.LastIndex(msg, "; "); i > 0 && len(msg) > maxOwnLine {
		h.msg, h.hint = msg[:i], msg[i+2:]
	}
	return h
}

// advised is msg standing for sentinel, with hint the operator's advice.
func advised(msg, hint string, sentinel error) error {
	return &hinted{msg: msg, hint: hint, err: sentinel}
}

// maxOwnLine is how long a step's own message may be so that the
// operator's line (the step's ID before it) fits 200 characters.
const maxOwnLine = 140
