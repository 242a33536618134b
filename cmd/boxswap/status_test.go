package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"boxswap/steps"
)

// systemctl and docker stand-ins for the boxes (they cannot run units or
// containers here); du, grep and sed are the real ones, on real files.
const fakeSystemctl = `#!/bin/sh
verb=$1; unit=$3
case "$BOX:$verb:$unit" in
thurst:is-active:nbhosting-addr|thermals:is-active:nbhosting-dev-addr) echo active ;;
thurst:is-enabled:nbhosting-addr|thermals:is-enabled:nbhosting-dev-addr) echo enabled ;;
*:is-active:nbh-uwsgi) echo active ;;
*:is-enabled:nbh-uwsgi) echo enabled ;;
*:is-active:*) echo inactive; exit 3 ;;
*:is-enabled:*) echo disabled; exit 1 ;;
*) echo "systemctl: unexpected $*" >&2; exit 2 ;;
esac
`

const fakeDocker = `#!/bin/sh
[ "$1 $2 $3" = "images --format {{.Repository}}:{{.Tag}} {{.ID}}" ] || { echo "docker: unexpected $*" >&2; exit 2; }
case $BOX in thurst) id=aaaa1111 ;; *) id=bbbb2222 ;; esac
printf 'nbhosting/scipy:latest %s\nnbhosting/base:latest cccc3333\n' "$id"
`

// statusFixture makes the data root and settings file both boxes see.
func statusFixture(t *testing.T, p *pair) (root, settings string) {
	t.Helper()
	p.script(t, "systemctl", fakeSystemctl)
	p.script(t, "docker", fakeDocker)
	root = filepath.Join(p.dir, "nbhosting")
	for _, d := range []string{"students/u1", "students.prod"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p.write(t, filepath.Join(root, "students", "u1", "nb.ipynb"), strings.Repeat("x", 10000))
	settings = filepath.Join(p.dir, "sitesettings.py")
	p.write(t, settings, "import os\nserver_name = 'nbhosting.inria.fr'\nssl_certificate = '/etc/a.crt'\n# ssl_certificate_key = 'old'\nssl_certificate_key = '/etc/a.key'\n")
	return root, settings
}

func localRelease(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		t.Fatal(err)
	}
	return steps.VersionID(string(b))
}

