package steps

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"boxswap/boxes"
)

// The exact command lines each apt step sends.
func TestAptCommandLines(t *testing.T) {
	p := AptSourcesParams{From: "bookworm", To: "trixie", Keep: []string{"nodesource.sources"}}
	const (
		prologue = `set -e; cd -- /etc/apt; for f in sources.list sources.list.d/*.list sources.list.d/*.sources; do [ -f "$f" ] || continue; case $f in ` +
			`*.sources) from='^[Ss][Uu][Ii][Tt][Ee][Ss]:(.*[[:space:]])?bookworm(-[a-z]+)*([[:space:]]|$)' to='^[Ss][Uu][Ii][Tt][Ee][Ss]:(.*[[:space:]])?trixie(-[a-z]+)*([[:space:]]|$)' ` +
			`any='^[Tt][Yy][Pp][Ee][Ss]:' edit='s/(^[Ss][Uu][Ii][Tt][Ee][Ss]:(.*[[:space:]])?)bookworm((-[a-z]+)*([[:space:]]|$))/\1trixie\3/';; ` +
			`*) from='^[[:space:]]*deb(-src)?[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+[[:space:]]+bookworm(-[a-z]+)*([[:space:]]|$)' to='^[[:space:]]*deb(-src)?[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+[[:space:]]+trixie(-[a-z]+)*([[:space:]]|$)' ` +
			`any='^[[:space:]]*deb(-src)?[[:space:]]' edit='s/(^[[:space:]]*deb(-src)?[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+[[:space:]]+)bookworm((-[a-z]+)*([[:space:]]|$))/\1trixie\4/';; esac; `
	)
	for _, tc := range []struct{ name, got, want string }{
		{"sources", aptSourcesCmd(p), prologue +
			`if grep -Eq -- "$from" "$f"; then if [ ! -e "$f".boxswap-orig-bookworm-trixie.bak ]; then cp -p -- "$f" "$f".boxswap-tmp; mv -f -- "$f".boxswap-tmp "$f".boxswap-orig-bookworm-trixie.bak; fi; ` +
			`sed -E -i -e :a -e "$edit" -e ta -- "$f"; echo "rewritten: $f"; elif grep -Eq -- "$to" "$f"; then :; ` +
			`elif grep -Eq -- "$any" "$f"; then case ' nodesource.sources ' in *" ${f##*/} "*) echo "kept: $f";; *) mv -f -- "$f" "$f".boxswap-off-bookworm-trixie.disabled; echo "disabled: $f";; esac; fi; done`},
		{"check", aptSourcesCheckCmd(p), prologue +
			`c=; if grep -Eq -- "$from" "$f"; then c="$c from"; fi; if grep -Eq -- "$to" "$f"; then c="$c to"; fi; ` +
			`if [ -z "$c" ] && grep -Eq -- "$any" "$f"; then c=" other"; fi; if [ -n "$c" ]; then printf '%s\t%s\n' "$c" "$f"; fi; done`},
		{"undo", aptSourcesUndoCmd(p), `set -e; cd -- /etc/apt; ` +
			`s=.boxswap-orig-bookworm-trixie.bak; for f in *"$s" sources.list.d/*"$s"; do [ -e "$f" ] || continue; mv -f -- "$f" "${f%"$s"}"; echo "restored: ${f%"$s"}"; done; ` +
			`s=.boxswap-off-bookworm-trixie.disabled; for f in *"$s" sources.list.d/*"$s"; do [ -e "$f" ] || continue; mv -f -- "$f" "${f%"$s"}"; echo "restored: ${f%"$s"}"; done`},
		{"update", AptUpdate("i", "b", 13).Describe().Commands[0], "apt-get update"},
		{"upgrade", AptUpgrade("u/apt-upgrade", "b", 13, "trixie", nil).Describe().Commands[1],
			"systemd-run --unit=boxswap-u-apt-upgrade -- " +
				"DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold full-upgrade"},
		{"options", AptUpgradeCmd([]string{"--allow-downgrades", "-o", "APT::Get::Foo=a b"}),
			"DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold full-upgrade " +
				"'--allow-downgrades' '-o' 'APT::Get::Foo=a b'"},
		{"recover", AptUpgrade("i", "b", 13, "trixie", nil).Describe().Commands[2],
			"DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold --configure -a; " +
				"DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -f install; " +
				"r=$(dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package}\\n' | awk '$1 ~ /^..R/ || $1 ~ /^.H/ {print $2}'); " +
				"if [ -n \"$r\" ]; then DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install --reinstall $r; fi; " +
				"DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold --configure -a"},
		{"root", aptSourcesUndoCmd(AptSourcesParams{Root: "/srv/my root", From: "a", To: "b"})[:32], `set -e; cd -- '/srv/my root'; s=`},
	} {
		if tc.got != tc.want {
			t.Errorf("%s:\ngot  %s\nwant %s", tc.name, tc.got, tc.want)
		}
	}
	d := AptSources("upgrade-dev/apt-sources", "thermals", p).Describe()
	if !equalStrings(d.Commands, []string{aptSourcesCmd(p)}) || !equalStrings(d.Undo, []string{aptSourcesUndoCmd(p), "apt-get update"}) ||
		d.Irreversible || !d.Retry || !strings.HasSuffix(d.Text, "as FILE.boxswap-off-bookworm-trixie.disabled except nodesource.sources") {
		t.Errorf("describe = %+v", d)
	}
	if d := AptUpgrade("i", "b", 13, "trixie (release 13)", nil).Describe(); d.Irreversible || d.Undo != nil || !strings.Contains(d.Text, "undo does nothing") {
		t.Errorf("upgrade describe = %+v", d)
	}
}

