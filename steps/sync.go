package steps

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// ForceMaxDelete is the override (--force max-delete) that lets a sync
// delete more files on its destination than data.max_delete.
const ForceMaxDelete = "max-delete"

// SyncParams says what one Sync moves, from where to where.
type SyncParams struct {
	Src, Dst string // box names; the command runs on Src
	// DstHost, DstPort and DstUser reach Dst from Src (box to box). An
	// empty DstHost makes the destination a local path on Src (tests).
	DstHost string
	DstPort int // default 22
	DstUser string
	Folder  string // one folder under Root: students, raw
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
}

func (p SyncParams) srcDir() string { return path.Join(p.Root, p.Folder) + "/" }

func (p SyncParams) dstDir() string {
	root := p.DstRoot
	if root == "" {
		root = p.Root
	}
	return path.Join(root, p.Folder) + "/"
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
		return fmt.Errorf("data folder %q is not one plain folder name: fix data.folders in boxes.yaml", p.Folder)
	}
	if p.SrcUnit == "" {
		return errors.New("no address unit to guard the sync source (internal error)")
	}
	return nil
}

// RsyncCommand returns the rsync command line run on p.Src. --protect-args
// keeps the destination path from being split or expanded by the
// destination's shell (rsync < 3.2.4 hands it to that shell otherwise).
func RsyncCommand(p SyncParams, dryRun bool) string {
	var b strings.Builder
	b.WriteString("rsync -a --delete --protect-args")
	if dryRun {
		b.WriteString(" --dry-run --stats")
	}
	dst := p.dstDir()
	if p.DstHost != "" {
		port := p.DstPort
		if port == 0 {
			port = 22
		}
		b.WriteString(" -e " + quote("ssh -p "+strconv.Itoa(port)+" -o BatchMode=yes -o StrictHostKeyChecking=yes"))
		host := p.DstHost
		if p.DstUser != "" {
			host = p.DstUser + "@" + host
		}
		dst = host + ":" + dst
	}
	b.WriteString(" -- " + quote(p.srcDir()) + " " + quote(dst))
	return b.String()
}

type syncStep struct {
	base
	p SyncParams
}

// Sync copies one data folder from p.Src to p.Dst with rsync -a --delete,
// run on the source box, box to box. It is guarded: the source must hold
// p.SrcUnit active, its folder must exist and not be empty, and a dry run
// must not delete more than p.MaxDelete files. Undo leaves the copy.
func Sync(id string, p SyncParams) Step {
	what := "sync"
	if p.Final {
		what = "final sync"
	}
	return &syncStep{p: p, base: base{id: id, desc: Description{
		Box: p.Src,
		Text: fmt.Sprintf("%s of %s from %s to %s (rsync -a --delete, refused above %d deletions); undo leaves the copy on %s, %s is untouched",
			what, path.Join(p.Root, p.Folder), p.Src, p.Dst, p.MaxDelete, p.Dst, p.Src),
		Commands: append(guardCmds(p), RsyncCommand(p, true), RsyncCommand(p, false)),
		Retry:    true,
	}}}
}

func guardCmds(p SyncParams) []string {
	dir := quote(path.Join(p.Root, p.Folder))
	return []string{
		isActiveCmd(p.SrcUnit),
		"test -d " + dir,
		"find " + dir + " -mindepth 1 -maxdepth 1 | head -n 1",
	}
}

