package reliability

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"boxswap/state"
	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// hostile are values an attacker or a slip of the keyboard could put in
// boxes.yaml: each must be refused, or reach a shell as data.
var hostile = []string{"; rm -rf /", "$(touch /tmp/pwned)", "`touch /tmp/pwned`", `a'b"c`, "--delete", "-oProxyCommand=x"}

// TestHostileStringsInEveryField puts each hostile value in each string
// field of the lab's boxes.yaml (hooks excepted: they are the operator's
// shell by design): check --offline must refuse it (exit 2, naming the
// line) unless the field is one whose value reaches the boxes only quoted,
// as data (settings values and paths, pinned by steps' quoting tests; the
// settings values are proven in the lab by TestHostileSettingsAreData).
func TestHostileStringsInEveryField(t *testing.T) {
	h := labtest.New(t, lab.Options{})
	raw, err := os.ReadFile(h.Config)
	if err != nil {
		t.Fatal(err)
	}
	fields := []struct{ re, name string }{
		{`(?m)^(  - name: )thurst$`, "boxes[].name"},
		{`(?m)^(    host: )127\.0\.0\.11$`, "boxes[].host"},
		{`(?m)^(    user: )root$`, "boxes[].user"},
		{`(?m)^(    alias: )nbhosting\.lab$`, "functions.production.alias"},
		{`(?m)^(    address_unit: )nbhosting-addr$`, "functions.production.address_unit"},
		{`(?m)^(  services: )\[nbh-uwsgi, `, "app.services[]"},
		{`(?m)^(  root: )/nbhosting$`, "data.root"},
		{`(?m)^(  folders: )\[students, `, "data.folders[]"},
		{`(?m)^(  backup_suffix: )\.prod$`, "data.backup_suffix"},
		{`(?m)^(  devel_branch: )f29$`, "upgrade.devel_branch"},
		{`(?m)^(      server_name: )nbhosting\.lab$`, "functions.production.settings.server_name"},
		{`(?m)^(  checkout: )/root/nbhosting$`, "app.checkout"},
		{`(?m)^(  settings_file: )/root/nbhosting/django/nbh_main/sitesettings\.py$`, "app.settings_file"},
	}
	// Fields whose values are data: quoted wherever they reach a shell.
	data := map[string]bool{
		"functions.production.settings.server_name": true,
		"app.checkout":       true,
		"app.settings_file":  true,
		"data.root":          true, // an absolute path: "/x--delete" is a path
		"data.backup_suffix": true, // appended to a folder name, never leading
	}
	refused, accepted := 0, 0
	for _, f := range fields {
		re := regexp.MustCompile(f.re)
		if !re.Match(raw) {
			t.Fatalf("%s: no line matches %s in the lab's boxes.yaml", f.name, f.re)
		}
		for _, v := range hostile {
			q, _ := json.Marshal(v)
			val := string(q)
			if strings.HasSuffix(f.re, ", `") {
				val = "[" + val + ", " // a list's first item
			}
			// Paths must stay absolute to be checked for what they hold.
			if (f.name == "data.root" || f.name == "app.checkout" || f.name == "app.settings_file") && !strings.HasPrefix(v, "/") {
				q, _ = json.Marshal("/x" + v)
				val = string(q)
			}
			out := re.ReplaceAllFunc(raw, func(m []byte) []byte {
				return append(append([]byte(nil), re.FindSubmatch(m)[1]...), val...)
			})
			cfg := filepath.Join(t.TempDir(), "boxes.yaml")
			// known_hosts and the identity are found beside boxes.yaml.
			out = bytes.Replace(out, []byte("known_hosts: known_hosts"), []byte("known_hosts: "+h.Lab.Info.KnownHosts), 1)
			out = bytes.Replace(out, []byte("identity: id_ed25519"), []byte("identity: "+h.Lab.Info.Identity), 1)
			if err := os.WriteFile(cfg, out, 0o644); err != nil {
				t.Fatal(err)
			}
			hh := *h
			hh.Config = cfg
			r := hh.Run("check", "--offline")
			switch {
			case r.Code == 2 && strings.Contains(r.Stderr, "boxes.yaml:"):
				refused++
			case r.Code == 0 && data[f.name]:
				accepted++
			default:
				t.Errorf("%s = %s: want refused (exit 2 with FILE:LINE)%s: %s", f.name, val,
					map[bool]string{true: " or accepted as data", false: ""}[data[f.name]], r)
			}
		}
	}
	figure(t, "hostile strings: %d field×value pairs refused by validation, %d accepted as data (quoted: settings values, paths, a suffix that never leads)", refused, accepted)
}

