package lab

import (
	"os"
	"path/filepath"
)

// childMarker is the first argument of the lab's own processes (supervisor,
// box init, unit servers); nothing else starts a binary with it.
const childMarker = "__lab"

// Child runs this process as one of the lab's own processes or shims when
// it was started as one, and reports whether it did; the caller then exits
// with code. Call it first in main and in TestMain: the lab re-executes its
// binary for every box process, and boxes run it as systemctl, dnf, ….
func Child() (code int, handled bool) {
	if len(os.Args) == 0 {
		return 0, false
	}
	if len(os.Args) > 2 && os.Args[1] == childMarker {
		return runInternal(os.Args[2], os.Args[3:]), true
	}
	name := filepath.Base(os.Args[0])
	if shim, ok := shims[name]; ok && inBox() {
		return shim(os.Args[1:]), true
	}
	return 0, false
}

// inBox says whether this process runs inside a lab box, where the shims
// may act; outside one, the binary is only the lab CLI or a test.
func inBox() bool {
	_, err := os.Stat(boxConfigPath)
	return err == nil
}
