package steps

import (
	"context"
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

func TestPipSnapshotAndReinstall(t *testing.T) {
	ctx := context.Background()
	python := "Python 3.6.8"
	f := &fakeRunner{script: func(cmd string) reply {
		switch cmd {
		case "python3 --version":
			return reply{out: python + "\n"}
		case "pip3 freeze":
			return reply{out: "Django==1.11.15\n-e git+https://x#egg=y\nrequests==2.20.0\n"}
		case "pip3 install -- Django==1.11.15 requests==2.20.0":
			return reply{}
		}
		t.Errorf("unexpected %q", cmd)
		return reply{exit: 127}
	}}
	te := newEnv(map[string]boxes.Runner{"thermals": f})
	snap := PipSnapshot("upgrade-dev/pip-snapshot", "thermals")
	if err := snap.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if v, _ := te.facts.Get("thermals/python3"); v != "3.6" {
		t.Errorf("python fact %q", v)
	}
	if done, _, _ := snap.Check(ctx, te.Env); !done {
		t.Error("snapshot not done")
	}
	re := PipReinstall("upgrade-dev/pip-reinstall", "thermals")
	if done, why, err := re.Check(ctx, te.Env); !done || err != nil || !strings.Contains(why, "still 3.6") {
		t.Fatalf("same python: %v %q %v", done, why, err)
	}
	if err := re.Apply(ctx, te.Env); err != nil || len(f.sent()) != 4 {
		t.Fatalf("same python apply: %v, sent %q", err, f.sent())
	}
	python = "Python 3.7.1"
	if done, _, _ := re.Check(ctx, te.Env); done {
		t.Fatal("python changed but done")
	}
	if err := re.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if v, _ := te.facts.Get("thermals/pip-reinstalled"); v != "3.7" {
		t.Errorf("reinstalled fact %q", v)
	}
	if done, _, _ := re.Check(ctx, te.Env); !done {
		t.Error("not done after reinstall")
	}
}

func TestPipReinstallQuotes(t *testing.T) {
	if got := pipInstallCmd([]string{"a==1", "b+c==2!x"}); got != "pip3 install -- a==1 'b+c==2!x'" {
		t.Errorf("got %s", got)
	}
}

func TestPipReinstallWithoutSnapshot(t *testing.T) {
	te := newEnv(map[string]boxes.Runner{"b": &fakeRunner{}})
	if err := PipReinstall("id", "b").Apply(context.Background(), te.Env); err == nil || !strings.Contains(err.Error(), "no pip snapshot") {
		t.Fatalf("err = %v", err)
	}
}
