package fsm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"boxswap/steps"
)

// Issue 13, item 1: a step with RevertTo that fails (the check through
// the production address) undoes the done steps back to the window's
// start, each recorded, and fails the transition; resume runs them again.
func TestAFailedCheckMovesBackToTheWindowStart(t *testing.T) {
	r := newRig(t)
	var plan []steps.Step
	for _, n := range []string{"pre", "window", "sync", "take", "check"} {
		plan = append(plan, &fakeStep{w: r.w, id: "upgrade-dev/" + n})
	}
	check := plan[4].(*fakeStep)
	check.revertTo, check.failures, check.applyErr = "upgrade-dev/window", 1, errors.New("production is not served by thermals")
	r.plans[UpgradeDev] = plan
	a, err := r.eng.Next(context.Background())
	if !errors.Is(err, ErrMovedBack) || !strings.Contains(err.Error(), "undone: upgrade-dev/take, upgrade-dev/sync, upgrade-dev/window") {
		t.Fatalf("next: %v, want ErrMovedBack naming the steps undone", err)
	}
	if got, want := r.statuses(a), "failed pre=done/1 window=undone/1 sync=undone/1 take=undone/1 check=failed/1"; got != want {
		t.Fatalf("attempt %q, want %q", got, want)
	}
	if a.FailedStep != "upgrade-dev/check" {
		t.Fatalf("failed step %q", a.FailedStep)
	}
	if j := r.w.journal(); !strings.HasSuffix(j, "fail:upgrade-dev/check undo:upgrade-dev/take undo:upgrade-dev/sync undo:upgrade-dev/window") {
		t.Fatalf("journal %q", j)
	}
	a, err = r.eng.Resume(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.statuses(a), "done pre=done/1 window=done/2 sync=done/2 take=done/2 check=done/2"; got != want {
		t.Fatalf("after resume %q, want %q", got, want)
	}
	if r.phase() != DevUpgraded {
		t.Fatalf("phase %s", r.phase())
	}
}
