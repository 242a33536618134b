package boxes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 15: the state section loads with paths made absolute; a password
// written in boxes.yaml is never quoted back in the problems.
func TestLoadStateSection(t *testing.T) {
	shipped, err := os.ReadFile(filepath.Join("..", "boxes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "boxes.yaml")
	body := string(shipped) + "state:\n  url: etcd://10.0.0.5:2379,10.0.0.6:2379/boxswap/site-a\n  ca: ca.pem\n  user: boxswap\n  password_file: pw\n  lease: 20s\n"
	if err := os.WriteFile(good, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	want := State{URL: "etcd://10.0.0.5:2379,10.0.0.6:2379/boxswap/site-a", CA: filepath.Join(dir, "ca.pem"), User: "boxswap",
		PasswordFile: filepath.Join(dir, "pw"), Lease: 20 * time.Second}
	got := c.State
	got.Line = 0
	if got != want {
		t.Errorf("State = %+v, want %+v", got, want)
	}
	_, err = Load(filepath.Join("testdata", "bad", "state-section.yaml"))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the problems quote the password: %v", err)
	}
}
