package reliability

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// TestARebootThatNeverReturns keeps thermals down once it went down for
// its upgrade reboot: the transition fails at the reboot timeout saying
// what to check; once the box is started, resume completes.
func TestARebootThatNeverReturns(t *testing.T) {
	h := labtest.New(t, lab.Options{RebootDelay: 2 * time.Second})
	h.EditConfig(func(s string) string { return strings.Replace(s, "reboot_timeout: 2m", "reboot_timeout: 6s", 1) })
	pidFile := filepath.Join(h.Lab.Dir, lab.Thermals, "init.pid")
	initPID, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	p := h.Start(nil, "--yes", "next")
	// The box is going down when its init is gone: crash it then, so the
	// supervisor keeps it down instead of booting it.
	deadline := time.Now().Add(60 * time.Second)
	for {
		cur, _ := os.ReadFile(pidFile)
		if string(cur) != string(initPID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("thermals never went down: %s", p.Wait())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := h.Lab.Crash(lab.Thermals); err != nil {
		t.Fatal(err)
	}
	r := p.Wait()
	if r.Code == 0 {
		t.Fatalf("next succeeded with thermals down: %s", r)
	}
	for _, want := range []string{"thermals did not come back within 6s", "check its console", "boxswap resume"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("the error does not say %q: %s", want, r)
		}
	}
	v := h.Where()
	if !v.Pending() || v.Transition.FailedStep != "upgrade-dev/reboot" {
		t.Fatalf("where after the timeout: %+v", v.Transition)
	}
	if err := h.Lab.Start(lab.Thermals); err != nil {
		t.Fatal(err)
	}
	if r := h.Run("--yes", "resume"); r.Code != 0 {
		t.Fatalf("resume once thermals is back: %s", r)
	}
	checkTable(t, h, "dev-upgraded")
	figure(t, "reboot that never returns: failed at the 6s timeout after %s, resumed once the box was started", r.Took.Round(100*time.Millisecond))
}
