package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"boxswap/boxes"
)

// The lab's boxes.yaml must load with boxswap's own strict loader, with
// the lab's addresses and SSH files next to it.
func TestBoxesYAMLLoads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "boxes.yaml")
	if err := os.WriteFile(path, []byte(boxesYAML(2345)), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := boxes.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Boxes) != 2 || c.Boxes[0].Name != Thurst || c.Boxes[0].Host != ThurstHost || c.Boxes[0].Function != boxes.Production ||
		c.Boxes[1].Name != Thermals || c.Boxes[1].Host != ThermalsHost || c.Boxes[1].Port != 2345 {
		t.Errorf("boxes: %+v", c.Boxes)
	}
	if c.SSH.Identity != filepath.Join(dir, "id_ed25519") || c.SSH.KnownHosts != filepath.Join(dir, "known_hosts") {
		t.Errorf("ssh: %+v", c.SSH)
	}
	for fn, want := range functionSettings {
		got := c.Functions[fn].Settings
		var vals [3]string
		for i, k := range []string{"server_name", "ssl_certificate", "ssl_certificate_key"} {
			v, _ := got.Get(k)
			vals[i], _ = v.(string)
		}
		if vals != want {
			t.Errorf("%s settings: %+v, want %v", fn, got, want)
		}
	}
	if c.Functions[boxes.Production].AddressUnit != "nbhosting-addr" || c.Functions[boxes.Development].AddressUnit != "nbhosting-dev-addr" {
		t.Errorf("address units: %+v", c.Functions)
	}
	if c.Upgrade.From != Release || c.Upgrade.To != 29 {
		t.Errorf("upgrade: %+v", c.Upgrade)
	}
}

func TestKeysAndKnownHosts(t *testing.T) {
	for _, gen := range []func(string) (keyPair, error){newEd25519, newECDSA} {
		k, err := gen("root@thurst")
		if err != nil {
			t.Fatal(err)
		}
		signer, err := ssh.ParsePrivateKey([]byte(k.Private))
		if err != nil {
			t.Fatal(err)
		}
		pub, err := publicOf(k.Private)
		if err != nil || pub != k.Public {
			t.Errorf("public key %q, want %q (%v)", pub, k.Public, err)
		}
		line := knownHost(ThurstHost, 2222, k.Public)
		_, hosts, key, _, _, err := ssh.ParseKnownHosts([]byte(line))
		if err != nil || len(hosts) != 1 || hosts[0] != "[127.0.0.11]:2222" ||
			string(key.Marshal()) != string(signer.PublicKey().Marshal()) {
			t.Errorf("known_hosts line %q: hosts %v err %v", line, hosts, err)
		}
	}
	if got := knownHost("h", 22, "ssh-ed25519 AAAA"); got != "h ssh-ed25519 AAAA" {
		t.Errorf("port 22: %q", got)
	}
}

func TestOSRelease(t *testing.T) {
	s := osRelease(29)
	for _, want := range []string{"\nID=fedora\n", "\nVERSION_ID=29\n", `PRETTY_NAME="Fedora 29 (Server Edition)"`} {
		if !strings.Contains(s, want) {
			t.Errorf("os-release lacks %q:\n%s", want, s)
		}
	}
}

// The real boxes' boxes.yaml (sdBoxesYAML) loads too, for both OS paths,
// with what it adds to the shared template: the functions' addresses and
// the app check (a line of the template it is added after that moved
// would drop it silently).
func TestSdBoxesYAMLLoads(t *testing.T) {
	for osName, spec := range osSpecs {
		path := filepath.Join(t.TempDir(), "boxes.yaml")
		if err := os.WriteFile(path, []byte(sdBoxesYAML(spec)), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := boxes.Load(path)
		if err != nil {
			t.Fatalf("%s: %v", osName, err)
		}
		prod, dev := c.Functions[boxes.Production], c.Functions[boxes.Development]
		if prod.Address != sdProduction || prod.Interface != "host0" || dev.Address != sdDevelopment || dev.Interface != "host0" {
			t.Errorf("%s: addresses: %+v", osName, c.Functions)
		}
		if c.App.Check == nil || c.App.Check.CA != BoxCAFile {
			t.Errorf("%s: app.check: %+v", osName, c.App.Check)
		}
		if c.Boxes[0].Host != sdThurst || c.Upgrade.From != spec.from || c.Upgrade.To != spec.to || c.Upgrade.DevelBranch != spec.develBranch {
			t.Errorf("%s: boxes %+v, upgrade %+v", osName, c.Boxes, c.Upgrade)
		}
	}
}
