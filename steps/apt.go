package steps

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
)

// The apt method (Debian, Ubuntu): point the sources at the new suite,
// update, full-upgrade, then the common reboot. Each builder below is a
// pure function of its values, which reach the shell through quote.

const (
	// DefaultAptRoot is where apt reads its sources.
	DefaultAptRoot = "/etc/apt"
	aptUpdateCmd   = "apt-get update"
	// aptConfOpts keep the box's changed configuration files, unasked.
	aptConfOpts = "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
	// dpkgConfigureCmd finishes a package transaction an interruption left
	// half done; apt-get refuses to run until it is. A no-op otherwise.
	dpkgConfigureCmd = "DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold --configure -a"
	aptUpgradeCmd    = "DEBIAN_FRONTEND=noninteractive apt-get -y " + aptConfOpts + " full-upgrade"
	// aptSimulateCmd prints what a full-upgrade would still do, changing
	// nothing (no lock taken).
	aptSimulateCmd = "apt-get -s -o Debug::NoLocking=1 full-upgrade"
)

// AptSourcesParams says which suite the apt sources move from and to.
type AptSourcesParams struct {
	Root     string   // apt's folder; DefaultAptRoot when empty
	From, To string   // suite names: bookworm, trixie
	Keep     []string // third-party source files left enabled: nodesource.sources
}

func (p AptSourcesParams) root() string {
	if p.Root == "" {
		return DefaultAptRoot
	}
	return p.Root
}

// tag names this upgrade in the files the step leaves, so an Undo never
// touches what another cycle left.
func (p AptSourcesParams) tag() string { return p.From + "-" + p.To }

// BackupSuffix and DisabledSuffix end the names of the files AptSources
// leaves beside the sources: the original of each rewritten file, and each
// third-party file it disabled. apt ignores both endings silently
// (Dir::Ignore-Files-Silently: \.bak$, \.disabled$).
func (p AptSourcesParams) BackupSuffix() string   { return ".boxswap-orig-" + p.tag() + ".bak" }
func (p AptSourcesParams) DisabledSuffix() string { return ".boxswap-off-" + p.tag() + ".disabled" }

// Regular expressions (POSIX ERE, for grep -E and sed -E) of the active
// entries that name a suite: in one-line .list files the third field
// (after deb or deb-src and an optional [options] block), in deb822
// .sources files a word of the Suites: field. A suite word is the suite
// itself or the suite with -updates, -security, -backports...: whole words
// only, never a part of a URI.
const (
	listEntry    = `^[[:space:]]*deb(-src)?[[:space:]]`
	listPrefix   = listEntry + `+(\[[^]]*\][[:space:]]+)?[^[:space:]]+[[:space:]]+` // 2 groups
	deb822Entry  = `^[Tt][Yy][Pp][Ee][Ss]:`
	deb822Prefix = `^[Ss][Uu][Ii][Tt][Ee][Ss]:(.*[[:space:]])?` // 1 group
	suiteTail    = `(-[a-z]+)*([[:space:]]|$)`
)

// suiteRE matches an entry naming word after prefix.
func suiteRE(prefix, word string) string { return prefix + word + suiteTail }

// suiteEdit is the sed substitution that renames one suite word from→to
// after prefix, which holds groups groups. Run in a loop (sed -e :a -e
// EDIT -e ta) it renames every one on the line.
func suiteEdit(prefix string, groups int, from, to string) string {
	return fmt.Sprintf(`s/(%s)%s(%s)/\1%s\%d/`, prefix, from, suiteTail, to, groups+2)
}

