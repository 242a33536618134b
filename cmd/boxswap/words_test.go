package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"boxswap/internal/etcdtest"
)

// The first line's count is the number of problems found, not the length
// of the list shown (whose last line stands for the rest).
func TestProblemCountIsTheTotal(t *testing.T) {
	cfg := shippedCopy(t)
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 70 {
		fmt.Fprintf(f, "junk%d: 1\n", i)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "-c", cfg, "where")
	if code != exitUsage || !strings.Contains(errOut, "has 70 problems:") || !strings.Contains(errOut, ": 20 more problems not shown") {
		t.Errorf("exit %d, want %d, 70 problems of which 20 not shown:\n%s", code, exitUsage, errOut)
	}
}

// Each hint is right for what happened and for the backend: no removal
// suggested for a device, no file advice for an etcd prefix, and an etcd
// that answered (wanting a user name) is not said silent.
func TestHintsFitTheCase(t *testing.T) {
	cfg := shippedCopy(t)
	code, _, errOut := runCLI(t, "-c", cfg, "--state", "/dev/null", "where")
	if code != exitState || strings.Contains(errOut, "remove it") || !strings.Contains(errOut, "a device") {
		t.Errorf("--state /dev/null: exit %d, want %d, naming a device, not asking to remove it:\n%s", code, exitState, errOut)
	}

	c := etcdtest.Start(t, 1)
	cli := c.Client()
	ctx := context.Background()
	url := c.URL("/boxswap/hints")
	if code, _, errOut := runCLI(t, "-c", cfg, "--state", url, "state", "init"); code != 0 {
		t.Fatalf("state init: exit %d: %s", code, errOut)
	}
	// A record damaged under the prefix.
	if _, err := cli.Put(ctx, "/boxswap/hints/meta", "{not json"); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "-c", cfg, "--state", url, "where")
	if code != exitState || strings.Contains(errOut, "backup (moving it aside") || strings.Contains(errOut, "state file from a backup") || !strings.Contains(errOut, "etcdctl") {
		t.Errorf("a damaged etcd record: exit %d, want %d, with etcd's words, not a file's:\n%s", code, exitState, errOut)
	}

	enableEtcdAuth(t, c)
	t.Setenv("BOXSWAP_ETCD_USER", "")
	code, _, errOut = runCLI(t, "-c", cfg, "--state", url, "where")
	if code != exitState || strings.Contains(errOut, "did not answer") || !strings.Contains(errOut, "--etcd-user") {
		t.Errorf("etcd wants a user name: exit %d, want %d, saying so and naming --etcd-user:\n%s", code, exitState, errOut)
	}
	t.Setenv("BOXSWAP_ETCD_USER", "root")
	t.Setenv("BOXSWAP_ETCD_PASSWORD", "wrong")
	code, _, errOut = runCLI(t, "-c", cfg, "--state", url, "where")
	if strings.Contains(errOut, "did not answer") || strings.Contains(errOut, "wrong") {
		t.Errorf("a wrong etcd password: exit %d, said silent or printed the password:\n%s", code, errOut)
	}
}

// enableEtcdAuth turns authentication on in c, with user root, password
// rootpw.
func enableEtcdAuth(t *testing.T, c *etcdtest.Cluster) {
	t.Helper()
	cli, ctx := c.Client(), context.Background()
	for _, err := range []error{
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err }(),
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err }(),
		func() error { _, err := cli.AuthEnable(ctx); return err }(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}
