//go:build boxswap_fault

package main

import (
	"io"

	"boxswap/internal/fault"
	"boxswap/steps"
)

// faultWrap arms the lab's fault injection from BOXSWAP_FAULT. Only a
// binary built with -tags boxswap_fault has it (docs/reliability.md).
func faultWrap(io.Writer) func([]steps.Step) ([]steps.Step, error) {
	f := fault.FromEnv()
	if f == nil {
		return nil
	}
	return f.Wrap
}
