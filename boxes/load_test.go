package boxes

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// shipped is the boxes.yaml at the root of the module.
const shipped = "../boxes.yaml"

func TestLoadShipped(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	c, err := Load(shipped)
	if err != nil {
		t.Fatalf("the shipped boxes.yaml must load clean:\n%v", err)
	}
	want := []Box{
		{Name: "thurst", Host: "thurst.inria.fr", Port: 22, User: "root", Function: Production, Line: 6},
		{Name: "thermals", Host: "thermals.inria.fr", Port: 22, User: "root", Function: Development, Line: 11},
	}
	if !reflect.DeepEqual(c.Boxes, want) {
		t.Errorf("boxes = %+v, want %+v", c.Boxes, want)
	}
	wantF := map[string]Function{
		Production: {Alias: "nbhosting.inria.fr", AddressUnit: "nbhosting-addr", Settings: Settings{
			{"server_name", "nbhosting.inria.fr", 22},
			{"ssl_certificate", "/etc/pki/tls/certs/nbhosting_inria_fr.crt", 23},
			{"ssl_certificate_key", "/etc/pki/tls/private/nbhosting.inria.fr.key", 24},
		}},
		Development: {Alias: "nbhosting-dev.inria.fr", AddressUnit: "nbhosting-dev-addr", Settings: Settings{
			{"server_name", "nbhosting-dev.inria.fr", 29},
			{"ssl_certificate", "/etc/pki/tls/certs/nbhosting-dev_inria_fr.crt", 30},
			{"ssl_certificate_key", "/etc/pki/tls/private/nbhosting-dev.inria.fr.key", 31},
		}},
	}
	if !reflect.DeepEqual(c.Functions, wantF) {
		t.Errorf("functions = %+v, want %+v", c.Functions, wantF)
	}
	wantApp := App{
		Checkout:     "/root/nbhosting",
		SettingsFile: "/root/nbhosting/django/nbh_main/sitesettings.py",
		Install:      "cd /root/nbhosting && ./install.sh",
		Services:     []string{"nbh-uwsgi", "nbh-monitor", "docker"},
		Writers:      []string{"nbh-uwsgi", "nbh-monitor", "docker"},
		Containers:   ContainersNone,
	}
	if !reflect.DeepEqual(c.App, wantApp) {
		t.Errorf("app = %+v, want %+v", c.App, wantApp)
	}
	wantData := Data{Root: "/nbhosting", Folders: []string{"students", "raw"}, Files: []string{"db.sqlite3"}, BackupSuffix: ".prod", MaxDelete: 1000,
		Exclude: []string{".~*"}, MinSourceFraction: DefaultMinSourceFraction, RoomMargin: DefaultRoomMargin}
	if !reflect.DeepEqual(c.Data, wantData) {
		t.Errorf("data = %+v, want %+v", c.Data, wantData)
	}
	wantUp := Upgrade{Method: MethodDnf, From: 27, To: 29, RebootTimeout: time.Hour, DevelBranch: "f29", MinFreeDisk: 10 << 30, Pip: PipReinstall}
	if !reflect.DeepEqual(c.Upgrade, wantUp) {
		t.Errorf("upgrade = %+v, want %+v", c.Upgrade, wantUp)
	}
	if c.Cleanup.Containers {
		t.Errorf("cleanup.containers = true, want false")
	}
	wantSSH := SSH{
		KnownHosts:     filepath.Join(home, ".ssh/known_hosts"),
		Identity:       filepath.Join(home, ".ssh/id_ed25519"),
		Config:         filepath.Join(home, ".ssh/config"),
		ConnectTimeout: 15 * time.Second,
		Keepalive:      15 * time.Second,
	}
	if c.SSH != wantSSH {
		t.Errorf("ssh = %+v, want %+v", c.SSH, wantSSH)
	}
	if c.Version != 1 || c.File != shipped || c.Hooks == nil || len(c.Hooks) != 0 {
		t.Errorf("version %d, file %q, hooks %v", c.Version, c.File, c.Hooks)
	}
}

