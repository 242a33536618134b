//go:build !boxswap_fault

package main

import (
	"strings"
	"testing"
)

// The shipped boxswap has no fault switch: BOXSWAP_FAULT arms nothing, and
// says so (issue 11).
func TestTheShippedBinaryIgnoresBoxswapFault(t *testing.T) {
	t.Setenv("BOXSWAP_FAULT", "upgrade-dev/preflight/reach/thurst@before:kill")
	var stderr strings.Builder
	if w := faultWrap(&stderr); w != nil {
		t.Fatal("the shipped binary armed BOXSWAP_FAULT")
	}
	if !strings.Contains(stderr.String(), "ignored") {
		t.Fatalf("no warning: %q", stderr.String())
	}
}
