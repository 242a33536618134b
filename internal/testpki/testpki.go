// Package testpki makes a CA and a certificate it signs, as PEM, for the
// tests and the lab: etcd's TLS test pair (cmd/boxswap), the lab's web
// fronts (test/lab/lab).
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"time"
)

// PEM is a CA's certificate, and a certificate it signs with its key.
type PEM struct{ CA, Cert, Key string }

// Issue makes a CA named caName and signs leaf with it: leaf says the
// subject, names and extended key usages; Issue sets its serial, key usage
// and validity (both certificates from an hour before now to now+life).
func Issue(caName string, leaf x509.Certificate, now time.Time, life time.Duration) (PEM, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return PEM{}, err
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: caName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(life),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return PEM{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return PEM{}, err
	}
	leaf.SerialNumber, leaf.KeyUsage = big.NewInt(2), x509.KeyUsageDigitalSignature
	leaf.NotBefore, leaf.NotAfter = ca.NotBefore, ca.NotAfter
	leafDER, err := x509.CreateCertificate(rand.Reader, &leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return PEM{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return PEM{}, err
	}
	enc := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	return PEM{CA: enc("CERTIFICATE", caDER), Cert: enc("CERTIFICATE", leafDER), Key: enc("EC PRIVATE KEY", keyDER)}, nil
}
