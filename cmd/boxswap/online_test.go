package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"boxswap/boxes"
	"boxswap/boxes/sshtest"
)

// pair is two boxes served by sshtest on loopback, with the files a
// boxes.yaml for them needs. Commands run for real in sh on this machine;
// ssh on the "boxes" is the real OpenSSH client, through a wrapper that
// points it at the pair's own known_hosts and key instead of the user's.
type pair struct {
	dir              string
	thurst, thermals *sshtest.Server
	knownHosts       string // the operator's
	boxKnownHosts    string // the boxes' own, for box-to-box ssh
	identity         string
	bin              string // first on the boxes' PATH
}

func newPair(t *testing.T, extra ...sshtest.Option) *pair {
	t.Helper()
	realSSH, err := exec.LookPath("ssh")
	if err != nil {
		t.Fatalf("the box-to-box check needs the OpenSSH client: %v", err)
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	dir := t.TempDir()
	p := &pair{
		dir:           dir,
		knownHosts:    filepath.Join(dir, "known_hosts"),
		boxKnownHosts: filepath.Join(dir, "box_known_hosts"),
		identity:      filepath.Join(dir, "id_ed25519"),
		bin:           filepath.Join(dir, "bin"),
	}
	if err := os.Mkdir(p.bin, 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %s -F /dev/null -o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o IdentityAgent=none -i %s \"$@\"\n",
		boxes.Quote(realSSH), boxes.Quote(p.boxKnownHosts), boxes.Quote(p.identity))
	p.script(t, "ssh", wrapper)
	opts := func(box string) []sshtest.Option {
		return append([]sshtest.Option{sshtest.Env("PATH="+p.bin+":"+os.Getenv("PATH"), "BOX="+box)}, extra...)
	}
	p.thurst = sshtest.New(t, opts("thurst")...)
	p.thermals = sshtest.New(t, opts("thermals")...)
	// One key for the operator and for box to box.
	p.thurst.WriteIdentity(p.identity)
	p.thermals.Authorize(p.thurst.ClientSigner().PublicKey())
	both := p.thurst.HostKeyLine("") + "\n" + p.thermals.HostKeyLine("") + "\n"
	p.write(t, p.knownHosts, both)
	p.write(t, p.boxKnownHosts, both)
	p.write(t, filepath.Join(dir, "ssh_config"), "")
	// The operator's own ssh-agent stays out of the test.
	t.Setenv("SSH_AUTH_SOCK", "")
	return p
}

func (p *pair) write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (p *pair) script(t *testing.T, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(p.bin, name), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// config writes a boxes.yaml for the pair; root and settings are the data
// root and the settings file, on this machine.
func (p *pair) config(t *testing.T, root, settings string) string {
	t.Helper()
	y := fmt.Sprintf(`version: 1
boxes:
  - name: thurst
    host: 127.0.0.1
    port: %d
    user: root
    function: production
  - name: thermals
    host: 127.0.0.1
    port: %d
    user: root
    function: development
functions:
  production:
    alias: nbhosting.inria.fr
    address_unit: nbhosting-addr
    settings:
      server_name: nbhosting.inria.fr
      ssl_certificate: /etc/pki/tls/certs/nbhosting_inria_fr.crt
      ssl_certificate_key: /etc/pki/tls/private/nbhosting.inria.fr.key
  development:
    alias: nbhosting-dev.inria.fr
    address_unit: nbhosting-dev-addr
    settings:
      server_name: nbhosting-dev.inria.fr
      ssl_certificate: /etc/pki/tls/certs/nbhosting-dev_inria_fr.crt
      ssl_certificate_key: /etc/pki/tls/private/nbhosting-dev.inria.fr.key
app:
  checkout: /root/nbhosting
  settings_file: %s
  install: cd /root/nbhosting && ./install.sh
  services: [nbh-uwsgi, nbh-monitor, docker]
data:
  root: %s
  folders: [students, raw]
  backup_suffix: .prod
  max_delete: 1000
upgrade:
  from: 27
  to: 29
ssh:
  known_hosts: %s
  identity: %s
  config: %s
  connect_timeout: 5s
`, p.thurst.Port(), p.thermals.Port(), settings, root, p.knownHosts, p.identity, filepath.Join(p.dir, "ssh_config"))
	path := filepath.Join(p.dir, "boxes.yaml")
	p.write(t, path, y)
	return path
}

func TestCheckOnline(t *testing.T) {
	p := newPair(t)
	cfg := p.config(t, "/nbhosting", "/root/nbhosting/django/nbh_main/sitesettings.py")

	code, stdout, stderr := runCLI(t, "-c", cfg, "check")
	if code != exitOK {
		t.Fatalf("check: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"boxes.yaml: ok\n",
		"thurst: reachable, host key known\n",
		"thurst: reaches thermals over ssh for rsync\n",
		"thermals: reachable, host key known\n",
		"thermals: reaches thurst over ssh for rsync\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("check output lacks %q:\n%s", want, stdout)
		}
	}
	// Each box was asked to reach the other exactly as the syncs will.
	toThermals := fmt.Sprintf("ssh -p %d -o BatchMode=yes -o StrictHostKeyChecking=yes root@127.0.0.1 true", p.thermals.Port())
	toThurst := fmt.Sprintf("ssh -p %d -o BatchMode=yes -o StrictHostKeyChecking=yes root@127.0.0.1 true", p.thurst.Port())
	if got := p.thurst.Commands(); !slices.Contains(got, "true") || !slices.Contains(got, toThermals) {
		t.Errorf("thurst ran %q, want true and %q", got, toThermals)
	}
	if got := p.thermals.Commands(); !slices.Contains(got, toThurst) {
		t.Errorf("thermals ran %q, want %q", got, toThurst)
	}
	// The operator used one connection to thurst for both of its
	// commands; the other one is thermals' ssh.
	if n := p.thurst.Connections(); n != 2 {
		t.Errorf("thurst: %d connections, want 2 (boxswap's and thermals')", n)
	}
}

func TestCheckOnlineUnknownHostKey(t *testing.T) {
	p := newPair(t)
	cfg := p.config(t, "/nbhosting", "/x/sitesettings.py")
	p.write(t, p.knownHosts, p.thurst.HostKeyLine("")+"\n")

	code, stdout, stderr := runCLI(t, "-c", cfg, "--json", "check")
	if code != exitUnreachable {
		t.Fatalf("check: exit %d, want %d\n%s\n%s", code, exitUnreachable, stdout, stderr)
	}
	// Under --json stdout holds one document: the report, with the error
	// main exits with.
	var rep checkJSON
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("report: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Errorf("stdout holds more than one JSON document:\n%s", stdout)
	}
	if e := rep.Error; e == nil || e.Code != exitUnreachable || e.Kind != "unreachable" || !strings.Contains(e.Message, "thermals") {
		t.Errorf("error member: %+v", e)
	}
	if rep.OK || len(rep.Boxes) != 2 {
		t.Fatalf("report: %+v", rep)
	}
	th := rep.Boxes[1]
	if th.Name != "thermals" || th.Reachable || th.Fingerprint != ssh.FingerprintSHA256(p.thermals.HostPublicKey()) {
		t.Errorf("thermals: %+v, want unreachable with fingerprint %s", th, ssh.FingerprintSHA256(p.thermals.HostPublicKey()))
	}
	if !strings.Contains(th.Error, "ssh-keyscan") {
		t.Errorf("thermals: the error does not say how to trust the key: %s", th.Error)
	}
	// boxswap ran nothing there; the only command is thurst's ssh "true".
	if got := p.thermals.Commands(); !slices.Equal(got, []string{"true"}) {
		t.Errorf("thermals ran %q, want only thurst's ssh true", got)
	}
	// thurst itself is fine, and reaching thermals from it works.
	if tu := rep.Boxes[0]; !tu.Reachable || tu.Peer == nil || !tu.Peer.OK {
		t.Errorf("thurst: %+v", tu)
	}
}

func TestCheckOnlineBoxToBoxRefused(t *testing.T) {
	p := newPair(t)
	cfg := p.config(t, "/nbhosting", "/x/sitesettings.py")
	// The boxes know only thurst's key: thurst cannot reach thermals.
	p.write(t, p.boxKnownHosts, p.thurst.HostKeyLine("")+"\n")

	code, stdout, stderr := runCLI(t, "-c", cfg, "check")
	if code != exitFailure {
		t.Fatalf("check: exit %d, want %d\n%s\n%s", code, exitFailure, stdout, stderr)
	}
	if !strings.Contains(stdout, "thurst: FAILED: cannot reach thermals over ssh for rsync") {
		t.Errorf("stdout:\n%s", stdout)
	}
	if !strings.Contains(stdout, "thermals: reaches thurst over ssh for rsync") {
		t.Errorf("stdout:\n%s", stdout)
	}
	if !strings.Contains(stderr, "thurst: ssh to thermals: exit 255") || !strings.Contains(stderr, "known_hosts") {
		t.Errorf("stderr does not say what failed and what to do:\n%s", stderr)
	}
}
