package main

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"boxswap/internal/etcdtest"
	"boxswap/internal/testpki"
)

// pki writes a CA and a certificate it signs (for 127.0.0.1, server and
// client use) as PEM files in dir; it returns their paths.
func pki(t *testing.T, dir, name string) (ca, cert, key string) {
	t.Helper()
	p, err := testpki.Issue(name+" CA", x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, content string) string {
		f := filepath.Join(dir, file)
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	return write(name+"-ca.pem", p.CA), write(name+".pem", p.Cert), write(name+".key", p.Key)
}

// TLS from flags, environment or boxes.yaml: a server that asks for a
// client certificate is reached with the right files, and refused without
// them or with another CA.
func TestEtcdTLS(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := pki(t, dir, "etcd")
	otherCA, _, _ := pki(t, dir, "other")
	c := etcdtest.StartWith(t, 1, etcdtest.Options{TLS: &etcdtest.TLSFiles{CA: ca, Cert: cert, Key: key}})
	cfg := etcdConfig(t)
	url := c.URL("/boxswap/tls")
	tlsFlags := []string{"--etcd-ca", ca, "--etcd-cert", cert, "--etcd-key", key}
	args := func(extra ...string) []string {
		return append([]string{"-c", cfg, "--state", url, "--etcd-lease", "5s"}, extra...)
	}
	if code, out, stderr := runCLI(t, args(append(tlsFlags, "state", "init")...)...); code != 0 {
		t.Fatalf("state init over TLS: exit %d, %s%s", code, out, stderr)
	}
	tlsURL := strings.Replace(url, "etcd://", "etcds://", 1)
	if code, out, stderr := runCLI(t, append([]string{"-c", cfg, "--state", tlsURL}, append(tlsFlags, "where")...)...); code != 0 || !strings.Contains(out, "phase: start") {
		t.Errorf("where on etcds:// (issue 23): exit %d, %s%s", code, out, stderr)
	}
	if code, _, stderr := runCLI(t, args("--etcd-ca", ca, "where")...); code == 0 {
		t.Error("where without a client certificate: accepted")
	} else if !strings.Contains(stderr, "etcd") {
		t.Errorf("the refusal does not say etcd: %s", stderr)
	}
	if code, _, _ := runCLI(t, args("--etcd-ca", otherCA, "--etcd-cert", cert, "--etcd-key", key, "where")...); code == 0 {
		t.Error("where trusting another CA: accepted")
	}
	t.Setenv("BOXSWAP_ETCD_CA", ca)
	t.Setenv("BOXSWAP_ETCD_CERT", cert)
	t.Setenv("BOXSWAP_ETCD_KEY", key)
	if code, out, stderr := runCLI(t, args("where")...); code != 0 || !strings.Contains(out, "phase: start") {
		t.Errorf("where with TLS from the environment: exit %d, %s%s", code, out, stderr)
	}
	t.Setenv("BOXSWAP_ETCD_KEY", "")
	if code, _, stderr := runCLI(t, args("where")...); code != exitUsage || !strings.Contains(stderr, "needs its key") {
		t.Errorf("a client certificate without its key: exit %d, %s", code, stderr)
	}
	t.Setenv("BOXSWAP_ETCD_CA", "")
	t.Setenv("BOXSWAP_ETCD_CERT", "")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("\nstate:\n  url: " + url + "\n  ca: " + ca + "\n  cert: " + cert + "\n  key: " + key + "\n  lease: 5s\n")
	if err := errors.Join(err, f.Close()); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := runCLI(t, "-c", cfg, "where"); code != 0 || !strings.Contains(out, "phase: start") {
		t.Errorf("where with TLS from boxes.yaml: exit %d, %s%s", code, out, stderr)
	}
}