// aptSourcesLoop runs body for each apt source file under the root, with
// $from, $to and $any set to the ERE of an entry naming the from-suite, the
// to-suite and any entry at all, and $edit to the substitution from→to,
// in the file's format.
func aptSourcesLoop(p AptSourcesParams, body string) string {
	list := fmt.Sprintf("from=%s to=%s any=%s edit=%s",
		quote(suiteRE(listPrefix, p.From)), quote(suiteRE(listPrefix, p.To)), quote(listEntry), quote(suiteEdit(listPrefix, 2, p.From, p.To)))
	deb822 := fmt.Sprintf("from=%s to=%s any=%s edit=%s",
		quote(suiteRE(deb822Prefix, p.From)), quote(suiteRE(deb822Prefix, p.To)), quote(deb822Entry), quote(suiteEdit(deb822Prefix, 1, p.From, p.To)))
	return "set -e; cd -- " + quote(p.root()) +
		"; for f in sources.list sources.list.d/*.list sources.list.d/*.sources; do [ -f \"$f\" ] || continue; case $f in *.sources) " +
		deb822 + ";; *) " + list + ";; esac; " + body + "; done"
}

// aptSourcesCmd rewrites the from-suite words of every source to the
// to-suite, after copying the file to FILE+BackupSuffix (once: a repeated
// run keeps the first, original copy), and renames each third-party source
// (entries, but naming neither suite) to FILE+DisabledSuffix unless it is
// in p.Keep. It prints one line per file it changes.
func aptSourcesCmd(p AptSourcesParams) string {
	b, d := quote(p.BackupSuffix()), quote(p.DisabledSuffix())
	keep := quote(" " + strings.Join(p.Keep, " ") + " ")
	return aptSourcesLoop(p, "if grep -Eq -- \"$from\" \"$f\"; then "+
		"if [ ! -e \"$f\""+b+" ]; then cp -p -- \"$f\" \"$f\".boxswap-tmp; mv -f -- \"$f\".boxswap-tmp \"$f\""+b+"; fi; "+
		"sed -E -i -e :a -e \"$edit\" -e ta -- \"$f\"; echo \"rewritten: $f\"; "+
		"elif grep -Eq -- \"$to\" \"$f\"; then :; "+
		"elif grep -Eq -- \"$any\" \"$f\"; then case "+keep+" in *\" ${f##*/} \"*) echo \"kept: $f\";; "+
		"*) mv -f -- \"$f\" \"$f\""+d+"; echo \"disabled: $f\";; esac; fi")
}

// aptSourcesCheckCmd prints, for each source with entries, which of from
// and to it names (other when neither), a tab and its path. It changes
// nothing.
func aptSourcesCheckCmd(p AptSourcesParams) string {
	return aptSourcesLoop(p, "c=; if grep -Eq -- \"$from\" \"$f\"; then c=\"$c from\"; fi; "+
		"if grep -Eq -- \"$to\" \"$f\"; then c=\"$c to\"; fi; "+
		"if [ -z \"$c\" ] && grep -Eq -- \"$any\" \"$f\"; then c=\" other\"; fi; "+
		"if [ -n \"$c\" ]; then printf '%s\\t%s\\n' \"$c\" \"$f\"; fi")
}

// aptSourcesUndoCmd puts back each backup and re-enables each source this
// upgrade disabled.
func aptSourcesUndoCmd(p AptSourcesParams) string {
	var b strings.Builder
	b.WriteString("set -e; cd -- " + quote(p.root()))
	for _, s := range []string{p.BackupSuffix(), p.DisabledSuffix()} {
		fmt.Fprintf(&b, "; s=%s; for f in *\"$s\" sources.list.d/*\"$s\"; do [ -e \"$f\" ] || continue; mv -f -- \"$f\" \"${f%%\"$s\"}\"; echo \"restored: ${f%%\"$s\"}\"; done", quote(s))
	}
	return b.String()
}

// sourceFile is one line of aptSourcesCheckCmd's answer.
type sourceFile struct {
	path            string
	from, to, other bool
}