// A file with only what is required gets every default.
func TestLoadDefaults(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	c, err := Load("testdata/good/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range c.Boxes {
		if b.Port != 22 || b.User != "root" {
			t.Errorf("box %s: port %d user %q, want 22 root", b.Name, b.Port, b.User)
		}
	}
	wantUp := Upgrade{Method: MethodDnf, From: 27, To: 29, RebootTimeout: 60 * time.Minute, DevelBranch: "f29", MinFreeDisk: 5 << 30, Pip: PipReinstall}
	if !reflect.DeepEqual(c.Upgrade, wantUp) {
		t.Errorf("upgrade = %+v, want %+v", c.Upgrade, wantUp)
	}
	wantSSH := SSH{KnownHosts: filepath.Join(home, ".ssh", "known_hosts"), ConnectTimeout: 15 * time.Second, Keepalive: 15 * time.Second}
	if c.SSH != wantSSH {
		t.Errorf("ssh = %+v, want %+v", c.SSH, wantSSH)
	}
	wantData := Data{Root: "/nbhosting", Folders: []string{"students"}, MaxDelete: 1000, MinSourceFraction: 0.5, RoomMargin: 1 << 30}
	if !reflect.DeepEqual(c.Data, wantData) {
		t.Errorf("data = %+v, want %+v", c.Data, wantData)
	}
	if c.App.Services == nil || len(c.App.Services) != 0 {
		t.Errorf("services = %#v, want an empty list", c.App.Services)
	}
	if c.Cleanup.Containers || c.Hooks == nil || len(c.Hooks) != 0 {
		t.Errorf("cleanup %+v hooks %v", c.Cleanup, c.Hooks)
	}
}

// The apt method: suites by release, kept sources, the devel branch named
// for the new suite.
func TestLoadApt(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	c, err := Load("testdata/good/apt.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Upgrade{Method: MethodApt, From: 12, To: 13, RebootTimeout: time.Hour, DevelBranch: "trixie", MinFreeDisk: 5 << 30, Pip: PipReinstall,
		Suites: map[int]string{12: "bookworm", 13: "trixie", 14: "forky"}, KeepSources: []string{"nodesource.sources"}}
	if !reflect.DeepEqual(c.Upgrade, want) {
		t.Errorf("upgrade = %+v, want %+v", c.Upgrade, want)
	}
}

// The lab's file: addresses for hosts, ports, SSH files beside the config,
// zero max_delete and keepalive, and hooks.
func TestLoadLab(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	c, err := Load("testdata/good/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata/good")
	if c.SSH.KnownHosts != filepath.Join(dir, "known_hosts") || c.SSH.Identity != filepath.Join(dir, "keys", "id_ed25519") {
		t.Errorf("relative ssh paths not taken from the file's folder: %+v", c.SSH)
	}
	if c.SSH.Config != "/etc/ssh/ssh_config" {
		t.Errorf("ssh.config = %q", c.SSH.Config)
	}
	if c.SSH.Keepalive != 0 || c.Data.MaxDelete != 0 || c.Data.BackupSuffix != "" || !c.Cleanup.Containers {
		t.Errorf("explicit zero values lost: keepalive %v max_delete %d suffix %q containers %v",
			c.SSH.Keepalive, c.Data.MaxDelete, c.Data.BackupSuffix, c.Cleanup.Containers)
	}
	if c.Upgrade.DevelBranch != "lab/f29" || c.Upgrade.DevelRef != "upstream/lab/f29" || c.Upgrade.MinFreeDisk != 1000 || c.Upgrade.RebootTimeout != 90*time.Second {
		t.Errorf("upgrade = %+v", c.Upgrade)
	}
	if got := [2]string{c.Boxes[0].Addr(), c.Boxes[1].Addr()}; got != [2]string{"127.0.0.2:2222", "127.0.0.2:2223"} {
		t.Errorf("addrs = %v", got)
	}
	want := map[Event]Hooks{
		"redirect": {
			Before: []Hook{{Name: "notify", On: Production, Run: "wall 'production moves now'", Line: 50}},
			After: []Hook{{Name: "smoke", On: "thermals", Run: "curl -fsS http://127.0.1.1:8080/",
				Check: "test -f /tmp/smoke", Undo: "rm -f /tmp/smoke", Line: 54}},
			At: []Hook{},
		},
		"epilogue": {Before: []Hook{}, After: []Hook{{Name: "notify", On: Development, Run: "wall done", Line: 61}}, At: []Hook{}},
	}
	if !reflect.DeepEqual(c.Hooks, want) {
		t.Errorf("hooks =\n%+v\nwant\n%+v", c.Hooks, want)
	}
}

