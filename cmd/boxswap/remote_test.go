package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"testing"

	"boxswap/boxes"
	"boxswap/fsm"
	"boxswap/state"
	"boxswap/steps"
)

// The remote command lines are pinned: a change here changes what runs as
// root on the production box.
func TestRemoteCommands(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"units", unitsCommand([]string{"nbhosting-addr", "nbh-uwsgi"}),
			`for u in nbhosting-addr nbh-uwsgi; do printf '%s\t%s\t%s\n' "$u" "$(systemctl is-active -- "$u" 2>/dev/null)" "$(systemctl is-enabled -- "$u" 2>/dev/null)"; done`},
		{"units quoted", unitsCommand([]string{"a b", "x';rm -rf /"}),
			`for u in 'a b' 'x'\'';rm -rf /'; do printf '%s\t%s\t%s\n' "$u" "$(systemctl is-active -- "$u" 2>/dev/null)" "$(systemctl is-enabled -- "$u" 2>/dev/null)"; done`},
		{"settings", settingsCommand("/root/nbhosting/django/nbh_main/sitesettings.py", []string{"server_name", "ssl_certificate", "ssl_certificate_key"}),
			`grep -E -- '^(server_name|ssl_certificate|ssl_certificate_key) *=' /root/nbhosting/django/nbh_main/sitesettings.py`},
		{"settings quoted", settingsCommand("/srv/my site/settings.py", []string{"a.b"}),
			`grep -E -- '^(a\.b) *=' '/srv/my site/settings.py'`},
		{"du", duCommand([]string{"/nbhosting/students", "/nbhosting/raw.prod"}),
			`for p in /nbhosting/students /nbhosting/raw.prod; do if [ -d "$p" ]; then printf '%s\t%s\n' "$p" "$(du -sb -- "$p" 2>/dev/null | cut -f1)"; else printf '%s\t-\n' "$p"; fi; done`},
		{"du quoted", duCommand([]string{"/data/$(reboot)"}),
			`for p in '/data/$(reboot)'; do if [ -d "$p" ]; then printf '%s\t%s\n' "$p" "$(du -sb -- "$p" 2>/dev/null | cut -f1)"; else printf '%s\t-\n' "$p"; fi; done`},
		{"images", imagesCommand(), `docker images --format '{{.Repository}}:{{.Tag}} {{.ID}}'`},
		{"ssh", sshCommand(boxes.Box{Name: "thermals", Host: "thermals.inria.fr", Port: 22, User: "root"}),
			`ssh -p 22 -o BatchMode=yes -o StrictHostKeyChecking=yes root@thermals.inria.fr true`},
		{"ssh defaults", sshCommand(boxes.Box{Name: "b", Host: "10.0.0.2"}),
			`ssh -p 22 -o BatchMode=yes -o StrictHostKeyChecking=yes root@10.0.0.2 true`},
		{"ssh quoted", sshCommand(boxes.Box{Name: "b", Host: "h;reboot", Port: 2222, User: "op"}),
			`ssh -p 2222 -o BatchMode=yes -o StrictHostKeyChecking=yes 'op@h;reboot' true`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, tt.got, tt.want)
		}
	}
}

