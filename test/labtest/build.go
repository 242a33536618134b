package labtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"boxswap/test/lab/lab"
)

var (
	// buildTags are the tags Boxswap builds with: "boxswap_fault" in a
	// package whose TestMain is MainWithFaults.
	buildTags string
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// Main runs a lab test binary: the lab's own processes first, then the
// tests; it removes the boxswap binary Boxswap built.
func Main(m *testing.M) {
	if code, ok := lab.Child(); ok {
		os.Exit(code)
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// MainWithFaults is Main for a package that injects faults
// (BOXSWAP_FAULT): the boxswap that Boxswap builds is the lab's rehearsal
// binary, built with -tags boxswap_fault; the shipped one has no fault
// injection.
func MainWithFaults(m *testing.M) {
	buildTags = "boxswap_fault"
	Main(m)
}

// Required says whether a lab test that cannot run must fail (CI) rather
// than skip.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("BOXSWAP_LAB_REQUIRED") == "1"
}

// Require fails the test in CI, and skips it elsewhere, when the lab cannot
// run on this machine.
func Require(t testing.TB) {
	t.Helper()
	err := lab.Supported()
	if err == nil {
		if _, serr := os.Stat("/usr/sbin/sshd"); serr != nil {
			err = lab.ErrNoSSHD
		} else if _, rerr := exec.LookPath("rsync"); rerr != nil {
			err = fmt.Errorf("lab: no rsync: install it with apt-get install -y rsync")
		}
	}
	if err == nil {
		return
	}
	if Required() {
		t.Fatalf("lab test required (CI or BOXSWAP_LAB_REQUIRED=1) but cannot run: %v", err)
	}
	t.Skipf("%v", err)
}

// Boxswap builds cmd/boxswap once per test binary and returns its path
// (with -tags boxswap_fault under MainWithFaults).
func Boxswap(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		buildDir, err = os.MkdirTemp("", "boxswap-labtest-")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(buildDir, "boxswap")
		// No VCS stamp: a checkout owned by another user still builds.
		cmd := exec.Command("go", "build", "-buildvcs=false", "-tags="+buildTags, "-o", buildBin, "./cmd/boxswap")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("labtest: go build -tags=%s ./cmd/boxswap: %v\n%s", buildTags, err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// moduleRoot finds the directory holding go.mod, from the test's directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("labtest: no go.mod above the test's directory")
		}
		dir = parent
	}
}

// LockMachine takes the machine-wide lab lock (lab.MachineLock) for the
// rest of t, waiting for another test binary's lab to end.
func LockMachine(t testing.TB) {
	t.Helper()
	unlock, err := lab.LockMachine()
	if err != nil {
		t.Fatalf("labtest: %v", err)
	}
	t.Cleanup(unlock)
}
