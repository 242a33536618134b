package steps

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"boxswap/boxes"
)

// maxSettingsFile bounds the file Settings rewrites: it travels as one
// argument of the remote command line, which Linux caps at 128 KiB.
const maxSettingsFile = 100 << 10

// SwitchLines sets each key of lines to its value in a Python settings
// file: every line that starts with the key, then spaces, then '=' becomes
// `key = LITERAL`, the value's Python literal (PyLiteral). Every other byte
// stays as it was (line endings, CRLF, a missing final newline). changed
// counts the lines whose text changed. A key without a line is an error:
// the file is not the one expected.
func SwitchLines(content string, lines boxes.Settings) (string, int, error) {
	want := make(map[string]string, len(lines))
	for _, kv := range lines {
		if !isIdent(kv.Key) {
			return "", 0, fmt.Errorf("settings key %q is not a Python name", clip(kv.Key))
		}
		if _, dup := want[kv.Key]; dup {
			return "", 0, fmt.Errorf("settings key %s given twice", kv.Key)
		}
		line, err := settingLine(kv)
		if err != nil {
			return "", 0, fmt.Errorf("settings key %s: %w", kv.Key, err)
		}
		want[kv.Key] = line
	}
	found := make(map[string]bool, len(want))
	var b strings.Builder
	b.Grow(len(content) + 64)
	changed := 0
	for rest := content; rest != ""; {
		line, end := rest, ""
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			line, end, rest = rest[:i], "\n", rest[i+1:]
		} else {
			rest = ""
		}
		if strings.HasSuffix(line, "\r") {
			line, end = line[:len(line)-1], "\r"+end
		}
		if key := settingKey(line); key != "" {
			if nl, ok := want[key]; ok {
				found[key] = true
				if nl != line {
					changed++
					line = nl
				}
			}
		}
		b.WriteString(line)
		b.WriteString(end)
	}
	var missing []string
	for _, kv := range lines {
		if !found[kv.Key] {
			missing = append(missing, kv.Key)
		}
	}
	if len(missing) > 0 {
		return "", 0, fmt.Errorf("no line `%s =` in the settings file", strings.Join(missing, " =`, `"))
	}
	return b.String(), changed, nil
}

// settingLine is the line that sets kv: `key = LITERAL`.
func settingLine(kv boxes.Setting) (string, error) {
	lit, err := PyLiteral(kv.Value)
	return kv.Key + " = " + lit, err
}

// settingKey returns the name a line assigns when it matches ^name *=,
// else "".
func settingKey(line string) string {
	i := 0
	for i < len(line) && (line[i] == '_' || line[i] >= 'A' && line[i] <= 'Z' || line[i] >= 'a' && line[i] <= 'z' || i > 0 && line[i] >= '0' && line[i] <= '9') {
		i++
	}
	if i == 0 {
		return ""
	}
	j := i
	for j < len(line) && line[j] == ' ' {
		j++
	}
	if j < len(line) && line[j] == '=' && (j+1 == len(line) || line[j+1] != '=') {
		return line[:i]
	}
	return ""
}

// PyLiteral returns v as a Python literal: a string double-quoted (see
// pyString), a bool True or False, an int64 in decimal. Other types are
// refused (boxes.Setting holds only these).
func PyLiteral(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return pyString(v)
	case bool:
		if v {
			return "True", nil
		}
		return "False", nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	}
	return "", fmt.Errorf("value of type %T is not text, true/false or a whole number", v)
}

