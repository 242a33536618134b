package reliability

import (
	"strings"
	"testing"
	"time"

	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// TestARebootThatNeverReturns keeps thermals down once it goes down for
// its upgrade reboot (a power cut while boxswap waits for it; 15 s, time
// enough to see it wait and cut the power): the
// transition fails at the reboot timeout saying
// what to check; once the box is started, resume completes.
func TestARebootThatNeverReturns(t *testing.T) {
	h := labtest.New(t, lab.Options{RebootDelay: 2 * time.Second})
	h.EditConfig(func(s string) string { return strings.Replace(s, "reboot_timeout: 2m", "reboot_timeout: 15s", 1) })
	// Power cut once the reboot is asked and boxswap waits for it: the
	// box, held up at its gate until then, stays down.
	p, _, _ := holdIn(t, h, lab.Thermals, "reboot", "upgrade-dev/reboot", "--yes", "next")
	h.WaitOutput(p, waitingFor(lab.Thermals), time.Minute)
	if err := h.Lab.Crash(lab.Thermals); err != nil {
		t.Fatal(err)
	}
	r := p.Wait()
	if r.Code == 0 {
		t.Fatalf("next succeeded with thermals down: %s", r)
	}
	for _, want := range []string{"thermals did not come back within 15s", "check its console", "boxswap resume"} {
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
	figure(t, "reboot that never returns: failed at the 15s timeout after %s, resumed once the box was started", r.Took.Round(100*time.Millisecond))
}