// guard returns an error wrapping ErrRefused when the source must not be
// synced from, or a Runner/exit error when it could not tell.
func (s *syncStep) guard(ctx context.Context, env *Env) error {
	p := s.p
	if err := p.validate(); err != nil {
		return refusal(fmt.Sprintf("refusing to sync %s from %s: %v", p.Folder, p.Src, err), ErrRefused)
	}
	cmds := guardCmds(p)
	res, err := execute(ctx, env, p.Src, "", cmds[0], false)
	if err != nil {
		return err
	}
	state, _, perr := parseActive(firstLine(res.Stdout))
	if perr != nil {
		return fmt.Errorf("%s: %s: %w", p.Src, cmds[0], perr)
	}
	if state != "active" {
		return refusal(fmt.Sprintf("refusing to sync %s from %s: it does not hold %s (%s is %s); wrong direction?",
			p.Folder, p.Src, p.function(), p.SrcUnit, state), ErrRefused)
	}
	dir := path.Join(p.Root, p.Folder)
	res, err = execute(ctx, env, p.Src, "", cmds[1], false)
	if err != nil {
		return err
	}
	if res.Exit != 0 {
		return refusal(fmt.Sprintf("refusing to sync %s from %s: %s does not exist there; check data.root and data.folders in boxes.yaml",
			p.Folder, p.Src, dir), ErrRefused)
	}
	res, err = run(ctx, env, p.Src, "", cmds[2], false)
	if err != nil {
		return err
	}
	if strings.TrimSpace(res.Stdout) == "" {
		return refusal(fmt.Sprintf("refusing to sync %s from %s: %s is empty there, and --delete would empty %s on %s; wrong direction?",
			p.Folder, p.Src, dir, p.dstDir(), p.Dst), ErrRefused)
	}
	return nil
}

// dryRun returns what the sync would do.
func (s *syncStep) dryRun(ctx context.Context, env *Env) (RsyncStats, error) {
	cmd := RsyncCommand(s.p, true)
	res, err := run(ctx, env, s.p.Src, "rsync --dry-run "+path.Join(s.p.Root, s.p.Folder), cmd, false)
	if err != nil {
		if exitCode(err) == 255 {
			err = fmt.Errorf("%w; %s could not reach %s over ssh: run boxswap check", err, s.p.Src, s.p.Dst)
		}
		return RsyncStats{}, err
	}
	st, err := ParseRsyncStats(res.Stdout)
	if err != nil {
		return st, fmt.Errorf("%s: rsync --dry-run: %w", s.p.Src, err)
	}
	return st, nil
}

func (s *syncStep) Check(ctx context.Context, env *Env) (bool, string, error) {
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
	st, err := s.dryRun(ctx, env)
	if err != nil {
		return err
	}
	if !force(env, ForceMaxDelete) {
		if !st.HasDeleted {
			return refusal(fmt.Sprintf("refusing to sync %s from %s to %s: rsync on %s did not report how many files it would delete (older than 3.1?); check by hand, then run again with --force %s",
				p.Folder, p.Src, p.Dst, p.Src, ForceMaxDelete), ErrRefused)
		}
		if p.MaxDelete >= 0 && st.Deleted > int64(p.MaxDelete) {
			return refusal(fmt.Sprintf("refusing to sync %s from %s to %s: the dry run would delete %d files on %s, more than max_delete (%d); check the direction and the folders, then raise data.max_delete in boxes.yaml or run again with --force %s",
				p.Folder, p.Src, p.Dst, st.Deleted, p.Dst, p.MaxDelete, ForceMaxDelete), ErrRefused)
		}
	}
	progress(env, "syncing %s from %s to %s: %d files (%d bytes) to transfer, %d to delete",
		p.Folder, p.Src, p.Dst, st.Transferred, st.TransferredSize, st.Deleted)
	_, err = run(ctx, env, p.Src, "rsync "+path.Join(p.Root, p.Folder), RsyncCommand(p, false), false)
	if exitCode(err) == 255 {
		err = fmt.Errorf("%w; %s could not reach %s over ssh: run boxswap check", err, p.Src, p.Dst)
	}
	return err
}

// Undo leaves the copied data on the destination: the source is untouched,
// and the next sync brings the destination in line again.
func (s *syncStep) Undo(context.Context, *Env) error { return nil }

// hinted is an error whose text is a complete sentence for the operator
// while errors.Is still finds the sentinel it stands for.
type hinted struct {
	msg string
	err error
}

func (h *hinted) Error() string { return h.msg }
func (h *hinted) Unwrap() error { return h.err }

func refusal(msg string, sentinel error) error { return &hinted{msg: msg, err: sentinel} }