// pyString returns s as a double-quoted Python string literal: backslash,
// quote and every control character escaped, so the literal is one line
// whatever s holds.
func pyString(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("value is not valid UTF-8")
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '\\' || r == '"':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

type settingsStep struct {
	base
	box, file, backup string
	lines             boxes.Settings
	reinstall         string
}

// Settings switches the given lines of file on box to their values (see
// SwitchLines). Before the first change of this cycle it copies file to a
// backup named after the step (a backup left by an older cycle is
// replaced, so Undo never restores stale settings). A file that is a
// symbolic link is edited in its target, and stays a link. Undo restores
// the backup, then runs reinstall (operator shell, as given) when set.
func Settings(id, box, file string, lines boxes.Settings, reinstall string) Step {
	s := &settingsStep{box: box, file: file, lines: append(boxes.Settings(nil), lines...), reinstall: reinstall,
		backup: file + ".boxswap-orig-" + slug(id)}
	keys := make([]string, len(lines))
	for i, kv := range lines {
		line, err := settingLine(kv)
		if err != nil {
			line = kv.Key + " = <" + err.Error() + ">"
		}
		keys[i] = line
	}
	s.base = base{id: id, desc: Description{
		Box:   box,
		Text:  fmt.Sprintf("set %s in %s on %s (backup in %s)", strings.Join(keys, ", "), file, box, s.backup),
		Retry: true,
		Commands: []string{
			s.readCmd(),
			s.backupCmd(),
			s.writeCmd("<new content>"),
		},
		Undo: []string{s.restoreCmd()},
	}}
	if reinstall != "" {
		s.desc.Undo = append(s.desc.Undo, reinstall)
	}
	return s
}

// slug makes a step ID usable in a file name.
func slug(id string) string {
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	return strings.TrimLeft(string(b), ".-")
}

func (s *settingsStep) readCmd() string   { return "cat -- " + quote(s.file) }
func (s *settingsStep) backupCmd() string { return "cp -p -- " + quote(s.file) + " " + quote(s.backup) }

// replaceCmd replaces the settings file atomically with what fill writes
// into "$n", keeping its mode and owner (it holds secrets): a copy of the
// file is filled, then renamed over it. A symbolic link is followed to its
// target, which is replaced the same way beside it: the link stays.
func (s *settingsStep) replaceCmd(fill string) string {
	return "t=$(readlink -f -- " + quote(s.file) + ") && [ -f \"$t\" ] || { echo " +
		quote(s.file+": not a regular file, nor a link to one") + " >&2; exit 1; }; " +
		"n=\"$t.boxswap-new\" && rm -f -- \"$n\" && cp -p -- \"$t\" \"$n\" && " + fill + " && mv -f -- \"$n\" \"$t\""
}

func (s *settingsStep) restoreCmd() string {
	return s.replaceCmd("cat -- " + quote(s.backup) + " > \"$n\"")
}

// writeCmd writes quotedContent (one shell word) over the file.
func (s *settingsStep) writeCmd(quotedContent string) string {
	return s.replaceCmd("printf '%s' " + quotedContent + " > \"$n\"")
}

func (s *settingsStep) factKey() string { return s.box + "/settings-backup/" + s.id }

// wanted reads the file and returns it switched.
func (s *settingsStep) wanted(ctx context.Context, env *Env) (string, int, error) {
	res, err := run(ctx, env, s.box, "reading "+s.file, s.readCmd(), true)
	if err != nil {
		return "", 0, err
	}
	out, changed, err := SwitchLines(res.Stdout, s.lines)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %s: %w: check app.settings_file", s.box, s.file, err)
	}
	return out, changed, nil
}

func (s *settingsStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	_, changed, err := s.wanted(ctx, env)
	if err != nil {
		return false, "", err
	}
	if changed == 0 {
		return true, s.file + " already has the wanted values", nil
	}
	return false, fmt.Sprintf("%d lines of %s to switch", changed, s.file), nil
}

func (s *settingsStep) Apply(ctx context.Context, env *Env) error {
	f, err := facts(env)
	if err != nil {
		return err
	}
	content, changed, err := s.wanted(ctx, env)
	if err != nil || changed == 0 {
		return err
	}
	if strings.IndexByte(content, 0) >= 0 || len(content) > maxSettingsFile {
		return fmt.Errorf("%s: %s is binary or larger than %d bytes: switch its lines by hand", s.box, s.file, maxSettingsFile)
	}
	if _, ok := f.Get(s.factKey()); !ok {
		if _, err := stream(ctx, env, s.box, "backing up "+s.file, s.backupCmd(), false); err != nil {
			return err
		}
		if err := f.Set(s.factKey(), s.backup); err != nil {
			return fmt.Errorf("%s: recording the backup: %w", s.box, err)
		}
	}
	_, err = stream(ctx, env, s.box, "writing "+s.file, s.writeCmd(quote(content)), false)
	return err
}

func (s *settingsStep) Undo(ctx context.Context, env *Env) error {
	f, err := facts(env)
	if err != nil {
		return err
	}
	if _, ok := f.Get(s.factKey()); !ok {
		return nil // no backup made: the file was never changed
	}
	if _, err := stream(ctx, env, s.box, "restoring "+s.file+" from its backup", s.restoreCmd(), false); err != nil {
		return err
	}
	if s.reinstall != "" {
		if _, err := stream(ctx, env, s.box, "re-running the install command", s.reinstall, false); err != nil {
			return err
		}
	}
	return f.Delete(s.factKey())
}