// A Debian 12 box's sources, with the third-party kinds seen in the field.
var bookwormSources = map[string]string{
	"sources.list": `# deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD Binary-1 20240210-11:28]/ bookworm contrib main
deb http://deb.debian.org/debian bookworm main non-free-firmware
deb-src http://deb.debian.org/debian bookworm main non-free-firmware
	deb  [ arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg ]  http://security.debian.org/debian-security bookworm-security main
deb http://deb.debian.org/debian bookworm-updates main
deb http://mirror.example.org/bookworm/ bookworm-backports main
`,
	"sources.list.d/debian.sources": `Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

# the security archive
Types: deb
URIs: http://security.debian.org/bookworm
suites:bookworm-security
Components: main
`,
	"sources.list.d/docker.list":         "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/debian bookworm stable\n",
	"sources.list.d/pgdg.list":           "deb http://apt.postgresql.org/pub/repos/apt bookworm-pgdg main\n",
	"sources.list.d/vendor.list":         "deb http://vendor.example.com/bookworm/ stable main\n",
	"sources.list.d/nodesource.sources":  "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n",
	"sources.list.d/comments.list":       "# deb http://example.org/ sid main\n",
	"sources.list.d/old.list.disabled":   "deb http://example.org/ bookworm main\n",
	"sources.list.d/README":              "deb http://example.org/ bookworm main\n",
	"trusted.gpg.d/debian-archive.asc":   "key\n",
	"sources.list.d/bookworm-extra.list": "deb http://example.org/x sid main\n",
}

// What the rewrite makes of them; the files not listed are unchanged.
var trixieSources = map[string]string{
	"sources.list": `# deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD Binary-1 20240210-11:28]/ bookworm contrib main
deb http://deb.debian.org/debian trixie main non-free-firmware
deb-src http://deb.debian.org/debian trixie main non-free-firmware
	deb  [ arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg ]  http://security.debian.org/debian-security trixie-security main
deb http://deb.debian.org/debian trixie-updates main
deb http://mirror.example.org/bookworm/ trixie-backports main
`,
	"sources.list.d/debian.sources": `Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: trixie trixie-updates trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

# the security archive
Types: deb
URIs: http://security.debian.org/bookworm
suites:trixie-security
Components: main
`,
	"sources.list.d/docker.list": "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/debian trixie stable\n",
	"sources.list.d/pgdg.list":   "deb http://apt.postgresql.org/pub/repos/apt trixie-pgdg main\n",
}

// readTree returns every file under root by its slash path.
func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		m[filepath.ToSlash(rel)] = mustRead(t, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		mustWrite(t, filepath.Join(root, p), c)
	}
}

