package steps

import (
	"context"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"boxswap/internal/text"
)

// rsync exit statuses that say more than "failed".
const (
	// rsyncPartial (23): some files or attributes were not transferred;
	// rsync names each on stderr. The copy is incomplete: the sync fails.
	rsyncPartial = 23
	// rsyncVanished (24): some source files vanished between rsync's
	// listing of them and their transfer: on a live tree (Jupyter's
	// temporary files) that is normal, and what vanished needs no copy.
	rsyncVanished = 24
)

// namedMax bounds the file names an rsync report keeps, for an error a
// person reads; the count is always the whole one.
const namedMax = 10

// rsyncReport is what rsync said on its output besides its exit status:
// the files that vanished, the files it could not transfer, and the
// deletions --max-delete skipped.
type rsyncReport struct {
	Vanished      int
	VanishedNames []string // the first namedMax
	Failed        int
	FailedNames   []string // the first namedMax: "path (reason)"
	Skipped       int64    // deletions skipped at the --max-delete limit
	HasSkipped    bool
}

// rsyncScanner reads rsync's messages line by line as they stream (the
// step's output keeps only a tail): an io.Writer.
type rsyncScanner struct {
	dst  string // the destination folder, which rsync's renames are relative to
	part []byte
	rep  rsyncReport
}

func (w *rsyncScanner) Write(p []byte) (int, error) {
	w.part = append(w.part, p...)
	for {
		i := strings.IndexByte(string(w.part), '\n')
		if i < 0 {
			break
		}
		w.line(string(w.part[:i]))
		w.part = w.part[i+1:]
	}
	if len(w.part) > 64<<10 { // a line that long is no message of rsync's
		w.part = w.part[:0]
	}
	return len(p), nil
}

// report returns what was read, the last line included.
func (w *rsyncScanner) report() rsyncReport {
	if len(w.part) > 0 {
		w.line(string(w.part))
		w.part = w.part[:0]
	}
	return w.rep
}

// line reads one of rsync's messages (3.0 to 3.4 wording):
//
//	file has vanished: "/nbhosting/students/a/.~nb.ipynb"
//	rsync: [sender] send_files failed to open "/x": Permission denied (13)
//	rsync: [receiver] rename "/d/.f.Ab12" -> "f": Operation not permitted (1)
//	Deletions stopped due to --max-delete limit (3 skipped)
//
// rsync's own summary ("rsync error: ...", "rsync warning: ...") names no
// file and is not counted.
func (w *rsyncScanner) line(l string) {
	l = strings.TrimRight(l, "\r")
	r := &w.rep
	switch {
	case strings.Contains(l, "file has vanished: "):
		r.Vanished++
		if len(r.VanishedNames) < namedMax {
			r.VanishedNames = append(r.VanishedNames, clipPath(quotedIn(l)))
		}
	case strings.HasPrefix(l, "rsync: ") && strings.Contains(l, `"`):
		r.Failed++
		if len(r.FailedNames) < namedMax {
			name := clipPath(fileIn(l, w.dst))
			if why := reasonIn(l); why != "" {
				name += " (" + clip(why) + ")"
			}
			r.FailedNames = append(r.FailedNames, name)
		}
	default:
		if n, ok := skippedIn(l); ok {
			r.Skipped, r.HasSkipped = n, true
		}
	}
}

// skippedIn reads "Deletions stopped due to --max-delete limit (N
// skipped)".
func skippedIn(l string) (int64, bool) {
	_, rest, ok := strings.Cut(l, "--max-delete limit (")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, " skipped)")
	if !ok {
		return 0, false
	}
	n, err := statNumber(num)
	return n, err == nil
}

// quotedIn returns the first "quoted" part of an rsync message.
func quotedIn(l string) string {
	_, rest, ok := strings.Cut(l, `"`)
	if !ok {
		return l
	}
	name, _, ok := strings.Cut(rest, `"`)
	if !ok {
		return rest
	}
	return name
}

// fileIn returns the file an rsync error is about: the first quoted
// path, or for a failed rename of its temporary file ("/d/s/.f.Ab12" ->
// "s/f") the file it was to become, named relative to the destination
// folder dst.
func fileIn(l, dst string) string {
	first := quotedIn(l)
	if _, rest, ok := strings.Cut(l, `" -> "`); ok {
		if to, _, ok := strings.Cut(rest, `"`); ok {
			if path.IsAbs(to) || dst == "" {
				return to
			}
			return path.Join(dst, to)
		}
	}
	return first
}

// clipPath keeps the end of a long path, where the file's name is.
func clipPath(p string) string {
	const keep = 160
	if len(p) <= keep {
		return p
	}
	i := len(p) - keep
	for i < len(p) && !utf8.RuneStart(p[i]) {
		i++
	}
	return "…" + p[i:]
}