// wantRe reads the expectations at the top of a testdata/bad file.
var wantRe = regexp.MustCompile(`(?m)^# want: (\d+): (.*)$`)

func TestLoadBad(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 30 {
		t.Fatalf("only %d malformed files in testdata/bad", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var wants []string
			for _, m := range wantRe.FindAllStringSubmatch(string(data), -1) {
				wants = append(wants, file+":"+m[1]+": \x00"+m[2])
			}
			if len(wants) == 0 {
				t.Fatalf("%s has no # want: LINE: text line", file)
			}
			checkProblems(t, file, wants)
		})
	}
}

// checkProblems loads file and requires exactly one reported line per
// want, each "FILE:LINE: \x00substring": the line starts with FILE:LINE:
// and holds the substring.
func checkProblems(t *testing.T, file string, wants []string) {
	t.Helper()
	c, err := Load(file)
	if err == nil {
		t.Fatalf("loaded without error: %+v", c)
	}
	if c != nil {
		t.Errorf("a failed Load returned a config")
	}
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("error %T is not a *LoadError: %v", err, err)
	}
	if le.File != file {
		t.Errorf("LoadError.File = %q, want %q", le.File, file)
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(le.Problems) {
		t.Errorf("%d lines for %d problems:\n%s", len(got), len(le.Problems), err)
	}
	used := make([]bool, len(got))
	for _, w := range wants {
		prefix, sub, _ := strings.Cut(w, "\x00")
		found := false
		for i, g := range got {
			if !used[i] && strings.HasPrefix(g, prefix) && strings.Contains(g[len(prefix):], sub) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("missing %s%s\ngot:\n%s", prefix, sub, err)
		}
	}
	for i, g := range got {
		if !used[i] {
			t.Errorf("unexpected problem: %s", g)
		}
	}
	for _, p := range le.Problems {
		if p.Msg == "" || strings.ContainsAny(p.Msg, "\n") || p.Msg != strings.ToLower(p.Msg[:1])+p.Msg[1:] {
			t.Errorf("problem message %q: want one lowercase line", p.Msg)
		}
	}
}

// The issue's own example, checked as the operator reads it.
func TestLoadErrorFormat(t *testing.T) {
	const file = "testdata/bad/unknown-key-line7.yaml"
	_, err := Load(file)
	want := file + `:7: boxes[0]: unknown key "prot" (hint: did you mean port?)`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}

// Every problem of a file is reported, in line order.
func TestLoadReportsAllProblems(t *testing.T) {
	_, err := Load("testdata/bad/many-problems.yaml")
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v", err)
	}
	if len(le.Problems) != 5 {
		t.Fatalf("%d problems, want 5:\n%v", len(le.Problems), err)
	}
	for i := 1; i < len(le.Problems); i++ {
		if le.Problems[i].Line < le.Problems[i-1].Line {
			t.Errorf("problems out of line order:\n%v", err)
		}
	}
}

// Cases a text fixture cannot hold: no bytes at all, a NUL, bad UTF-8,
// a file too large, a file that is not there.
func TestLoadRawBytes(t *testing.T) {
	base, err := os.ReadFile("testdata/good/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want []string // "LINE: substring"
	}{
		{"zero-bytes", nil, []string{"1: file is empty"}},
		{"only-spaces", []byte("  \n\n  \n"), []string{"1: file is empty"}},
		{"nul", append([]byte("version: 1\nboxes:\x00\n"), base...), []string{"2: line holds control character U+0000"}},
		{"latin1", []byte("version: 1\n# caf\xe9\n"), []string{"2: line is not valid UTF-8"}},
		{"huge", make([]byte, maxConfigSize+1), []string{"0: file is larger than 1MiB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "boxes.yaml")
			if err := os.WriteFile(file, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			var wants []string
			for _, w := range tc.want {
				line, sub, _ := strings.Cut(w, ": ")
				if line == "0" {
					wants = append(wants, file+": \x00"+sub)
				} else {
					wants = append(wants, file+":"+line+": \x00"+sub)
				}
			}
			checkProblems(t, file, wants)
		})
	}
	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"))
	var le *LoadError
	if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &le) {
		t.Errorf("missing file: err = %v, want a wrapped fs.ErrNotExist", err)
	}
}

