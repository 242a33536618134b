package steps

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"boxswap/boxes"
)

func TestParseDF(t *testing.T) {
	out := `Filesystem         1-blocks        Used   Available Capacity Mounted on
/dev/vda       270553174016 12263481344 85529812992      13% /
/dev/mapper/my disk 100 40 60 40% /mnt/with space
tmpfs 0 0 0 - /x
`
	rows, err := parseDF(out)
	if err != nil || len(rows) != 3 {
		t.Fatalf("%v %v", rows, err)
	}
	if rows[0] != (dfRow{"/dev/vda", 270553174016, 12263481344, 85529812992, "/"}) ||
		rows[1] != (dfRow{"/dev/mapper/my disk", 100, 40, 60, "/mnt/with space"}) || rows[2].Mount != "/x" {
		t.Errorf("rows = %+v", rows)
	}
	for _, bad := range []string{"", "garbage\n", "Filesystem x\n/dev/a 1 2 3\n", "Filesystem\n/dev/a x 2 3 4% /\n", "Filesystem\n/dev/a 1 2 -3 4% /\n"} {
		if _, err := parseDF(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseDFReal(t *testing.T) {
	out, err := exec.Command("df", "-P", "-B1", "--", "/", t.TempDir()).Output()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := parseDF(string(out))
	if err != nil || len(rows) != 2 || rows[0].Size <= 0 {
		t.Fatalf("%+v %v\n%s", rows, err, out)
	}
}

func TestFreeDisk(t *testing.T) {
	ctx := context.Background()
	f := &fakeRunner{script: func(cmd string) reply {
		if cmd != "df -P -B1 -- / /nbhosting" {
			return reply{exit: 127}
		}
		return reply{out: "Filesystem 1-blocks Used Available Capacity Mounted on\n/dev/a 100 10 20000000000 1% /\n/dev/b 100 10 1073741824 99% /nbhosting\n"}
	}}
	te := newEnv(map[string]boxes.Runner{"thermals": f})
	s := FreeDisk("pre/disk", "thermals", []string{"/", "/nbhosting"}, 10<<30)
	if done, why, err := s.Check(ctx, te.Env); done || err != nil || why != "only 1.0 GiB free on /nbhosting (/nbhosting)" {
		t.Fatalf("check = %v %q %v", done, why, err)
	}
	err := s.Apply(ctx, te.Env)
	if !errors.Is(err, ErrPrecondition) || !strings.HasPrefix(err.Error(), "thermals: only 1.0 GiB free on /nbhosting (/nbhosting), need 10.0 GiB: ") {
		t.Fatalf("err = %v", err)
	}
	if done, _, _ := FreeDisk("x", "thermals", []string{"/", "/nbhosting"}, 1<<20).Check(ctx, te.Env); !done {
		t.Error("enough space not done")
	}
}

func TestReachable(t *testing.T) {
	ctx := context.Background()
	ok := newEnv(map[string]boxes.Runner{"b": &fakeRunner{}})
	if done, _, err := Reachable("id", "b").Check(ctx, ok.Env); !done || err != nil {
		t.Fatal("reachable box not done")
	}
	down := newEnv(map[string]boxes.Runner{"b": &fakeRunner{script: func(string) reply { return reply{err: boxes.ErrUnreachable} }}})
	s := Reachable("id", "b")
	if done, _, err := s.Check(ctx, down.Env); done || err != nil {
		t.Fatalf("unreachable: %v %v", done, err)
	}
	if err := s.Apply(ctx, down.Env); !errors.Is(err, boxes.ErrUnreachable) || !strings.Contains(err.Error(), "boxswap check") {
		t.Fatalf("err = %v", err)
	}
}

func TestDnfAndCommand(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		s          Step
		cmds, undo []string
	}{
		{DnfUpgrade("u/dnf-upgrade", "b", 29), []string{Rpm.Health, "systemd-run --unit=boxswap-u-dnf-upgrade -- dnf upgrade --refresh -y", Rpm.Recover}, nil},
		{DnfInstall("u/dnf-plugin", "b", "dnf-plugin-system-upgrade", 29), []string{"rpm -q -- dnf-plugin-system-upgrade",
			"systemd-run --unit=boxswap-u-dnf-plugin -- dnf install -y -- dnf-plugin-system-upgrade"}, nil},
		{DnfDownload("u/dnf-download", "b", 29, []string{"--allowerasing", "--setopt=x=a b"}), []string{upgradeStateCmd,
			"systemd-run --unit=boxswap-u-dnf-download -- dnf system-upgrade download --releasever=29 -y '--allowerasing' '--setopt=x=a b'"},
			[]string{"dnf system-upgrade clean"}},
		{Command("a", "b", "install", "cd /root/nbhosting && ./install.sh", "", ""), []string{"cd /root/nbhosting && ./install.sh"}, nil},
	} {
		d := tc.s.Describe()
		if !equalStrings(d.Commands, tc.cmds) || !equalStrings(d.Undo, tc.undo) || !d.Retry && tc.undo == nil && len(tc.cmds) > 1 {
			t.Errorf("describe %+v", d)
		}
	}
	hook := Command("h", "b", "hook", "make it", "test -e it", "unmake it")
	missing := newEnv(map[string]boxes.Runner{"b": &fakeRunner{script: func(string) reply { return reply{exit: 1} }}})
	if done, why, err := hook.Check(ctx, missing.Env); done || err != nil || why != "its check exited 1" {
		t.Errorf("hook check = %v %q %v", done, why, err)
	}
	if err := hook.Apply(ctx, missing.Env); err == nil || err.Error() != "b: running hook: exit 1" || !strings.HasSuffix(Detail(err), "; command: make it") {
		t.Errorf("hook apply = %v", err)
	}
}

func TestCleanupContainers(t *testing.T) {
	ctx := context.Background()
	containers, images := "abc\n'd;e\n", "i1\ni1\ni2\n"
	f := &fakeRunner{script: func(cmd string) reply {
		switch cmd {
		case "docker ps -aq":
			return reply{out: containers}
		case "docker images -q":
			return reply{out: images}
		case `docker rm -f -- abc ''\''d;e'`:
			containers = ""
			return reply{}
		case "docker rmi -f -- i1 i2":
			images = ""
			return reply{}
		}
		t.Errorf("unexpected %q", cmd)
		return reply{exit: 127}
	}}
	te := newEnv(map[string]boxes.Runner{"thurst": f})
	s := CleanupContainers("epilogue/cleanup", "thurst")
	if done, why, _ := s.Check(ctx, te.Env); done || why != "2 containers and 2 images on thurst" {
		t.Fatalf("check = %v %q", done, why)
	}
	if err := s.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if done, _, _ := s.Check(ctx, te.Env); !done {
		t.Error("not done")
	}
	if err := s.Undo(ctx, te.Env); !errors.Is(err, ErrIrreversible) || !s.Describe().Irreversible {
		t.Errorf("undo = %v", err)
	}
}

func TestGate(t *testing.T) {
	ctx := context.Background()
	te := newEnv(nil)
	g := Gate("redirect/gate", "thermals has been validated?")
	if d := g.Describe(); d.Box != "" || len(d.Commands) != 0 {
		t.Errorf("describe %+v", d)
	}
	if err := g.Apply(ctx, te.Env); !errors.Is(err, ErrNotApproved) {
		t.Fatalf("no approver: %v", err)
	}
	te.Approve = func(_ context.Context, gate, prompt string) (string, error) {
		if gate != "redirect/gate" || prompt != "thermals has been validated?" {
			t.Errorf("asked %q %q", gate, prompt)
		}
		return "", errors.Join(ErrNotApproved, errors.New("not a terminal; use --yes"))
	}
	if err := g.Apply(ctx, te.Env); !errors.Is(err, ErrNotApproved) {
		t.Fatalf("refused: %v", err)
	}
	te.Approve = func(context.Context, string, string) (string, error) { return "alice", nil }
	if err := g.Apply(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if done, why, _ := g.Check(ctx, te.Env); !done || why != "approved by alice" {
		t.Fatalf("check = %v %q", done, why)
	}
	if err := g.Undo(ctx, te.Env); err != nil {
		t.Fatal(err)
	}
	if done, _, _ := g.Check(ctx, te.Env); done {
		t.Fatal("approval kept after undo")
	}
}

func TestRecordStatus(t *testing.T) {
	f := &fakeRunner{script: answers(t, map[string]reply{
		"systemctl is-active -- nbhosting-addr":  {out: "active\n"},
		"systemctl is-enabled -- nbhosting-addr": {out: "enabled\n"},
		"systemctl is-active -- nbh-uwsgi":       {out: "inactive\n", exit: 3},
		"systemctl is-enabled -- nbh-uwsgi":      {out: "disabled\n", exit: 1},
		"cat /etc/os-release":                    {out: fedora29},
	})}
	te := newEnv(map[string]boxes.Runner{"thurst": f})
	s := RecordStatus("epilogue/status/thurst", "thurst", []string{"nbhosting-addr", "nbh-uwsgi"})
	if err := s.Apply(context.Background(), te.Env); err != nil {
		t.Fatal(err)
	}
	v, _ := te.facts.Get("thurst/status")
	var st BoxStatus
	if err := json.Unmarshal([]byte(v), &st); err != nil || st.Release != 29 ||
		st.Units["nbhosting-addr"] != (UnitStatus{"active", "enabled"}) || st.Units["nbh-uwsgi"] != (UnitStatus{"inactive", "disabled"}) {
		t.Fatalf("status %q %v", v, err)
	}
	if !equalStrings(f.sent(), s.Describe().Commands) {
		t.Errorf("sent %q, described %q", f.sent(), s.Describe().Commands)
	}
}
