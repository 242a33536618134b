package lab

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// boxSpec is DIR/BOX/box.json: everything the box's init needs to provision
// and boot the box. It holds private keys, so it is written 0600.
type boxSpec struct {
	Name     string `json:"name"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Function string `json:"function"` // at provisioning
	Peer     string `json:"peer"`
	PeerHost string `json:"peer_host"`
	HTTPPort int    `json:"http_port"`
	Files    int    `json:"files"`
	FileSize int    `json:"file_size"`

	HostKeys       map[string]string `json:"host_keys"` // file name in /etc/ssh → PEM
	UserKey        string            `json:"user_key"`  // /root/.ssh/id_ed25519
	UserPub        string            `json:"user_pub"`
	AuthorizedKeys []string          `json:"authorized_keys"`
	KnownHosts     []string          `json:"known_hosts"`
}

// boxConfig is /var/lib/lab/box.json inside a box: what the shims need.
type boxConfig struct {
	Name     string `json:"name"`
	HTTPPort int    `json:"http_port"`
}

// functionSettings are the lab's sitesettings.py values per function.
var functionSettings = map[string][3]string{
	"production":  {"nbhosting.lab", "/etc/pki/tls/certs/nbhosting_lab.crt", "/etc/pki/tls/private/nbhosting.lab.key"},
	"development": {"nbhosting-dev.lab", "/etc/pki/tls/certs/nbhosting-dev_lab.crt", "/etc/pki/tls/private/nbhosting-dev.lab.key"},
}

// keyPair is a generated SSH key: its OpenSSH private PEM and public line.
type keyPair struct {
	Private string
	Public  string // "type base64"
}

func newEd25519(comment string) (keyPair, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return keyPair{}, fmt.Errorf("lab: generate key: %w", err)
	}
	return marshalKey(priv, comment)
}

func newECDSA(comment string) (keyPair, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, fmt.Errorf("lab: generate key: %w", err)
	}
	return marshalKey(priv, comment)
}

func marshalKey(priv any, comment string) (keyPair, error) {
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return keyPair{}, fmt.Errorf("lab: marshal key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return keyPair{}, fmt.Errorf("lab: marshal key: %w", err)
	}
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	return keyPair{Private: string(pem.EncodeToMemory(block)), Public: pub}, nil
}

// knownHost formats a known_hosts line for host:port.
func knownHost(host string, port int, pub string) string {
	if port == 22 {
		return host + " " + pub
	}
	return fmt.Sprintf("[%s]:%d %s", host, port, pub)
}

// boxesYAML is the lab's boxes.yaml: the shipped layout with the lab's
// addresses, names and small limits.
func boxesYAML(port int) string {
	return labYAML("# boxswap lab: written by \"lab up\"; see test/lab.\n", ThurstHost, ThermalsHost, port,
		"nbh-uwsgi, nbh-monitor, docker", `upgrade:
  from: 27
  to: 29
  reboot_timeout: 2m
  devel_branch: f29
  min_free_disk: 1MiB
`)
}

// labYAML is the template of both kinds' boxes.yaml: the shipped layout
// with the lab's addresses, names and small limits.
func labYAML(head, thurst, thermals string, port int, services, upgrade string) string {
	p, d := functionSettings["production"], functionSettings["development"]
	return fmt.Sprintf(`%[10]sversion: 1

boxes:
  - name: thurst
    host: %[1]s
    port: %[3]d
    user: root
    function: production
  - name: thermals
    host: %[2]s
    port: %[3]d
    user: root
    function: development

functions:
  production:
    alias: nbhosting.lab
    address_unit: nbhosting-addr
    settings:
      server_name: %[4]s
      ssl_certificate: %[5]s
      ssl_certificate_key: %[6]s
  development:
    alias: nbhosting-dev.lab
    address_unit: nbhosting-dev-addr
    settings:
      server_name: %[7]s
      ssl_certificate: %[8]s
      ssl_certificate_key: %[9]s

app:
  checkout: /root/nbhosting
  settings_file: /root/nbhosting/django/nbh_main/sitesettings.py
  install: cd /root/nbhosting && ./install.sh
  services: [%[11]s]

data:
  root: /nbhosting
  folders: [students, raw]
  backup_suffix: .prod
  max_delete: 1000

%[12]s
cleanup:
  containers: false

ssh:
  known_hosts: known_hosts
  identity: id_ed25519
  connect_timeout: 5s
  keepalive: 5s

hooks: {}
`, thurst, thermals, port, p[0], p[1], p[2], d[0], d[1], d[2], head, services, upgrade)
}

func osRelease(release int) string {
	return fmt.Sprintf(`NAME=Fedora
VERSION="%[1]d (Server Edition)"
ID=fedora
VERSION_ID=%[1]d
PRETTY_NAME="Fedora %[1]d (Server Edition)"
ANSI_COLOR="0;34"
CPE_NAME="cpe:/o:fedoraproject:fedora:%[1]d"
HOME_URL="https://fedoraproject.org/"
VARIANT="Server Edition"
VARIANT_ID=server
`, release)
}

func publicOf(pemKey string) (string, error) {
	signer, err := ssh.ParsePrivateKey([]byte(pemKey))
	if err != nil {
		return "", fmt.Errorf("lab: host key: %w", err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))), nil
}