// Issue 10, item 8: without $HOME (cron, systemd-run) ~ is the home folder
// of the user database, as for ssh, so that where works.
func TestLoadHomeUnset(t *testing.T) {
	t.Setenv("HOME", "")
	u, err := user.Current()
	if err != nil || u.HomeDir == "" {
		t.Skipf("no home folder in the user database: %v", err)
	}
	c, err := Load("testdata/good/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(u.HomeDir, ".ssh", "known_hosts"); c.SSH.KnownHosts != want {
		t.Errorf("known_hosts %s, want %s", c.SSH.KnownHosts, want)
	}
}

func TestConfigLookups(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	c, err := Load(shipped)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := c.Box("thermals"); !ok || b.Host != "thermals.inria.fr" {
		t.Errorf("Box(thermals) = %+v, %v", b, ok)
	}
	if _, ok := c.Box("nbhosting"); ok {
		t.Errorf("Box(nbhosting) found a box")
	}
	if b, ok := c.ByFunction(Production); !ok || b.Name != "thurst" {
		t.Errorf("ByFunction(production) = %+v, %v", b, ok)
	}
	if b, ok := c.ByFunction(Development); !ok || b.Name != "thermals" {
		t.Errorf("ByFunction(development) = %+v, %v", b, ok)
	}
	if _, ok := c.ByFunction("staging"); ok {
		t.Errorf("ByFunction(staging) found a box")
	}
	if b, ok := c.Other("thurst"); !ok || b.Name != "thermals" {
		t.Errorf("Other(thurst) = %+v, %v", b, ok)
	}
	if b, ok := c.Other("thermals"); !ok || b.Name != "thurst" {
		t.Errorf("Other(thermals) = %+v, %v", b, ok)
	}
	if _, ok := c.Other("nope"); ok {
		t.Errorf("Other(nope) found a box")
	}
	for _, tc := range []struct {
		b    Box
		want string
	}{
		{Box{Host: "thurst.inria.fr", Port: 22}, "thurst.inria.fr:22"},
		{Box{Host: "127.0.0.2", Port: 2222}, "127.0.0.2:2222"},
		{Box{Host: "::1", Port: 22}, "[::1]:22"},
	} {
		if got := tc.b.Addr(); got != tc.want {
			t.Errorf("Addr(%+v) = %q, want %q", tc.b, got, tc.want)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
	}{
		{"0", 0},
		{"1024", 1024},
		{"10GiB", 10 << 30},
		{"10 GiB", 10 << 30},
		{"10gib", 10 << 30},
		{"500MB", 500_000_000},
		{"1.5GiB", 3 << 29},
		{"0.5KiB", 512},
		{"1kB", 1000},
		{"1KB", 1000},
		{"2TiB", 2 << 40},
		{"3PB", 3e15},
		{"7B", 7},
		{"8191PiB", 8191 << 50},
	} {
		got, err := ParseByteSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "GiB", "10G", "10 M", "-1", "+1", "1e9", "1.", ".5KiB", "1.2.3MB", "0.3B", "8192PiB",
		"99999999999999999999", "10GiBs", "1/2KiB", "0x10", "١٢KiB", strings.Repeat("9", 40)} {
		if got, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	for _, tc := range []struct {
		b    ByteSize
		want string
	}{
		{0, "0B"},
		{1, "1B"},
		{1000, "1kB"},
		{1024, "1KiB"},
		{10 << 30, "10GiB"},
		{500_000_000, "500MB"},
		{2_048_000, "2000KiB"},
		{1023, "1023B"},
		{-5, "-5B"},
		{1 << 62, "4096PiB"},
	} {
		if got := tc.b.String(); got != tc.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tc.b), got, tc.want)
		}
		if tc.b >= 0 {
			if back, err := ParseByteSize(tc.want); err != nil || back != tc.b {
				t.Errorf("ParseByteSize(%q) = %d, %v; want %d back", tc.want, back, err, tc.b)
			}
		}
	}
}