// parseSourceFiles reads the "CLASSES<tab>PATH" lines of
// aptSourcesCheckCmd, CLASSES being from, to, "from to" or other.
func parseSourceFiles(out string) ([]sourceFile, error) {
	var files []sourceFile
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		classes, p, ok := strings.Cut(line, "\t")
		if !ok || p == "" {
			return nil, fmt.Errorf("unexpected line %q", clip(line))
		}
		f := sourceFile{path: p}
		for _, c := range strings.Fields(classes) {
			switch c {
			case "from":
				f.from = true
			case "to":
				f.to = true
			case "other":
				f.other = true
			default:
				return nil, fmt.Errorf("unexpected line %q", clip(line))
			}
		}
		files = append(files, f)
	}
	return files, nil
}

type aptSourcesStep struct {
	base
	box string
	p   AptSourcesParams
}

// AptSources points box's apt sources from suite p.From to p.To (see
// aptSourcesCmd). Check is done when no source names a from-suite word and
// at least one names the to-suite. Undo restores the rewritten files from
// their backups, re-enables the disabled ones, and runs apt-get update so
// the package lists match the sources again.
func AptSources(id, box string, p AptSourcesParams) Step {
	p.Keep = append([]string(nil), p.Keep...)
	text := fmt.Sprintf("point the apt sources of %s from %s to %s (each %s and %s-* suite word in %s; each rewritten FILE kept as FILE%s); "+
		"disable the third-party sources (naming no %s suite) as FILE%s",
		box, p.From, p.To, p.From, p.From, p.root(), p.BackupSuffix(), p.From, p.DisabledSuffix())
	if len(p.Keep) > 0 {
		text += " except " + strings.Join(p.Keep, ", ")
	}
	return &aptSourcesStep{box: box, p: p, base: base{id: id, desc: Description{
		Box: box, Text: text, Retry: true,
		Commands: []string{aptSourcesCmd(p)},
		Undo:     []string{aptSourcesUndoCmd(p), aptUpdateCmd},
	}}}
}

// valid guards the sed loop: the suites are plain words (boxes.yaml
// checks them), and distinct, or the loop would not end.
func (s *aptSourcesStep) valid() error {
	for _, w := range []string{s.p.From, s.p.To} {
		if w == "" || strings.Trim(w, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
			return fmt.Errorf("%s: apt suite %q is not a plain lowercase word (internal error)", s.box, clip(w))
		}
	}
	if s.p.From == s.p.To {
		return fmt.Errorf("%s: apt suites from and to are both %s (internal error)", s.box, s.p.From)
	}
	return nil
}

func (s *aptSourcesStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	if err := s.valid(); err != nil {
		return false, "", err
	}
	res, err := run(ctx, env, s.box, "listing the apt sources", aptSourcesCheckCmd(s.p), false)
	if err != nil {
		return false, "", err
	}
	files, err := parseSourceFiles(res.Stdout)
	if err != nil {
		return false, "", fmt.Errorf("%s: listing the apt sources: %w", s.box, err)
	}
	var from, to, off, kept []string
	for _, f := range files {
		switch {
		case f.from:
			from = append(from, f.path)
		case f.other && slices.Contains(s.p.Keep, path.Base(f.path)):
			kept = append(kept, f.path)
		case f.other:
			off = append(off, f.path)
		}
		if f.to {
			to = append(to, f.path)
		}
	}
	done := len(from) == 0 && len(to) > 0
	var why []string
	switch {
	case done:
		why = append(why, fmt.Sprintf("the sources name %s (%s), none %s", s.p.To, strings.Join(to, ", "), s.p.From))
	case len(from) > 0:
		why = append(why, fmt.Sprintf("%s named in %s", s.p.From, strings.Join(from, ", ")))
	default:
		why = append(why, fmt.Sprintf("no source names %s or %s", s.p.From, s.p.To))
	}
	if len(off) > 0 {
		label := "third-party, to be disabled: "
		if done {
			label = "third-party, still enabled: "
		}
		why = append(why, label+strings.Join(off, ", "))
	}
	if len(kept) > 0 {
		why = append(why, "third-party, kept: "+strings.Join(kept, ", "))
	}
	return done, strings.Join(why, "; "), nil
}

