package fsm

import (
	"fmt"
	"testing"

	"boxswap/boxes"
)

// The seed's table (DESIGN.md): function and release of thurst and thermals per phase.
func TestTableMatchesTheSeed(t *testing.T) {
	r := Roles{Prod: boxes.Box{Name: "thurst", Host: "thurst.inria.fr"}, Dev: boxes.Box{Name: "thermals", Host: "thermals.inria.fr"}}
	want := map[Phase]string{
		Start:        "thurst production 27 | thermals development 27",
		DevUpgraded:  "thurst production 27 | thermals development 29",
		Redirected:   "thurst none 27 | thermals production 29",
		ProdUpgraded: "thurst none 29 | thermals production 29",
		SwitchedBack: "thurst production 29 | thermals none 29",
		Done:         "thurst production 29 | thermals development 29",
	}
	for phase, w := range want {
		tb := Table(r, phase, 27, 29)
		got := fmt.Sprintf("%s %s %d | %s %s %d", tb[0].Name, tb[0].Function, tb[0].Release, tb[1].Name, tb[1].Function, tb[1].Release)
		if got != w {
			t.Errorf("%s: got %q, want %q", phase, got, w)
		}
	}
}