// invariants are what a caller may rely on in a Config Load accepted.
func invariants(t *testing.T, c *Config) {
	t.Helper()
	if c == nil {
		t.Fatal("nil config without an error")
	}
	if c.Version != Version || len(c.Boxes) != 2 {
		t.Fatalf("version %d, %d boxes", c.Version, len(c.Boxes))
	}
	a, b := c.Boxes[0], c.Boxes[1]
	if a.Name == b.Name || a.Function == b.Function || a.Addr() == b.Addr() {
		t.Errorf("boxes not distinct: %+v %+v", a, b)
	}
	for _, x := range c.Boxes {
		if x.Function != Production && x.Function != Development {
			t.Errorf("box %q function %q", x.Name, x.Function)
		}
		if x.Port < 1 || x.Port > 65535 || x.Line < 1 {
			t.Errorf("box %q port %d line %d", x.Name, x.Port, x.Line)
		}
		if o, ok := c.Other(x.Name); !ok || o.Name == x.Name {
			t.Errorf("Other(%q) = %+v, %v", x.Name, o, ok)
		}
	}
	// Whatever is not a command reaches a shell as a plain word.
	words := []string{a.Name, a.Host, a.User, b.Name, b.Host, b.User, c.App.Checkout, c.App.SettingsFile,
		c.Data.Root, c.Upgrade.DevelBranch}
	words = append(words, c.App.Services...)
	words = append(words, c.Data.Folders...)
	for _, fn := range []string{Production, Development} {
		f, ok := c.Functions[fn]
		if !ok {
			t.Fatalf("function %s missing", fn)
		}
		if _, ok := c.ByFunction(fn); !ok {
			t.Errorf("no box with function %s", fn)
		}
		words = append(words, f.Alias, f.AddressUnit)
		for _, kv := range f.Settings {
			if v, ok := kv.Value.(string); ok && (v == "" || strings.ContainsAny(v, "\n\r\x00")) {
				t.Errorf("setting %s = %q", kv.Key, v)
			}
		}
	}
	for _, w := range words {
		if w == "" || Quote(w) != w || strings.HasPrefix(w, "-") {
			t.Errorf("value %q is not a plain shell word", w)
		}
	}
	for _, f := range c.Data.Folders {
		if b := f + c.Data.BackupSuffix; Quote(b) != b || strings.Contains(b, "/") || b == "." || b == ".." {
			t.Errorf("backup of %q with suffix %q is %q", f, c.Data.BackupSuffix, b)
		}
	}
	if len(c.Data.Folders) == 0 || c.App.Install == "" {
		t.Errorf("folders %v install %q", c.Data.Folders, c.App.Install)
	}
	if u := c.Upgrade; u.From <= 0 || u.To <= u.From || u.RebootTimeout <= 0 || u.MinFreeDisk < 0 {
		t.Errorf("upgrade %+v", u)
	}
	switch u := c.Upgrade; u.Method {
	case MethodDnf:
		if u.Suites != nil || u.KeepSources != nil {
			t.Errorf("dnf upgrade with apt keys: %+v", u)
		}
	case MethodApt:
		from, to := u.Suites[u.From], u.Suites[u.To]
		if from == "" || to == "" || from == to {
			t.Errorf("apt suites %v for %d to %d", u.Suites, u.From, u.To)
		}
		for _, w := range []string{from, to} {
			if strings.Trim(w, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
				t.Errorf("suite %q is not a plain lowercase word", w)
			}
		}
		for _, w := range u.KeepSources {
			if Quote(w) != w || strings.HasPrefix(w, "-") || strings.Contains(w, "/") {
				t.Errorf("keep_sources item %q is not a plain file name", w)
			}
		}
	default:
		t.Errorf("method %q", u.Method)
	}
	if s := c.SSH; !filepath.IsAbs(s.KnownHosts) || s.ConnectTimeout <= 0 || s.Keepalive < 0 ||
		s.Identity != "" && !filepath.IsAbs(s.Identity) || s.Config != "" && !filepath.IsAbs(s.Config) {
		t.Errorf("ssh %+v", s)
	}
	if c.Data.MaxDelete < 0 {
		t.Errorf("max_delete %d", c.Data.MaxDelete)
	}
	for ev, h := range c.Hooks {
		if !slices.Contains(Events, ev) {
			t.Errorf("hooks for unknown event %q", ev)
		}
		for _, k := range append(append([]Hook{}, h.Before...), h.After...) {
			if k.Name == "" || k.Run == "" || k.Line < 1 {
				t.Errorf("hook %+v", k)
			}
			if _, ok := c.Box(k.On); !ok && k.On != Production && k.On != Development {
				t.Errorf("hook %q on %q", k.Name, k.On)
			}
		}
	}
}

