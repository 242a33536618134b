package reliability

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"boxswap/test/labtest"
)

var fullFlag = flag.Bool("full", false, "run the full matrices (every kill point and every rollback point), not CI's sample")

// full says whether to run the full matrices: -full or BOXSWAP_RELIABILITY_FULL=1.
func full() bool { return *fullFlag || os.Getenv("BOXSWAP_RELIABILITY_FULL") == "1" }

// TestMain builds the lab's rehearsal boxswap (-tags boxswap_fault): the
// tests arm BOXSWAP_FAULT, which the shipped binary ignores.
func TestMain(m *testing.M) { labtest.MainWithFaults(m) }

// Releases of the lab's cycle.
const from, to = 27, 29

// cycle is the seed's transitions, in order, with the phase each reaches.
var cycle = []struct{ event, phase string }{
	{"upgrade-dev", "dev-upgraded"},
	{"redirect", "redirected"},
	{"upgrade-prod", "prod-upgraded"},
	{"switch-back", "switched-back"},
	{"epilogue", "done"},
}

// figure logs a figure for docs/reliability.md in a greppable form.
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("FIGURE %s", fmt.Sprintf(format, args...))
}

func fault(step, point, action string) []string {
	return []string{"BOXSWAP_FAULT=" + step + "@" + point + ":" + action}
}

// checkTable fails t when the boxes do not match the seed's table at phase.
func checkTable(t *testing.T, h *labtest.Harness, phase string) {
	t.Helper()
	if bad := h.CheckTable(phase, from, to); len(bad) > 0 {
		t.Errorf("boxes do not match the table at %s:\n  %s", phase, strings.Join(bad, "\n  "))
	}
}

// advance runs next to the end and checks the phase it reaches.
func advance(t *testing.T, h *labtest.Harness, phase string) {
	t.Helper()
	r := h.Run("--yes", "next")
	if r.Code != 0 {
		t.Fatalf("%s", r)
	}
	if got := h.Where().Phase; got != phase {
		t.Fatalf("phase %s after next, want %s", got, phase)
	}
}
