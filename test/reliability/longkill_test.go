package reliability

import (
	"maps"
	"testing"
	"time"

	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// TestKillInsideLongSteps SIGKILLs boxswap from outside, at a time, inside
// the long steps: during the reboot wait, during install.sh, mid-rsync
// (first pass and final pass), then resumes; the transitions complete with
// one reboot, the table right and the data bit-identical.
func TestKillInsideLongSteps(t *testing.T) {
	h := labtest.New(t, lab.Options{RebootDelay: 2 * time.Second})
	const root = "/nbhosting"
	prodData := h.Sums(lab.Thurst, root, "students", "raw")
	for _, b := range lab.BoxNames {
		slowInstall(t, h, b)
		slowRsync(t, h, b)
	}
	boots := h.Boots(lab.Thermals)
	kills := 0
	type kill struct {
		verb, step string
		delay      time.Duration
	}
	for _, k := range []kill{
		{"next", "upgrade-dev/reboot", time.Second},
		{"resume", "upgrade-dev/install", time.Second},
	} {
		if killDuring(t, h, k.verb, k.step, k.delay) {
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
		{"next", "redirect/sync/students", 1500 * time.Millisecond},
		{"resume", "redirect/install/thermals", time.Second},
		{"resume", "redirect/final-sync/raw", 1500 * time.Millisecond},
	} {
		if killDuring(t, h, k.verb, k.step, k.delay) {
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
	figure(t, "kills inside long steps (reboot wait, install.sh, rsync first and final pass): %d of 5 landed and recovered", kills)
}