// reasonIn returns the system error ending an rsync message: "Permission
// denied (13)".
func reasonIn(l string) string {
	i := strings.LastIndex(l, `": `)
	if i < 0 || !strings.HasSuffix(l, ")") {
		return ""
	}
	return l[i+3:]
}

// scanRsync runs an rsync command on the sync's source as run (keep:
// stdout kept for parsing) or stream does, reading its messages on the
// way to the step's output. The error is run's, unchanged.
func (s *syncStep) scanRsync(ctx context.Context, env *Env, label, cmd string, keep bool) (result, rsyncReport, error) {
	sc := &rsyncScanner{dst: s.p.dstDir()}
	e := Env{}
	if env != nil {
		e = *env
	}
	out := e.Output
	// rsync without --verbose prints its messages on stderr and nothing
	// else but --stats on stdout: both are read, in the order they come.
	e.Output = func(box string) io.Writer {
		if out != nil {
			if w := out(box); w != nil {
				return io.MultiWriter(w, sc)
			}
		}
		return sc
	}
	res, err := run1(ctx, &e, s.p.Src, label, cmd, false, keep)
	return res, sc.report(), err
}

// rsyncOutcome turns the end of one rsync run into the step's: exit 24
// (files vanished) is recorded and accepted, before the window (a live
// source) as in it (what vanished after the writers stopped was a
// temporary file of theirs); exit 23 fails naming the files; anything
// else is the run's error with its hint.
func (s *syncStep) rsyncOutcome(env *Env, run string, rep rsyncReport, err error) error {
	switch exitCode(err) {
	case rsyncVanished:
		return s.vanished(env, run, rep)
	case rsyncPartial:
		return s.partial(err, rep)
	}
	return s.sshHint(err)
}

// vanishedFact begins the fact recording how many files vanished during a
// sync step's runs (the step's record lists the facts it set).
const vanishedFact = "sync-vanished/"

func (s *syncStep) vanishedKey() string { return vanishedFact + s.ID() }

// Warning returns what a step's recorded facts say the operator should
// know of a step that did not fail (files that vanished during a sync),
// or "".
func Warning(facts map[string]string) string {
	var w []string
	for k, v := range facts {
		if strings.HasPrefix(k, vanishedFact) {
			w = append(w, v)
		}
	}
	slices.Sort(w)
	return strings.Join(w, "; ")
}

// vanished records a run that ended with exit 24 as a warning: in the
// output (the step's tail), in the operator's progress, and, summed over
// the step's runs, as a fact of the step's record.
func (s *syncStep) vanished(env *Env, run string, rep rsyncReport) error {
	p := s.p
	n := max(rep.Vanished, 1) // exit 24 means at least one
	names := ""
	if len(rep.VanishedNames) > 0 {
		names = ": " + strings.Join(rep.VanishedNames, ", ")
		if rep.Vanished > len(rep.VanishedNames) {
			names += ", …"
		}
	}
	why := "its writers were running"
	if p.Final {
		why = "its writers were stopped: temporary files of theirs, or another writer"
	}
	msg := fmt.Sprintf("warning: %d files vanished from %s on %s during %s (rsync exit 24; %s)%s",
		n, path.Join(p.Root, p.Folder), p.Src, run, why, names)
	note(env, p.Src, "%s", msg)
	progress(env, "%s", msg)
	if env == nil || env.Facts == nil {
		return nil
	}
	total := n
	if v, ok := env.Facts.Get(s.vanishedKey()); ok {
		var before int
		if _, err := fmt.Sscanf(v, "%d", &before); err == nil {
			total += before
		}
	}
	return env.Facts.Set(s.vanishedKey(), fmt.Sprintf("%d files vanished (rsync exit 24), accepted; last: %s", total, run))
}

// partial is the error of a run that ended with exit 23: the files rsync
// could not transfer, named (at most namedMax) and counted.
func (s *syncStep) partial(err error, rep rsyncReport) error {
	p := s.p
	names := "rsync named none on its output"
	if len(rep.FailedNames) > 0 {
		names = strings.Join(rep.FailedNames, "; ")
		if rep.Failed > len(rep.FailedNames) {
			names += fmt.Sprintf("; and %d more", rep.Failed-len(rep.FailedNames))
		}
	}
	msg := fmt.Sprintf("%s: rsync exit %d: %d files of %s were not synced from %s to %s: %s",
		p.Src, exitCode(err), rep.Failed, path.Join(p.Root, p.Folder), p.Src, p.Dst, text.OneLine(names, 100))
	return &hinted{msg: msg, err: err, hint: "fix them (on " + p.Src + " or " + p.Dst + "), then run boxswap resume", more: names}
}