func TestGoodFilesKeepInvariants(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	files, _ := filepath.Glob("testdata/good/*.yaml")
	for _, f := range append(files, shipped) {
		c, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		invariants(t, c)
	}
}

func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.yaml")
	for _, s := range append(seeds, shipped) {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Setenv("HOME", f.TempDir())
	dir := f.TempDir()
	n := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		n++
		file := filepath.Join(dir, "boxes"+strconv.Itoa(n)+".yaml")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(file)
		c, err := Load(file)
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) == 0 || c != nil {
				t.Fatalf("err %T %v, config %v", err, err, c)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, file+":") {
					t.Fatalf("line %q does not name the file", line)
				}
			}
			return
		}
		invariants(t, c)
	})
}

// A file with a problem on every line lists the first ones and says how
// many more there are, rather than flooding the terminal.
func TestLoadProblemCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\n")
	for i := range 80 {
		fmt.Fprintf(&b, "extra%d: 1\n", i)
	}
	file := filepath.Join(t.TempDir(), "boxes.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(file)
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v", err)
	}
	// 80 unknown keys and 5 missing sections (boxes, functions, app, data,
	// upgrade): 85 problems.
	if len(le.Problems) != maxProblems+1 {
		t.Fatalf("%d problems listed, want %d", len(le.Problems), maxProblems+1)
	}
	last := le.Problems[maxProblems]
	if last.Msg != "35 more problems not shown" {
		t.Errorf("last problem = %+v", last)
	}
	if first := le.Problems[0]; first.Line != 1 || !strings.Contains(first.Msg, "missing boxes") {
		t.Errorf("first problem = %+v, want the missing sections on line 1", first)
	}
}

