package steps

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"boxswap/boxes"
)

var prodLines = [][2]string{
	{"server_name", "nbhosting.inria.fr"},
	{"ssl_certificate", "/etc/pki/tls/certs/nbhosting_inria_fr.crt"},
	{"ssl_certificate_key", "/etc/pki/tls/private/nbhosting.inria.fr.key"},
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
	one := [][2]string{{"server_name", "new"}}
	for _, tc := range []struct {
		name, in string
		lines    [][2]string
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
		{"quotes and backslashes", "server_name = 'x'\n", [][2]string{{"server_name", `a"b\c`}}, "server_name = \"a\\\"b\\\\c\"\n", 1, ""},
		{"newline in value", "server_name = 'x'\n", [][2]string{{"server_name", "a\nb"}}, "server_name = \"a\\nb\"\n", 1, ""},
		{"missing key", "x = 1\n", prodLines, "", 0, "no line `server_name =`, `ssl_certificate =`, `ssl_certificate_key =` in the settings file"},
		{"bad key", "x = 1\n", [][2]string{{"a b", "x"}}, "", 0, "not a Python name"},
		{"duplicate key", "x = 1\n", [][2]string{{"x", "1"}, {"x", "2"}}, "", 0, "given twice"},
		{"not utf-8", "x = 1\n", [][2]string{{"x", "\xff"}}, "", 0, "not valid UTF-8"},
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
	lines := append([][2]string{}, prodLines...)
	lines[0][1] = "$(touch pwned) `touch pwned2` '; rm -rf /tmp/x; \"\n%s%%"
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
	want := []string{
		"cat -- " + f,
		"cp -p -- " + f + " " + f + ".boxswap-orig-redirect-settings",
		"rm -f -- " + f + ".boxswap-new && cp -p -- " + f + " " + f + ".boxswap-new && printf '%s' <new content> > " + f + ".boxswap-new && mv -f -- " + f + ".boxswap-new " + f,
	}
	if !equalStrings(d.Commands, want) {
		t.Errorf("commands:\n%q\nwant\n%q", d.Commands, want)
	}
	if !equalStrings(d.Undo, []string{"cp -p -- " + f + ".boxswap-orig-redirect-settings " + f, "cd /root/nbhosting && ./install.sh"}) {
		t.Errorf("undo = %q", d.Undo)
	}
}