func shippedConfig(t *testing.T) *boxes.Config {
	t.Helper()
	cfg, err := boxes.Load(filepath.Join("..", "..", "boxes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestStatusInputsFromShippedConfig(t *testing.T) {
	cfg := shippedConfig(t)
	if got, want := statusUnits(cfg), []string{"nbhosting-addr", "nbhosting-dev-addr", "nbh-uwsgi", "nbh-monitor", "docker"}; !reflect.DeepEqual(got, want) {
		t.Errorf("statusUnits = %q, want %q", got, want)
	}
	if got, want := dataPaths(cfg, false), []string{"/nbhosting/students", "/nbhosting/raw"}; !reflect.DeepEqual(got, want) {
		t.Errorf("dataPaths = %q, want %q", got, want)
	}
	want := []string{"/nbhosting/students", "/nbhosting/raw", "/nbhosting/students.prod", "/nbhosting/raw.prod"}
	if got := dataPaths(cfg, true); !reflect.DeepEqual(got, want) {
		t.Errorf("dataPaths with backups = %q, want %q", got, want)
	}
	cfg.Data.BackupSuffix = ""
	if got := dataPaths(cfg, true); len(got) != 2 {
		t.Errorf("dataPaths without a suffix = %q, want the two folders", got)
	}
}

// The shell commands run for real, here, on files made for the test: what
// they print is what the parsers read.
func TestRemoteCommandsRunInSh(t *testing.T) {
	dir := t.TempDir()
	sh := func(cmd string) string {
		t.Helper()
		out, err := exec.Command("/bin/sh", "-c", cmd).Output()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		return string(out)
	}

	data := filepath.Join(dir, "it's data")
	if err := os.MkdirAll(filepath.Join(data, "students", "u1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "students", "u1", "nb.ipynb"), make([]byte, 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := parseDu(sh(duCommand([]string{filepath.Join(data, "students"), filepath.Join(data, "raw")})))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Exists || got[0].Bytes < 5000 || got[1].Exists || got[1].Path != filepath.Join(data, "raw") {
		t.Errorf("du: got %+v, want students >= 5000 bytes and raw missing", got)
	}

	settings := filepath.Join(dir, "sitesettings.py")
	body := "# server_name = 'commented'\nserver_name = 'nbhosting.inria.fr'\nssl_certificate  = '/etc/a.crt'\nssl_certificate_key= '/etc/a.key'\nserver_name_alias = 'no'\nother = 1\n"
	if err := os.WriteFile(settings, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	lines := lines(sh(settingsCommand(settings, []string{"server_name", "ssl_certificate", "ssl_certificate_key"})))
	want := []string{"server_name = 'nbhosting.inria.fr'", "ssl_certificate  = '/etc/a.crt'", "ssl_certificate_key= '/etc/a.key'"}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("settings: got %q, want %q", lines, want)
	}

	units := parseUnits(sh(unitsCommand([]string{"boxswap-test-no-such-unit"})))
	if len(units) != 1 || units[0].Unit != "boxswap-test-no-such-unit" || units[0].Active == "active" {
		t.Errorf("units: got %+v, want the unit, not active", units)
	}
}

func TestParsers(t *testing.T) {
	if got := steps.VersionID("NAME=Fedora\nVERSION_ID=\"29\"\n"); got != "29" {
		t.Errorf("VersionID = %q", got)
	}
	if got := steps.VersionID("VERSION_ID=27\n"); got != "27" {
		t.Errorf("VersionID = %q", got)
	}
	us := parseUnits("nbhosting-addr\tactive\tenabled\nnbh-uwsgi\tinactive\t\n")
	want := []unitStatus{{"nbhosting-addr", "active", "enabled"}, {"nbh-uwsgi", "inactive", "-"}}
	if !reflect.DeepEqual(us, want) {
		t.Errorf("parseUnits = %+v, want %+v", us, want)
	}
	if _, err := parseDu("/a\tnot-a-number\n"); err == nil {
		t.Error("parseDu accepted a size that is not a number")
	}
	if _, err := parseDu("garbage\n"); err == nil {
		t.Error("parseDu accepted a line without a tab")
	}
	a := parseImages("nbhosting/scipy:latest 1111\nnbhosting/base:latest 2222\n")
	b := parseImages("nbhosting/scipy:latest 3333\nnbhosting/base:latest 2222\nextra:1 4444\n")
	markImageDiffs(a, b)
	if !a[0].Differs || a[1].Differs || !b[0].Differs || b[1].Differs || !b[2].Differs {
		t.Errorf("markImageDiffs: a=%+v b=%+v", a, b)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 10 << 30: "10.0 GiB"} {
		if got := boxes.HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		code int
		kind string
	}{
		{usagef("bad flag"), exitUsage, "usage"},
		{&boxes.LoadError{File: "boxes.yaml", Problems: []boxes.Problem{{Line: 7, Msg: "unknown key"}}}, exitUsage, "config"},
		{fmt.Errorf("lock: %w", &state.LockedError{Path: "x.lock"}), exitLocked, "locked"},
		{fmt.Errorf("open: %w", state.ErrCorrupt), exitState, "state"},
		{fmt.Errorf("open: %w", state.ErrNewerSchema), exitState, "state"},
		{fmt.Errorf("gate redirect/approve: %w", steps.ErrNotApproved), exitNotApproved, "not-approved"},
		{fmt.Errorf("sync: %w", steps.ErrRefused), exitRefused, "refused"},
		{fmt.Errorf("thermals runs Fedora 27: %w", steps.ErrPrecondition), exitRefused, "precondition"},
		// Stopped after changing something: not "nothing was changed".
		{fmt.Errorf("thurst still holds the address: %w", steps.ErrHalted), exitFailure, "halted"},
		{fsm.ErrStopped, exitInterrupted, "interrupted"},
		{fmt.Errorf("thermals: %w", context.Canceled), exitInterrupted, "interrupted"},
		{fmt.Errorf("thermals: %w", boxes.ErrUnreachable), exitUnreachable, "unreachable"},
		{fmt.Errorf("thermals: %w", boxes.ErrOutcomeUnknown), exitUnreachable, "outcome-unknown"},
		{fsm.ErrPending, exitPhase, "pending"},
		{fsm.ErrNothingToResume, exitPhase, "nothing-pending"},
		{fsm.ErrNothingToRollBack, exitPhase, "nothing-pending"},
		{fsm.ErrCycleDone, exitPhase, "cycle-done"},
		{fmt.Errorf("%w: --stop-before x", fsm.ErrNoSuchStep), exitUsage, "usage"},
		{fsm.ErrConfigChanged, exitPhase, "config-changed"},
		{fsm.ErrRollbackStopped, exitPhase, "irreversible"},
		{errors.New("thermals: dnf upgrade: exit 1"), exitFailure, "failure"},
		// A refusal recorded while the state write failed is still a refusal.
		{errors.Join(fmt.Errorf("sync: %w", steps.ErrRefused), errors.New("state: disk full")), exitRefused, "refused"},
		// A hint does not hide the cause.
		{withHint(fmt.Errorf("gate: %w", steps.ErrNotApproved), "say yes"), exitNotApproved, "not-approved"},
	}
	for _, tt := range tests {
		code, kind, hint := classify(tt.err)
		if code != tt.code || kind != tt.kind || hint == "" {
			t.Errorf("classify(%v) = %d, %q, %q; want %d, %q and a hint", tt.err, code, kind, hint, tt.code, tt.kind)
		}
		if !regexp.MustCompile(`(?m)^  ` + strconv.Itoa(code) + ` +\S`).MatchString(exitStatusHelp) {
			t.Errorf("exit code %d (%s) is not documented under EXIT STATUS", code, kind)
		}
	}
	if code, _, _ := classify(nil); code != exitOK {
		t.Errorf("classify(nil) = %d", code)
	}
	if got := hintOf(withHint(errors.New("x"), "do this"), "default"); got != "do this" {
		t.Errorf("hintOf = %q", got)
	}
}