// FuzzLoadValue puts arbitrary text in one field of a valid file: whatever
// Load accepts must keep the invariants, so no hostile value gets through.
func FuzzLoadValue(f *testing.F) {
	base, err := os.ReadFile("testdata/good/lab.yaml")
	if err != nil {
		f.Fatal(err)
	}
	lines := strings.Split(string(base), "\n")
	for i, v := range []string{"; rm -rf /", "$(reboot)", "`id`", "-oProxyCommand=x", "a\nb", "'", "\"",
		"..", "/x/../y", "~/x", "production", "thurst", "127.0.1.1", "f29..x", "10 GiB", "0s", "-1"} {
		f.Add(uint(i*7), v)
	}
	f.Setenv("HOME", f.TempDir())
	dir := f.TempDir()
	n := 0
	f.Fuzz(func(t *testing.T, at uint, value string) {
		if !utf8.ValidString(value) {
			return // a YAML file is text; raw bytes are FuzzLoad's job
		}
		i := int(at % uint(len(lines)))
		key, _, ok := strings.Cut(lines[i], ": ")
		if !ok || strings.HasPrefix(strings.TrimSpace(key), "#") {
			return
		}
		edited := append([]string{}, lines...)
		edited[i] = key + ": " + yamlQuote(value)
		n++
		file := filepath.Join(dir, "v"+strconv.Itoa(n)+".yaml")
		if err := os.WriteFile(file, []byte(strings.Join(edited, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(file)
		c, err := Load(file)
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("err %T %v", err, err)
			}
			return
		}
		invariants(t, c)
	})
}

// yamlQuote writes s as a YAML double-quoted scalar.
func yamlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == 0xfeff || r == 0x2028 || r == 0x2029:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Issue 10, item 3: two boxes that ssh reaches at the same address once
// the ssh config's HostName and Port apply are the same machine, refused
// before anything runs.
func TestSameMachineThroughTheSSHConfig(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/bad/hook-nul.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer(
		`run: "wall a\0b"`, `run: "true"`,
		"host: thermals.inria.fr", "host: thermals-alias",
		"upgrade:\n", "ssh:\n  config: ./ssh_config\nupgrade:\n",
	).Replace(string(data))
	file := filepath.Join(dir, "boxes.yaml")
	for name, body := range map[string]string{
		"boxes.yaml": cfg,
		"ssh_config": "Host thermals-alias\n  HostName THURST.inria.fr\n  Port 22\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	checkProblems(t, file, []string{file + ":9: \x00boxes[1].host: thermals-alias is THURST.inria.fr:22 by the ssh config, the machine of box thurst"})
}

// The data guards' settings: a fraction written as a whole number or a
// decimal, a margin as a size; 0 keeps only the empty-source guard.
func TestLoadDataGuardSettings(t *testing.T) {
	shippedText, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		yaml     string
		fraction float64
		margin   ByteSize
	}{
		{"  min_source_fraction: 0\n  room_margin: 500MB\n", 0, 500e6},
		{"  min_source_fraction: 1\n", 1, DefaultRoomMargin},
		{"  min_source_fraction: 0.25\n  room_margin: 0\n", 0.25, 0},
	} {
		text := strings.Replace(string(shippedText), "  max_delete: 1000\n", "  max_delete: 1000\n"+tc.yaml, 1)
		file := filepath.Join(t.TempDir(), "boxes.yaml")
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(file)
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if c.Data.MinSourceFraction != tc.fraction || c.Data.RoomMargin != tc.margin {
			t.Errorf("%q: fraction %g margin %s, want %g %s", tc.yaml, c.Data.MinSourceFraction, c.Data.RoomMargin, tc.fraction, tc.margin)
		}
	}
}

// Issue 13, item 6: settings of any Python name with typed values, in
// order; hooks at points, with the line of each point.
func TestLoadTypedSettingsAndHookPoints(t *testing.T) {
	c, err := Load("testdata/good/hook-points.yaml")
	if err != nil {
		t.Fatal(err)
	}
	prod := c.Functions[Production].Settings
	if got := prod.Keys(); !reflect.DeepEqual(got, []string{"server_name", "ssl_certificate", "ssl_certificate_key", "production_box", "workers"}) {
		t.Errorf("keys = %q", got)
	}
	if v, _ := prod.Get("production_box"); v != true {
		t.Errorf("production_box = %#v, want true", v)
	}
	if v, _ := c.Functions[Development].Settings.Get("workers"); v != int64(2) {
		t.Errorf("development workers = %#v, want int64(2)", v)
	}
	if v, _ := prod.Get("server_name"); v != "nbhosting.inria.fr" {
		t.Errorf("server_name = %#v", v)
	}
	if got := c.SettingsKeys(); len(got) != 5 {
		t.Errorf("SettingsKeys = %q", got)
	}
	at := c.Hooks[EventRedirect].At
	if len(at) != 3 || at[0].Point != PointBeforeWindow || at[0].PointLine != 47 || at[0].Undo != "nginx-up" ||
		at[1].Point != PointAfterTakeAddress || at[2].Point != "before:install/thermals" || at[2].On != Development {
		t.Errorf("redirect at = %+v", at)
	}
	if at := c.Hooks[EventUpgradeDev].At; len(at) != 1 || at[0].Point != "before:upgrade-dev/reboot" || at[0].Line != 58 || at[0].PointLine != 61 {
		t.Errorf("upgrade-dev at = %+v", at)
	}
}
