package steps

import (
	"strings"
	"testing"
)

// FuzzParsePythonVersion: the answer of python3 --version on a box is
// remote output; a version is only ever digits.digits.
func FuzzParsePythonVersion(f *testing.F) {
	for _, s := range []string{"Python 3.6.8", "Python 3.7.2\n", "Python 3", "Python 3.x.1", "python 3.6", "Python\t10.12.0rc1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parsePythonVersion(s)
		if err != nil {
			return
		}
		major, minor, ok := strings.Cut(v, ".")
		if !ok || !digits(major) || !digits(minor) {
			t.Fatalf("version %q from %q", v, s)
		}
	})
}

// FuzzPinnedPackages: pip3 freeze is remote output whose lines go back to
// the box as pip3 install arguments; each kept line must be name==version
// of plain words that cannot be read as an option.
func FuzzPinnedPackages(f *testing.F) {
	for _, s := range []string{"Django==1.11.9\nrequests==2.18.4\n", "-e git+https://x#egg=y\n# comment\n", "a==b==c\n--index-url==x\n", "x ==1\n\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range pinnedPackages(s) {
			name, ver, ok := strings.Cut(p, "==")
			if !ok || !pkgWord(name) || !pkgWord(ver) || strings.HasPrefix(p, "-") || strings.ContainsAny(p, " \t\n\r;$`'\"\\") {
				t.Fatalf("kept %q from %q", p, s)
			}
		}
		if cmd := pipReinstallScript(PipParams{}, quoteAll(pinnedPackages(s)), ""); !strings.HasPrefix(cmd, "for p in ") {
			t.Fatalf("command %q", cmd)
		}
	})
}

// FuzzPipOwnPackages: pip's json list is remote output; what the snapshot
// keeps of it is only name==version lines the reinstall takes as they are.
func FuzzPipOwnPackages(f *testing.F) {
	for _, s := range []string{pipListDebian, `[{"name": "a\nb==1", "version": "1", "location": "/usr/local/x"}]`, `[{"name": "-e", "version": "1"}]`, "[]", "x\n[{}]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		own, err := pipOwnPackages(s)
		if err != nil {
			return
		}
		lines := strings.Split(strings.TrimSuffix(own, "\n"), "\n")
		if own == "" {
			lines = nil
		}
		if kept := pinnedPackages(own); len(kept) != len(lines) {
			t.Fatalf("snapshot %q of %q: reinstall keeps only %q", own, s, kept)
		}
	})
}