// The generated commands, run by the real sh, grep and sed against a
// sample /etc/apt: the rewrite, its check, a repeated run, the undo.
func TestAptSourcesForReal(t *testing.T) {
	ctx := context.Background()
	r := newShRunner(t)
	r.stub(t, "apt-get", `echo "apt-get $*" >> `+quote(filepath.Join(r.dir, "apt-get.log")))
	root := filepath.Join(t.TempDir(), "etc", "apt")
	writeTree(t, root, bookwormSources)
	te := newEnv(map[string]boxes.Runner{"thermals": r})
	p := AptSourcesParams{Root: root, From: "bookworm", To: "trixie", Keep: []string{"nodesource.sources"}}
	s := AptSources("upgrade-dev/apt-sources", "thermals", p)

	done, why, err := s.Check(ctx, te.Env)
	wantWhy := "bookworm named in sources.list, sources.list.d/docker.list, sources.list.d/pgdg.list, sources.list.d/debian.sources; " +
		"third-party, to be disabled: sources.list.d/bookworm-extra.list, sources.list.d/vendor.list; third-party, kept: sources.list.d/nodesource.sources"
	if done || err != nil || why != wantWhy {
		t.Fatalf("check before:\n%v %v\n%s\nwant\n%s", done, err, why, wantWhy)
	}
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for p, c := range bookwormSources {
		want[p] = c
	}
	for p, c := range trixieSources {
		want[p] = c
		want[p+".boxswap-orig-bookworm-trixie.bak"] = bookwormSources[p]
	}
	for _, p := range []string{"sources.list.d/vendor.list", "sources.list.d/bookworm-extra.list"} {
		delete(want, p)
		want[p+".boxswap-off-bookworm-trixie.disabled"] = bookwormSources[p]
	}
	got := readTree(t, root)
	compareTrees(t, "after apply", got, want)
	if out := te.out["thermals"].String(); !strings.Contains(out, "rewritten: sources.list\n") || !strings.Contains(out, "disabled: sources.list.d/vendor.list\n") ||
		!strings.Contains(out, "kept: sources.list.d/nodesource.sources\n") {
		t.Errorf("output:\n%s", out)
	}
	done, why, err = s.Check(ctx, te.Env)
	if !done || err != nil || why != "the sources name trixie (sources.list, sources.list.d/docker.list, sources.list.d/pgdg.list, sources.list.d/debian.sources), none bookworm; third-party, kept: sources.list.d/nodesource.sources" {
		t.Fatalf("check after: %v %v %s", done, err, why)
	}
	// Applied again (a resume that did not trust the check): nothing moves,
	// and the backups still hold the originals.
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, "after a second apply", readTree(t, root), want)

	if err := s.Undo(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, "after undo", readTree(t, root), bookwormSources)
	if log := mustRead(t, filepath.Join(r.dir, "apt-get.log")); log != "apt-get update\n" {
		t.Errorf("undo ran %q", log)
	}
	if err := s.Undo(ctx, te.Env); err != nil {
		t.Errorf("second undo: %v", err)
	}
	compareTrees(t, "after a second undo", readTree(t, root), bookwormSources)
}

func compareTrees(t *testing.T, when string, got, want map[string]string) {
	t.Helper()
	for p, c := range want {
		if got[p] != c {
			t.Errorf("%s: %s =\n%q\nwant\n%q", when, p, got[p], c)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected file %s", when, p)
		}
	}
}

// Check must be able to fail: a source still naming the old suite, or
// none naming the new one.
func TestAptSourcesCheckFails(t *testing.T) {
	ctx := context.Background()
	p := AptSourcesParams{From: "bookworm", To: "trixie"}
	for _, tc := range []struct {
		name  string
		files map[string]string
		why   string
	}{
		{"mixed", map[string]string{
			"sources.list":                  "deb http://deb.debian.org/debian trixie main\n",
			"sources.list.d/debian.sources": "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\n  \nTypes: deb\nURIs: http://security.debian.org/\nSuites: trixie-updates bookworm-security\n",
		}, "bookworm named in sources.list.d/debian.sources"},
		{"no target", map[string]string{"sources.list": "deb http://example.org/trixie/ stable main\n# deb http://deb.debian.org/debian trixie main\n"},
			"no source names bookworm or trixie; third-party, to be disabled: sources.list"},
		{"empty", map[string]string{"sources.list": ""}, "no source names bookworm or trixie"},
		{"no folder", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newShRunner(t)
			p.Root = filepath.Join(t.TempDir(), "apt")
			writeTree(t, p.Root, tc.files)
			te := newEnv(map[string]boxes.Runner{"b": r})
			done, why, err := AptSources("i", "b", p).Check(ctx, te.Env)
			if tc.files == nil {
				if err == nil || done {
					t.Fatalf("no /etc/apt: %v %q %v", done, why, err)
				}
				return
			}
			if done || err != nil || why != tc.why {
				t.Fatalf("check = %v %q %v", done, why, err)
			}
		})
	}
}

