package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"boxswap/internal/etcdtest"
)

// pki writes a CA and a certificate it signs (for 127.0.0.1, server and
// client use) as PEM files in dir; it returns their paths.
func pki(t *testing.T, dir, name string) (ca, cert, key string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kDER, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, kind string, b []byte) string {
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write(name+"-ca.pem", "CERTIFICATE", caDER), write(name+".pem", "CERTIFICATE", der), write(name+".key", "EC PRIVATE KEY", kDER)
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
}