func (s *aptSourcesStep) Apply(ctx context.Context, env *Env) error {
	if err := s.valid(); err != nil {
		return err
	}
	if _, err := stream(ctx, env, s.box, "rewriting the apt sources", aptSourcesCmd(s.p), false); err != nil {
		return err
	}
	done, why, err := s.Check(ctx, env)
	if err != nil || done {
		return err
	}
	return fmt.Errorf("%s: the apt sources do not name %s after the rewrite (%s): %w; edit them by hand",
		s.box, s.p.To, why, ErrPrecondition)
}

func (s *aptSourcesStep) Undo(ctx context.Context, env *Env) error {
	if _, err := stream(ctx, env, s.box, "restoring the apt sources", aptSourcesUndoCmd(s.p), false); err != nil {
		return err
	}
	_, err := stream(ctx, env, s.box, "refreshing the package lists", aptUpdateCmd, false)
	return err
}

// AptUpdate refreshes box's package lists (safe to repeat); done once it
// ran in this cycle (fact BOX/apt-updated) or the box already runs
// release to. No undo.
func AptUpdate(id, box string, to int) Step {
	return &cmdStep{box: box, cmd: aptUpdateCmd, label: "refreshing the package lists", remember: true, onRelease: to, base: base{id: id, desc: Description{
		Box: box, Text: "refresh the package lists of " + box,
		Commands: []string{aptUpdateCmd}, Retry: true,
	}}}
}

// AptUpgradeCmd is the full-upgrade with the operator's extra options
// (upgrade.options), each quoted.
func AptUpgradeCmd(options []string) string {
	if len(options) == 0 {
		return aptUpgradeCmd
	}
	return aptUpgradeCmd + " " + quoteAll(options)
}

// AptUpgrade upgrades every package of box to the new release (to, named
// into), keeping the box's changed configuration files, with options
// added. It runs detached (a transient unit; see detached) and checks the
// package database before and after, recovering an interrupted
// transaction (dpkg --configure -a, apt-get -f install) before running
// again. Done when its run exited 0 with a healthy database, or when the
// box runs release to with nothing left to upgrade (done by hand). Its
// undo is nothing: the release's packages stay.
func AptUpgrade(id, box string, to int, into string, options []string) Step {
	d := detached{box: box, unit: UnitName(id), label: "apt-get full-upgrade", cmd: AptUpgradeCmd(options)}
	s := &txStep{box: box, pm: Dpkg, d: d,
		base: base{id: id, desc: Description{
			Box: box, Text: "upgrade the packages of " + box + " to " + into + " as unit " + UnitName(id) +
				" (re-attached after a lost link; an interrupted transaction is recovered first; undo does nothing: the packages stay)",
			Commands: []string{Dpkg.Health, d.shown(), Dpkg.Recover}, Retry: true,
		}}}
	s.already = func(ctx context.Context, env *Env) (bool, string, error) {
		on, why, err := releaseAtLeast(ctx, env, box, to)
		if err != nil || !on {
			return false, why, err
		}
		res, err := run(ctx, env, box, "simulating apt-get full-upgrade", aptSimulateCmd, false)
		if err != nil {
			return false, "", err
		}
		left := aptLeft(res.Stdout)
		if left == "" {
			return true, why + "; nothing left to upgrade (done by hand?)", nil
		}
		return false, why + "; " + left, nil
	}
	return s
}

// aptLeft reads apt-get -s's summary line ("3 upgraded, 1 newly
// installed, 0 to remove and 0 not upgraded."): "" when it would change
// nothing, else the line.
func aptLeft(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, " upgraded, ") && strings.Contains(line, " newly installed") {
			if strings.HasPrefix(line, "0 upgraded, 0 newly installed, 0 to remove") {
				return ""
			}
			return strings.TrimSpace(line)
		}
	}
	return "apt-get -s full-upgrade printed no summary"
}