// A rewrite that leaves no source on the new suite is an error, not done.
func TestAptSourcesApplyFindsNoTarget(t *testing.T) {
	r := newShRunner(t)
	p := AptSourcesParams{Root: filepath.Join(t.TempDir(), "apt"), From: "bookworm", To: "trixie"}
	writeTree(t, p.Root, map[string]string{"sources.list.d/x.list": "deb http://example.org/ sid main\n"})
	te := newEnv(map[string]boxes.Runner{"b": r})
	err := AptSources("i", "b", p).Apply(context.Background(), te.Env)
	if !errors.Is(err, ErrPrecondition) || !strings.Contains(err.Error(), "the apt sources do not name trixie after the rewrite") {
		t.Fatalf("err = %v", err)
	}
}

func TestAptSourcesRefusesBadSuites(t *testing.T) {
	te := newEnv(map[string]boxes.Runner{"b": &fakeRunner{}})
	for _, p := range []AptSourcesParams{{From: "bookworm", To: "bookworm"}, {From: "book worm", To: "trixie"}, {From: "bookworm", To: "trixie-x"}, {From: "", To: "trixie"}} {
		if err := AptSources("i", "b", p).Apply(context.Background(), te.Env); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}

func TestParseSourceFiles(t *testing.T) {
	files, err := parseSourceFiles(" from to\tsources.list\n other\tsources.list.d/my file.list\n")
	if err != nil || len(files) != 2 || files[0] != (sourceFile{path: "sources.list", from: true, to: true}) ||
		files[1] != (sourceFile{path: "sources.list.d/my file.list", other: true}) {
		t.Fatalf("%+v %v", files, err)
	}
	for _, bad := range []string{"sources.list\n", " from\t\n", " maybe\tx.list\n"} {
		if _, err := parseSourceFiles(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Hostile values for the root and the kept names reach the real sh as
// data: nothing they hold runs, and the rewrite still works.
func TestAptSourcesHostileValues(t *testing.T) {
	ctx := context.Background()
	for _, v := range hostile {
		r := newShRunner(t)
		r.stub(t, "touch", "echo pwned >> "+quote(filepath.Join(r.dir, "pwned")))
		r.stub(t, "apt-get", ":")
		root := filepath.Join(t.TempDir(), strings.ReplaceAll(v, "/", "_"))
		writeTree(t, root, map[string]string{
			"sources.list":            "deb http://deb.debian.org/debian bookworm main\n",
			"sources.list.d/v.list":   "deb http://example.org/ stable main\n",
			"sources.list.d/k.list":   "deb http://example.org/k stable main\n",
			"sources.list.d/x y.list": "deb http://example.org/xy stable main\n",
		})
		p := AptSourcesParams{Root: root, From: "bookworm", To: "trixie", Keep: []string{"k.list", v, "y.list"}}
		s := AptSources("i", "b", p)
		te := newEnv(map[string]boxes.Runner{"b": r})
		if err := s.Apply(ctx, te.Env); err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if exists(filepath.Join(r.dir, "pwned")) {
			t.Fatalf("%q: injected command ran", v)
		}
		tree := readTree(t, root)
		if tree["sources.list"] != "deb http://deb.debian.org/debian trixie main\n" || tree["sources.list.d/k.list"] == "" ||
			tree["sources.list.d/v.list.boxswap-off-bookworm-trixie.disabled"] == "" || tree["sources.list.d/x y.list.boxswap-off-bookworm-trixie.disabled"] == "" {
			t.Errorf("%q: tree %q", v, tree)
		}
		if err := s.Undo(ctx, te.Env); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(root, "sources.list.d", "v.list")); err != nil {
			t.Errorf("%q: undo: %v", v, err)
		}
	}
}
