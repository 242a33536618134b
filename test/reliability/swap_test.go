package reliability

import (
	"testing"

	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// TestSwapWithoutUpgrade: a cycle whose upgrade.to is the boxes' own
// release moves production to the other box and back on real boxes,
// upgrade-prod finding no release to change (the state is seeded past
// upgrade-dev); the boxes match the seed's table after each transition. labtest's MovesOnly, which the
// tests of the moves start from, is this cycle seeded at dev-upgraded.
func TestSwapWithoutUpgrade(t *testing.T) {
	h := labtest.New(t, lab.Options{Kind: lab.KindSystemd, OS: lab.OSDebian})
	h.MovesOnly()
	rel := h.Lab.Info.From
	boots := map[string]int{lab.Thurst: h.Boots(lab.Thurst), lab.Thermals: h.Boots(lab.Thermals)}
	for _, ph := range []string{"redirected", "prod-upgraded", "switched-back", "done"} {
		if r := h.Run("--yes", "next"); r.Code != 0 {
			t.Fatalf("next to %s: %s", ph, r)
		}
		if bad := h.CheckTable(ph, rel, rel); len(bad) > 0 {
			t.Errorf("%s: %v", ph, bad)
		}
	}
	for box, n := range boots {
		if got := h.Boots(box); got != n {
			t.Errorf("%s booted %d times during a swap without a release change", box, got-n)
		}
	}
}
