package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"boxswap/boxes"
)

var prodLines = texts([][2]string{
	{"server_name", "nbhosting.inria.fr"},
	{"ssl_certificate", "/etc/pki/tls/certs/nbhosting_inria_fr.crt"},
	{"ssl_certificate_key", "/etc/pki/tls/private/nbhosting.inria.fr.key"},
})

// texts makes settings of text values.
func texts(pairs [][2]string) boxes.Settings {
	out := boxes.Settings{}
	for _, kv := range pairs {
		out = append(out, boxes.Setting{Key: kv[0], Value: kv[1]})
	}
	return out
}

const devSettings = `# sitesettings.py
server_name = "nbhosting-dev.inria.fr"
ssl_certificate = '/etc/pki/tls/certs/nbhosting-dev_inria_fr.crt'
ssl_certificate_key="/etc/pki/tls/private/nbhosting-dev.inria.fr.key"
    server_name = "indented stays"
#server_name = "commented stays"
server_names = ["also stays"]
SECRET_KEY = 'k=v'
`

func TestSwitchLines(t *testing.T) {
	one := texts([][2]string{{"server_name", "new"}})
	for _, tc := range []struct {
		name, in string
		lines    boxes.Settings
		want     string
		changed  int
		err      string
	}{
		{"sitesettings", devSettings, prodLines, `# sitesettings.py
server_name = "nbhosting.inria.fr"
ssl_certificate = "/etc/pki/tls/certs/nbhosting_inria_fr.crt"
ssl_certificate_key = "/etc/pki/tls/private/nbhosting.inria.fr.key"
    server_name = "indented stays"
#server_name = "commented stays"
server_names = ["also stays"]
SECRET_KEY = 'k=v'
`, 3, ""},
		{"already switched", "server_name = \"new\"\n", one, "server_name = \"new\"\n", 0, ""},
		{"spaces before =", "server_name    =   'old'\n", one, "server_name = \"new\"\n", 1, ""},
		{"no space", "server_name='old'\n", one, "server_name = \"new\"\n", 1, ""},
		{"tab is not a space", "server_name\t= 'old'\n", one, "", 0, "no line `server_name =`"},
		{"comparison is not assignment", "server_name == 'x'\n", one, "", 0, "no line"},
		{"twice: both change", "server_name = 'a'\nx = 1\nserver_name = 'b'\n", one, "server_name = \"new\"\nx = 1\nserver_name = \"new\"\n", 2, ""},
		{"no final newline", "a = 1\nserver_name = 'old'", one, "a = 1\nserver_name = \"new\"", 1, ""},
		{"crlf kept", "a = 1\r\nserver_name = 'old'\r\nb = 2\r\n", one, "a = 1\r\nserver_name = \"new\"\r\nb = 2\r\n", 1, ""},
		{"quotes and backslashes", "server_name = 'x'\n", texts([][2]string{{"server_name", `a"b\c`}}), "server_name = \"a\\\"b\\\\c\"\n", 1, ""},
		{"newline in value", "server_name = 'x'\n", texts([][2]string{{"server_name", "a\nb"}}), "server_name = \"a\\nb\"\n", 1, ""},
		{"missing key", "x = 1\n", prodLines, "", 0, "no line `server_name =`, `ssl_certificate =`, `ssl_certificate_key =` in the settings file"},
		{"bad key", "x = 1\n", texts([][2]string{{"a b", "x"}}), "", 0, "not a Python name"},
		{"duplicate key", "x = 1\n", texts([][2]string{{"x", "1"}, {"x", "2"}}), "", 0, "given twice"},
		{"not utf-8", "x = 1\n", texts([][2]string{{"x", "\xff"}}), "", 0, "not valid UTF-8"},
		{"blank lines and empty file end", "\n\nserver_name = 1\n\n", one, "\n\nserver_name = \"new\"\n\n", 1, ""},
	} {
		got, changed, err := SwitchLines(tc.in, tc.lines)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want || changed != tc.changed {
			t.Errorf("%s: got %q, %d, %v\nwant %q, %d", tc.name, got, changed, err, tc.want, tc.changed)
		}
		if again, n, err := SwitchLines(got, tc.lines); err != nil || n != 0 || again != got {
			t.Errorf("%s: not idempotent: %d %v", tc.name, n, err)
		}
	}
}

