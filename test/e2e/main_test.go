package e2e

import (
	"testing"

	"boxswap/test/labtest"
)

// TestMain lets the test binary be the lab binary (the boxes' processes
// re-execute it); labtest builds boxswap once, for the first test.
func TestMain(m *testing.M) { labtest.Main(m) }
