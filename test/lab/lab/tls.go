//go:build linux

package lab

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"boxswap/internal/testpki"
)

// Where the boxes find the lab's TLS files: the CA that app.check trusts
// (boxes.yaml's app.check.ca), and nginx's certificate for the functions'
// names, signed by it.
const (
	BoxCAFile   = "/etc/nbhosting/tls/lab-ca.pem"
	boxCertFile = "/etc/nginx/tls/nbhosting.pem"
	boxKeyFile  = "/etc/nginx/tls/nbhosting.key"
)

// labTLS is the lab's CA and the web fronts' certificate, PEM.
type labTLS struct{ ca, cert, key string }

// ensureTLS makes, once per lab (DIR/tls), a CA and a certificate for the
// production and development names signed by it; a lab brought up again
// reads them back.
func ensureTLS(dir string) (labTLS, error) {
	d := filepath.Join(dir, "tls")
	files := []string{"ca.pem", "nbhosting.pem", "nbhosting.key"}
	var t labTLS
	if raw, err := readAll(d, files); err == nil {
		t = labTLS{raw[0], raw[1], raw[2]}
		return t, nil
	}
	t, err := newTLS(time.Now())
	if err != nil {
		return t, err
	}
	if err := os.MkdirAll(d, 0o700); err != nil {
		return t, err
	}
	for i, content := range []string{t.ca, t.cert, t.key} {
		if err := writeFile(filepath.Join(d, files[i]), []byte(content), 0o600); err != nil {
			return t, err
		}
	}
	return t, nil
}

func readAll(dir string, names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		raw, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		out = append(out, string(raw))
	}
	return out, nil
}

// newTLS makes a CA and a server certificate for nbhosting.lab and
// nbhosting-dev.lab (both boxes serve either function in turn).
func newTLS(now time.Time) (labTLS, error) {
	p, err := testpki.Issue("boxswap lab CA", x509.Certificate{
		Subject:     pkix.Name{CommonName: "nbhosting.lab"},
		DNSNames:    []string{"nbhosting.lab", "nbhosting-dev.lab"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, now, 10*365*24*time.Hour)
	return labTLS{p.CA, p.Cert, p.Key}, err
}

// verify checks that cert is the CA's for name: what curl on a box does.
func (t labTLS) verify(name string) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(t.ca)) {
		return errors.New("lab tls: bad CA")
	}
	b, _ := pem.Decode([]byte(t.cert))
	if b == nil {
		return errors.New("lab tls: bad certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return err
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
		return fmt.Errorf("lab tls: %w", err)
	}
	return nil
}
