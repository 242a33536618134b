package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"boxswap/boxes"
)

// OSReleaseCommand prints a box's /etc/os-release; ParseOSRelease reads it.
const OSReleaseCommand = "cat /etc/os-release"

const osReleaseCmd = OSReleaseCommand

// ParseOSRelease reads an os-release file: KEY=value lines, values bare or
// in single or double quotes (with \\ \" \$ \` escapes in double quotes),
// comments and blank lines ignored. A line that is none of these is an
// error naming its number.
func ParseOSRelease(s string) (map[string]string, error) {
	m := map[string]string{}
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok || !isIdent(key) {
			return nil, fmt.Errorf("os-release line %d: not KEY=value: %q", i+1, clip(line))
		}
		v, err := unquoteShell(val)
		if err != nil {
			return nil, fmt.Errorf("os-release line %d: %s: %w", i+1, key, err)
		}
		m[key] = v
	}
	return m, nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// unquoteShell reads one os-release value: the restricted shell quoting
// the os-release format allows.
func unquoteShell(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	switch q := v[0]; q {
	case '\'':
		if len(v) < 2 || v[len(v)-1] != '\'' || strings.Contains(v[1:len(v)-1], "'") {
			return "", errors.New("bad single quotes")
		}
		return v[1 : len(v)-1], nil
	case '"':
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			c := v[i]
			switch {
			case c == '\\' && i+1 < len(v) && strings.IndexByte("\\\"$`", v[i+1]) >= 0:
				b.WriteByte(v[i+1])
				i++
			case c == '"':
				if i != len(v)-1 {
					return "", errors.New("text after the closing quote")
				}
				return b.String(), nil
			default:
				b.WriteByte(c)
			}
		}
		return "", errors.New("unterminated double quote")
	}
	if strings.ContainsAny(v, " \t\"'`$\\") {
		return "", errors.New("unquoted value with spaces or quotes")
	}
	return v, nil
}

// VersionID is VERSION_ID of an os-release file, as written ("29",
// "13"), or "" when the file has none or cannot be read as one.
func VersionID(osRelease string) string {
	m, err := ParseOSRelease(osRelease)
	if err != nil {
		return ""
	}
	return m["VERSION_ID"]
}

// releaseOf returns VERSION_ID as a release number, and NAME ("Fedora",
// "Debian GNU/Linux"; "release" when absent) for messages.
func releaseOf(osRelease string) (int, string, error) {
	m, err := ParseOSRelease(osRelease)
	if err != nil {
		return 0, "", err
	}
	v, ok := m["VERSION_ID"]
	if !ok {
		return 0, "", errors.New("no VERSION_ID in /etc/os-release")
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, "", fmt.Errorf("VERSION_ID %q in /etc/os-release is not a release number", clip(v))
	}
	name := m["NAME"]
	if name == "" || strings.ContainsFunc(name, unicode.IsControl) {
		name = "release"
	}
	return n, clip(name), nil
}

// ReadRelease returns the release a box runs (VERSION_ID of its
// /etc/os-release), for where and status.
func ReadRelease(ctx context.Context, r boxes.Runner) (int, error) {
	var out, errb bytes.Buffer
	exit, err := r.Run(ctx, osReleaseCmd, &limitWriter{b: &out}, &limitWriter{b: &errb})
	if err != nil {
		return 0, fmt.Errorf("reading /etc/os-release: %w", err)
	}
	if exit != 0 {
		return 0, fmt.Errorf("reading /etc/os-release: exit %d: %s", exit, clip(lastLine(tailOf(errb.String(), 1))))
	}
	n, _, err := releaseOf(out.String())
	return n, err
}

// limitWriter keeps the first maxStdout bytes.
type limitWriter struct{ b *bytes.Buffer }

func (w *limitWriter) Write(p []byte) (int, error) {
	if room := maxStdout - w.b.Len(); room > 0 {
		w.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

type osReleaseStep struct {
	base
	box  string
	want int
	also []int // other releases accepted
}

// OSRelease checks that box runs release want (VERSION_ID of
// /etc/os-release); label names it for the operator ("Fedora 29",
// "trixie (release 13)"). It changes nothing.
func OSRelease(id, box string, want int, label string) Step {
	return &osReleaseStep{box: box, want: want, base: base{id: id, desc: Description{
		Box: box, Text: fmt.Sprintf("check that %s runs %s", box, label),
		Commands: []string{osReleaseCmd}, Retry: true,
	}}}
}

// Release is the preflight's "release as declared": OSRelease.
func Release(id, box string, want int, label string) Step { return OSRelease(id, box, want, label) }

// ReleaseIn is OSRelease accepting any of releases (the first is the one
// messages expect): the box to upgrade may already be on the target.
func ReleaseIn(id, box string, releases []int, label string) Step {
	s := OSRelease(id, box, releases[0], label).(*osReleaseStep)
	s.also = append([]int(nil), releases[1:]...)
	return s
}

func (s *osReleaseStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	res, err := run(ctx, env, s.box, "reading /etc/os-release", osReleaseCmd, false)
	if err != nil {
		return false, "", err
	}
	got, name, err := releaseOf(res.Stdout)
	if err != nil {
		return false, "", fmt.Errorf("%s: %w", s.box, err)
	}
	return got == s.want || slices.Contains(s.also, got), fmt.Sprintf("%s runs %s %d", s.box, name, got), nil
}

func (s *osReleaseStep) Apply(ctx context.Context, env *Env) error {
	done, why, err := s.Check(ctx, env)
	if err != nil || done {
		return err
	}
	return fmt.Errorf("%s, expected %d: %w; if this follows an upgrade, look at its log on %s (dnf system-upgrade log, /var/log/apt/term.log); otherwise fix upgrade.from in boxes.yaml; then run boxswap resume",
		why, s.want, ErrPrecondition, s.box)
}

func (s *osReleaseStep) Undo(context.Context, *Env) error { return nil }
