//go:build !boxswap_fault

package main

import (
	"fmt"
	"io"
	"os"

	"boxswap/steps"
)

// faultWrap is nil: the shipped boxswap has no fault injection. The lab
// builds its rehearsal binary with -tags boxswap_fault (fault_on.go). A
// BOXSWAP_FAULT left set is said to be ignored, so that a rehearsal run
// with the wrong binary does not pass for one that injected faults.
func faultWrap(stderr io.Writer) func([]steps.Step) ([]steps.Step, error) {
	if _, ok := os.LookupEnv("BOXSWAP_FAULT"); ok {
		fmt.Fprintf(stderr, "boxswap: warning: BOXSWAP_FAULT is set but ignored: this boxswap is built without fault injection (go build -tags boxswap_fault, for the lab only)\n")
	}
	return nil
}
