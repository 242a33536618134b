//go:build linux

package lab

import (
	"testing"
	"time"
)

// The lab's web fronts serve a certificate for both functions' names
// from the lab's CA, and nothing else: a wrong name does not verify.
func TestLabTLS(t *testing.T) {
	tl, err := newTLS(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nbhosting.lab", "nbhosting-dev.lab"} {
		if err := tl.verify(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := tl.verify("thurst"); err == nil {
		t.Error("the certificate verifies for thurst")
	}
	dir := t.TempDir()
	a, err := ensureTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := ensureTLS(dir); err != nil || b != a {
		t.Fatalf("a second ensureTLS made another CA: %v", err)
	}
}