func TestSettingsRealShell(t *testing.T) {
	ctx := context.Background()
	r := newShRunner(t)
	file := filepath.Join(t.TempDir(), "it's dir", "sitesettings.py")
	mustWrite(t, file, devSettings)
	if err := os.Chmod(file, 0o600); err != nil {
		t.Fatal(err)
	}
	te := newEnv(map[string]boxes.Runner{"thermals": r})
	marker := filepath.Join(r.dir, "reinstalled")
	lines := append(boxes.Settings{}, prodLines...)
	lines[0].Value = "$(touch pwned) `touch pwned2` '; rm -rf /tmp/x; \"\n%s%%"
	s := Settings("redirect/settings", "thermals", file, lines, "touch "+boxes.Quote(marker))

	if done, _, err := s.Check(ctx, te.Env); done || err != nil {
		t.Fatalf("check before: %v %v", done, err)
	}
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	want, _, _ := SwitchLines(devSettings, lines)
	if got := mustRead(t, file); got != want {
		t.Fatalf("file =\n%s\nwant\n%s", got, want)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600 kept", fi.Mode().Perm())
	}
	for _, p := range []string{"pwned", "pwned2"} {
		if exists(filepath.Join(r.dir, p)) {
			t.Fatal("a value ran in the shell")
		}
	}
	backup := file + ".boxswap-orig-redirect-settings"
	if got := mustRead(t, backup); got != devSettings {
		t.Fatalf("backup = %q", got)
	}
	if strings.Contains(te.out["thermals"].String(), "SECRET_KEY") {
		t.Error("the settings file went to the output")
	}
	if done, _, err := s.Check(ctx, te.Env); !done || err != nil {
		t.Fatalf("check after: %v %v", done, err)
	}
	// A second Apply (resume) must not take a backup of the switched file.
	mustWrite(t, file, devSettings+"# edited\n")
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, backup); got != devSettings {
		t.Fatalf("backup replaced on resume: %q", got)
	}
	if err := s.Undo(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, file); got != devSettings || !exists(marker) {
		t.Fatalf("undo: file %q, reinstall ran %v", got, exists(marker))
	}
	if exists(file + ".boxswap-new") {
		t.Error("temp file left")
	}
	// Undo again is harmless; a stale backup from an older cycle is
	// replaced by the next Apply.
	if err := s.Undo(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, backup, "stale\n")
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, backup); got != devSettings {
		t.Fatalf("stale backup kept: %q", got)
	}
}

func TestSettingsMissingKey(t *testing.T) {
	r := newShRunner(t)
	file := filepath.Join(t.TempDir(), "s.py")
	mustWrite(t, file, "x = 1\n")
	te := newEnv(map[string]boxes.Runner{"b": r})
	err := Settings("id", "b", file, prodLines, "").Apply(context.Background(), te.Env)
	if err == nil || !strings.Contains(err.Error(), "no line `server_name =`") || !strings.Contains(err.Error(), "app.settings_file") {
		t.Fatalf("err = %v", err)
	}
	if mustRead(t, file) != "x = 1\n" || exists(file+".boxswap-orig-id") {
		t.Fatal("file touched")
	}
}

func TestSettingsDescribe(t *testing.T) {
	d := Settings("redirect/settings", "thermals", "/root/nbhosting/django/nbh_main/sitesettings.py", prodLines, "cd /root/nbhosting && ./install.sh").Describe()
	f := "/root/nbhosting/django/nbh_main/sitesettings.py"
	replace := "t=$(readlink -f -- " + f + ") && [ -f \"$t\" ] || { echo '" + f + ": not a regular file, nor a link to one' >&2; exit 1; }; " +
		"n=\"$t.boxswap-new\" && rm -f -- \"$n\" && cp -p -- \"$t\" \"$n\" && "
	want := []string{
		"cat -- " + f,
		"cp -p -- " + f + " " + f + ".boxswap-orig-redirect-settings",
		replace + "printf '%s' <new content> > \"$n\" && mv -f -- \"$n\" \"$t\"",
	}
	if !equalStrings(d.Commands, want) {
		t.Errorf("commands:\n%q\nwant\n%q", d.Commands, want)
	}
	if !equalStrings(d.Undo, []string{replace + "cat -- " + f + ".boxswap-orig-redirect-settings > \"$n\" && mv -f -- \"$n\" \"$t\"", "cd /root/nbhosting && ./install.sh"}) {
		t.Errorf("undo = %q", d.Undo)
	}
}

