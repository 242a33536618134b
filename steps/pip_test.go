package steps

import (
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"

	"boxswap/boxes"
)

func TestParsePythonVersion(t *testing.T) {
	for in, want := range map[string]string{"Python 3.6.8": "3.6", "Python 3.7.0rc1\n": "3.7", "Python 3.10.12": "3.10", "Python 3.7": "3.7"} {
		if got, err := parsePythonVersion(in); err != nil || got != want {
			t.Errorf("%q = %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "Python", "python 3.6.8", "Python x.y", "Python 3"} {
		if _, err := parsePythonVersion(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPinnedPackages(t *testing.T) {
	got := pinnedPackages("Django==1.11.15\n-e git+https://x/y.git#egg=y\nnbhosting @ file:///root\n# comment\nrequests==2.20.0\n--index-url=x\n-r==1\nweird;touch==1\n")
	if !equalStrings(got, []string{"Django==1.11.15", "requests==2.20.0"}) {
		t.Errorf("got %q", got)
	}
}

// What pip 23 on Debian 12 answers: distribution packages under /usr/lib,
// pip's own under /usr/local, an editable checkout.
const pipListDebian = `[{"name": "Django", "version": "4.2.7", "location": "/usr/local/lib/python3.11/dist-packages", "installer": "pip"}, ` +
	`{"name": "requests", "version": "2.28.1", "location": "/usr/lib/python3/dist-packages", "installer": ""}, ` +
	`{"name": "nbhosting", "version": "0.1", "location": "/usr/local/lib/python3.11/dist-packages", "installer": "pip", "editable_project_location": "/root/nbhosting"}, ` +
	`{"name": "docker", "version": "6.1.3", "location": "/usr/local/lib/python3.11/dist-packages", "installer": "pip"}]`

func TestPipOwnPackages(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{pipListDebian, "Django==4.2.7\ndocker==6.1.3\n"},
		{"verbose log line\n" + pipListDebian + "\n", "Django==4.2.7\ndocker==6.1.3\n"},
		// An old pip gives no locations: every package, as pip freeze did.
		{`[{"name": "Django", "version": "1.11.15"}, {"name": "requests", "version": "2.20.0"}]`, "Django==1.11.15\nrequests==2.20.0\n"},
		{"[]", ""},
	} {
		if got, err := pipOwnPackages(tc.in); err != nil || got != tc.want {
			t.Errorf("%.40q: %q %v, want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "Package Version\n------- -------\n", `[{"name": 1}]`} {
		if _, err := pipOwnPackages(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The externally-managed test, run by the real sh against this machine's
// python3: it must answer (0 or 1) without failing.
func TestExternallyManagedCmdRuns(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	code, err := newShRunner(t).Run(context.Background(), PipParams{}.externallyManagedCmd(), io.Discard, io.Discard)
	if err != nil || code != 0 && code != 1 {
		t.Fatalf("exit %d, %v", code, err)
	}
}

func TestPipReinstallWithoutSnapshot(t *testing.T) {
	te := newEnv(map[string]boxes.Runner{"b": &fakeRunner{}})
	if err := PipReinstall("id", "b", PipParams{}).Apply(context.Background(), te.Env); err == nil || !strings.Contains(err.Error(), "no pip snapshot") {
		t.Fatalf("err = %v", err)
	}
}

// This machine's pip answers pipListCmd in the form pipOwnPackages reads.
func TestPipListForReal(t *testing.T) {
	r := newShRunner(t)
	var out strings.Builder
	code, err := r.Run(context.Background(), pipListCmd, &out, io.Discard)
	if err != nil || code != 0 {
		t.Skipf("no python3 -m pip here: exit %d, %v", code, err)
	}
	own, err := pipOwnPackages(out.String())
	if err != nil {
		t.Fatalf("%v\n%.300s", err, out.String())
	}
	if !strings.Contains(out.String(), `"location"`) {
		t.Errorf("pip gave no locations: %.300s", out.String())
	}
	t.Logf("pip installed under /usr/local here: %q", own)
}