func TestStatusOnline(t *testing.T) {
	p := newPair(t)
	root, settings := statusFixture(t, p)
	cfg := p.config(t, root, settings)

	code, stdout, stderr := runCLI(t, "-c", cfg, "status", "--json")
	if code != exitOK {
		t.Fatalf("status: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var st statusJSON
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if len(st.Boxes) != 2 {
		t.Fatalf("boxes: %+v", st.Boxes)
	}
	tu, th := st.Boxes[0], st.Boxes[1]
	if tu.Name != "thurst" || th.Name != "thermals" || tu.Error != "" || th.Error != "" || len(tu.SectionErrors)+len(th.SectionErrors) != 0 {
		t.Fatalf("boxes: %+v %+v", tu, th)
	}
	wantUnits := []unitStatus{
		{"nbhosting-addr", "active", "enabled"},
		{"nbhosting-dev-addr", "inactive", "disabled"},
		{"nbh-uwsgi", "active", "enabled"},
		{"nbh-monitor", "inactive", "disabled"},
		{"docker", "inactive", "disabled"},
	}
	if !reflect.DeepEqual(tu.Units, wantUnits) {
		t.Errorf("thurst units:\n got %+v\nwant %+v", tu.Units, wantUnits)
	}
	if th.Units[0].Active != "inactive" || th.Units[1].Active != "active" {
		t.Errorf("thermals units: %+v", th.Units)
	}
	wantSettings := []string{"server_name = 'nbhosting.inria.fr'", "ssl_certificate = '/etc/a.crt'", "ssl_certificate_key = '/etc/a.key'"}
	if !reflect.DeepEqual(tu.Settings, wantSettings) {
		t.Errorf("settings: got %q, want %q", tu.Settings, wantSettings)
	}
	if d := tu.Data; len(d) != 2 || !d[0].Exists || d[0].Bytes < 10000 || d[1].Exists {
		t.Errorf("data: %+v, want students >= 10000 bytes, raw missing", d)
	}
	if want := localRelease(t); tu.Release != want {
		t.Errorf("release %q, want %q", tu.Release, want)
	}
	wantImages := []image{{"nbhosting/scipy:latest", "aaaa1111", true}, {"nbhosting/base:latest", "cccc3333", false}}
	if !reflect.DeepEqual(tu.Images, wantImages) {
		t.Errorf("thurst images:\n got %+v\nwant %+v", tu.Images, wantImages)
	}
	if len(th.Images) != 2 || !th.Images[0].Differs || th.Images[1].Differs {
		t.Errorf("thermals images: %+v", th.Images)
	}

	code, stdout, stderr = runCLI(t, "-c", cfg, "status")
	if code != exitOK {
		t.Fatalf("status: exit %d\n%s", code, stderr)
	}
	fits(t, "status", stdout)
	// Side by side: thurst's column, then thermals'.
	for _, want := range []string{
		`(?m)^ +thurst +thermals$`,
		`(?m)^declared +production +development$`,
		`(?m)^function +production +development$`,
		`(?m)^  nbhosting-addr +active, enabled +inactive, disabled$`,
		`(?m)^  nbhosting-dev-addr +inactive, disabled +active, enabled$`,
		`(?m)^  ssl_certificate_key +'/etc/a.key' +'/etc/a.key'$`,
		`(?m)^  \S+/nbhosting/students +[0-9.]+ KiB +[0-9.]+ KiB$`,
		`(?m)^  \S+/nbhosting/raw +missing +missing$`,
		`(?m)^  nbhosting/scipy:latest +\* aaaa1111 +\* bbbb2222$`,
		`(?m)^  nbhosting/base:latest +cccc3333 +cccc3333$`,
	} {
		if !regexp.MustCompile(want).MatchString(stdout) {
			t.Errorf("status lacks %s:\n%s", want, stdout)
		}
	}
	if tu.Function != "production" || th.Function != "development" {
		t.Errorf("functions seen: %q %q", tu.Function, th.Function)
	}
}

func TestStatusSectionFails(t *testing.T) {
	p := newPair(t)
	root, _ := statusFixture(t, p)
	p.script(t, "docker", "#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
	cfg := p.config(t, root, filepath.Join(p.dir, "no-such-settings.py"))

	code, stdout, stderr := runCLI(t, "-c", cfg, "status")
	if code != exitFailure {
		t.Fatalf("status: exit %d, want %d\n%s\n%s", code, exitFailure, stdout, stderr)
	}
	// The other sections are still shown.
	if !strings.Contains(stdout, "nbhosting-addr") || !strings.Contains(stdout, "error: thurst: images: exit 1: Cannot connect to the Docker daemon") {
		t.Errorf("stdout:\n%s", stdout)
	}
	if !strings.Contains(stdout, "error: thurst: settings: exit 2") {
		t.Errorf("a missing settings file is not reported:\n%s", stdout)
	}
}

func TestSizesOnline(t *testing.T) {
	p := newPair(t)
	root, settings := statusFixture(t, p)
	cfg := p.config(t, root, settings)

	code, stdout, stderr := runCLI(t, "-c", cfg, "sizes", "--json")
	if code != exitOK {
		t.Fatalf("sizes: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var sz sizesJSON
	if err := json.Unmarshal([]byte(stdout), &sz); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	for _, b := range sz.Boxes {
		var got []string
		for _, f := range b.Folders {
			got = append(got, strings.TrimPrefix(f.Path, root+"/")+map[bool]string{true: "+", false: "-"}[f.Exists])
		}
		if want := []string{"students+", "raw-", "students.prod+", "raw.prod-"}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: folders %q, want %q", b.Name, got, want)
		}
		if b.Folders[0].Bytes < 10000 {
			t.Errorf("%s: students is %d bytes, want >= 10000", b.Name, b.Folders[0].Bytes)
		}
	}
	code, stdout, _ = runCLI(t, "-c", cfg, "sizes")
	if code != exitOK || !strings.Contains(stdout, "FOLDER") || !strings.Contains(stdout, root+"/raw.prod") {
		t.Errorf("sizes: exit %d\n%s", code, stdout)
	}
}