// Issue 13, item 6: settings are typed, each written as its Python
// literal; a string Python reads back as it was, whatever it holds.
func TestSettingsTypedLiterals(t *testing.T) {
	in := "server_name = 'x'\nproduction_box = False\nworkers = 2\n"
	lines := boxes.Settings{{Key: "server_name", Value: "nbhosting.inria.fr"}, {Key: "production_box", Value: true}, {Key: "workers", Value: int64(-8)}}
	got, n, err := SwitchLines(in, lines)
	if want := "server_name = \"nbhosting.inria.fr\"\nproduction_box = True\nworkers = -8\n"; err != nil || got != want || n != 3 {
		t.Fatalf("got %q %d %v, want %q", got, n, err, want)
	}
	if _, _, err := SwitchLines(in, boxes.Settings{{Key: "workers", Value: 1.5}}); err == nil || !strings.Contains(err.Error(), "not text, true/false or a whole number") {
		t.Errorf("a float: %v", err)
	}
	d := Settings("redirect/settings/thermals", "thermals", "/s.py", lines, "").Describe()
	if !strings.Contains(d.Text, `set server_name = "nbhosting.inria.fr", production_box = True, workers = -8 in /s.py`) {
		t.Errorf("plan text %q", d.Text)
	}

	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 reads the literals back: %v", err)
	}
	values := append([]string{"", `\`, `\\"`, `"""`, "'''", "\x00\x01\x7f", "\r\n\t", "é ✓ 🎉", "\u2028\u2029\u0085", "{0} %s %(x)s", "\\N{BULLET}", "\\x41"}, hostile...)
	var src strings.Builder
	for i, v := range values {
		lit, err := PyLiteral(v)
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(lit, "\n\r") {
			t.Errorf("literal of %q is not one line: %s", v, lit)
		}
		fmt.Fprintf(&src, "v%d = %s\n", i, lit)
	}
	file := filepath.Join(t.TempDir(), "s.py")
	mustWrite(t, file, src.String())
	out, err := exec.Command(python, "-c", "import json, runpy, sys; g = runpy.run_path(sys.argv[1]); "+
		"print(json.dumps([g['v%d' % i] for i in range(int(sys.argv[2]))]))", file, strconv.Itoa(len(values))).Output()
	if err != nil {
		t.Fatalf("python3 could not read the literals: %v\n%s", err, src.String())
	}
	var back []string
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	for i, v := range values {
		if i >= len(back) || back[i] != v {
			t.Errorf("python read %q back as %q", v, back[min(i, len(back)-1)])
		}
	}
}

// Issue 13, item 6: a settings file that is a symbolic link (to a file in
// another folder) is edited in its target; the link stays a link, through
// Apply and Undo, and no temporary file is left on either side.
func TestSettingsSymlinkKeptRealShell(t *testing.T) {
	ctx := context.Background()
	r := newShRunner(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "etc", "sitesettings.py")
	mustWrite(t, target, devSettings)
	if err := os.Chmod(target, 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "nbhosting", "sitesettings.py")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../etc/sitesettings.py", link); err != nil {
		t.Fatal(err)
	}
	te := newEnv(map[string]boxes.Runner{"thermals": r})
	s := Settings("redirect/settings/thermals", "thermals", link, prodLines, "")
	isLink := func(when string) {
		t.Helper()
		if dest, err := os.Readlink(link); err != nil || dest != "../etc/sitesettings.py" {
			t.Fatalf("%s: the link is gone: %q %v", when, dest, err)
		}
		if fi, err := os.Lstat(target); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o640 {
			t.Fatalf("%s: target %v %v, want a regular file, mode 0640", when, fi, err)
		}
	}
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	isLink("after apply")
	if want, _, _ := SwitchLines(devSettings, prodLines); mustRead(t, target) != want {
		t.Fatalf("target =\n%s", mustRead(t, target))
	}
	if done, why, err := s.Check(ctx, te.Env); !done || err != nil {
		t.Fatalf("check after: %v %q %v", done, why, err)
	}
	if err := s.Undo(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	isLink("after undo")
	if mustRead(t, target) != devSettings {
		t.Fatalf("undo: target =\n%s", mustRead(t, target))
	}
	for _, p := range []string{target + ".boxswap-new", link + ".boxswap-new"} {
		if exists(p) {
			t.Errorf("%s left", p)
		}
	}
	// A link to nothing is refused, and nothing is created.
	dangling := filepath.Join(dir, "nbhosting", "dangling.py")
	if err := os.Symlink("../etc/missing.py", dangling); err != nil {
		t.Fatal(err)
	}
	err := Settings("x", "thermals", dangling, prodLines, "").Apply(ctx, te.Env)
	if err == nil || exists(filepath.Join(dir, "etc", "missing.py")) {
		t.Fatalf("dangling link: %v", err)
	}
}