// TestHostileSettingsAreData moves production with hostile settings values:
// they reach thermals' sitesettings.py verbatim (as Python reads them) and
// nothing in them runs on either box.
func TestHostileSettingsAreData(t *testing.T) {
	h := labtest.New(t, lab.Options{})
	tag := make([]byte, 4)
	rand.Read(tag)
	pwned := "/tmp/pwned-" + hex.EncodeToString(tag)
	values := []string{
		"nbhosting.lab$(touch " + pwned + ")",
		"/etc/ssl/`touch " + pwned + "`'q\"; rm -rf /root/victim",
		`-k \" $HOME \\ ; touch ` + pwned + ` #`,
	}
	keys := []string{"server_name", "ssl_certificate", "ssl_certificate_key"}
	h.EditConfig(func(s string) string {
		for i, k := range keys {
			q, _ := json.Marshal(values[i])
			re := regexp.MustCompile(`(?m)^(      ` + k + `: ).*$`)
			loc := re.FindStringSubmatchIndex(s) // the first: production's
			s = s[:loc[3]] + string(q) + s[loc[1]:]
		}
		return s
	})
	if r := h.Run("check", "--offline"); r.Code != 0 {
		t.Fatalf("hostile settings refused by check: %s", r)
	}
	// A file on the boxes' disks that a value running "rm -rf" would remove.
	for _, b := range lab.BoxNames {
		h.Sh(b, "touch /root/victim")
	}
	advance(t, h, "dev-upgraded")
	advance(t, h, "redirected")
	got := h.Sh(lab.Thermals, `python3 -c 'import json, runpy; d = runpy.run_path("/root/nbhosting/django/nbh_main/sitesettings.py"); print(json.dumps([d["server_name"], d["ssl_certificate"], d["ssl_certificate_key"]]))'`)
	want, _ := json.Marshal(values)
	var g []string
	if err := json.Unmarshal([]byte(got), &g); err != nil || strings.Join(g, "\x00") != strings.Join(values, "\x00") {
		t.Errorf("sitesettings.py on thermals reads %s, want %s", got, want)
	}
	for _, b := range lab.BoxNames {
		if out, code, _ := h.Lab.Run(b, "ls "+pwned+"* 2>/dev/null; test -e /root/victim"); strings.TrimSpace(out) != "" || code != 0 {
			t.Errorf("%s: a hostile value ran: %q, /root/victim exit %d", b, out, code)
		}
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Errorf("%s exists on this machine", pwned)
	}
}

// TestHostKeysRefused: a known_hosts holding the wrong key for thurst, or
// none, makes check and next refuse before any step acts.
func TestHostKeysRefused(t *testing.T) {
	h := labtest.New(t, lab.Options{})
	orig, err := os.ReadFile(h.Lab.Info.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	var wrong, unknown []string
	for _, line := range strings.Split(strings.TrimSpace(string(orig)), "\n") {
		if strings.HasPrefix(line, "["+lab.ThermalsHost+"]") {
			wrong = append(wrong, line, strings.Replace(line, lab.ThermalsHost, lab.ThurstHost, 1))
			unknown = append(unknown, line)
		}
	}
	for _, c := range []struct {
		name, known, says string
	}{
		{"changed", strings.Join(wrong, "\n"), "host key"},
		{"unknown", strings.Join(unknown, "\n"), "SHA256:"},
	} {
		if err := os.WriteFile(h.Lab.Info.KnownHosts, []byte(c.known+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := h.Run("check")
		if r.Code == 0 || !strings.Contains(r.Stderr, c.says) || !strings.Contains(r.Stderr, "thurst") {
			t.Errorf("%s key: check: want a refusal naming thurst and %q: %s", c.name, c.says, r)
		}
		r = h.Run("--yes", "next")
		if r.Code == 0 || !strings.Contains(r.Stderr, c.says) {
			t.Errorf("%s key: next: want a refusal saying %q: %s", c.name, c.says, r)
		}
		if v := h.Where(); v.Phase != "start" {
			t.Errorf("%s key: phase %s", c.name, v.Phase)
		}
		if v := h.Where(); v.Transition != nil {
			for _, s := range v.Transition.Steps {
				if s.Status == state.StepDone && !strings.Contains(s.ID, "/preflight/") {
					t.Errorf("%s key: step %s done", c.name, s.ID)
				}
			}
			if r := h.Run("rollback"); r.Code != 0 {
				t.Errorf("rollback after the refusal: %s", r)
			}
		}
	}
	if err := os.WriteFile(h.Lab.Info.KnownHosts, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	checkTable(t, h, "start")
}

// TestStateFileRefusedUntouched: a corrupt state file, or one of a newer
// schema, is refused by every verb with exit 8 and left byte for byte.
func TestStateFileRefusedUntouched(t *testing.T) {
	bin := labtest.Boxswap(t)
	cfg, err := filepath.Abs("../../boxes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.db")
	junk := make([]byte, 8192)
	rand.Read(junk)
	if err := os.WriteFile(corrupt, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	newer := filepath.Join(dir, "newer.db")
	if err := state.Open(newer).SetFact("k", "v"); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(newer, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("99")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	h := &labtest.Harness{T: t, Bin: bin, Config: cfg}
	for _, c := range []struct{ path, says string }{{corrupt, "corrupt"}, {newer, "newer boxswap"}} {
		before, _ := os.ReadFile(c.path)
		h.State = c.path
		for _, args := range [][]string{{"where"}, {"--json", "where"}, {"log"}, {"--yes", "next"}, {"--yes", "resume"}, {"rollback"}, {"plan", "--offline"}} {
			r := h.Run(args...)
			if r.Code != 8 || !strings.Contains(r.Stderr+r.Stdout, c.says) {
				t.Errorf("%s: %v: want exit 8 saying %q: %s", filepath.Base(c.path), args, c.says, r)
			}
		}
		if after, _ := os.ReadFile(c.path); !bytes.Equal(before, after) {
			t.Errorf("%s was changed", c.path)
		}
	}
}
