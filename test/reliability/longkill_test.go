package reliability

import (
	"maps"
	"testing"
	"time"

	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// TestKillInsideLongSteps SIGKILLs boxswap from outside inside the long
// steps, each at a gate that holds the step's program there: during the
// reboot wait (the box's reboot asked, held before it goes down), during
// install.sh, mid-rsync (first pass and final pass), then resumes; the
// transitions complete with one reboot, the table right and the data
// bit-identical.
func TestKillInsideLongSteps(t *testing.T) {
	h := labtest.New(t, lab.Options{RebootDelay: 2 * time.Second})
	const root = "/nbhosting"
	prodData := h.Sums(lab.Thurst, root, "students", "raw")
	gateRsync(t, h, lab.Thurst)
	boots := h.Boots(lab.Thermals)
	kills := 0
	type kill struct{ verb, step, box, gate string }
	for _, k := range []kill{
		{"next", "upgrade-dev/reboot", lab.Thermals, "reboot"},
		{"resume", "upgrade-dev/install", lab.Thermals, "install"},
	} {
		if killDuring(t, h, k.verb, k.step, k.box, k.gate) {
			kills++
		}
	}
	if r := h.Run("--yes", "resume"); r.Code != 0 {
		t.Fatalf("resume: %s", r)
	}
	checkTable(t, h, "dev-upgraded")
	if got := h.Boots(lab.Thermals) - boots; got != 1 {
		t.Errorf("thermals booted %d times in upgrade-dev, want 1", got)
	}
	for _, k := range []kill{
		{"next", "redirect/sync/students", lab.Thurst, "rsync"},
		{"resume", "redirect/install/thermals", lab.Thermals, "install"},
		{"resume", "redirect/final-sync/raw", lab.Thurst, "rsync"},
	} {
		if killDuring(t, h, k.verb, k.step, k.box, k.gate) {
			kills++
		}
	}
	if r := h.Run("--yes", "resume"); r.Code != 0 {
		t.Fatalf("resume: %s", r)
	}
	checkTable(t, h, "redirected")
	if got := h.Sums(lab.Thermals, root, "students", "raw"); !maps.Equal(got, prodData) {
		t.Errorf("thermals' data %v, want thurst's %v", got, prodData)
	}
	if got := h.Sums(lab.Thurst, root, "students", "raw"); !maps.Equal(got, prodData) {
		t.Errorf("thurst's data changed: %v", got)
	}
	figure(t, "kills inside long steps (reboot wait, install.sh, rsync first and final pass), each at a gate holding the step's program: %d of 5 landed in their step and recovered", kills)
}
