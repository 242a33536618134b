package fsm

import (
	"fmt"

	"boxswap/boxes"
)

// BoxView is one box as the phase table says it stands.
type BoxView struct {
	Name     string `json:"name"`
	Host     string `json:"host"`
	Function string `json:"function"` // production, development or none
	Release  int    `json:"release"`
}

// None is the function of a box that holds neither address.
const None = "none"

// Roles names the two boxes of a cycle: Prod is the box boxes.yaml declares
// production (thurst), Dev the one it declares development (thermals).
// boxes.yaml describes the pair at the start and the end of a cycle; in
// between, where each function is follows from the phase alone.
type Roles struct {
	Prod, Dev boxes.Box
}

// RolesOf returns the declared roles. Load has checked there is one of each.
func RolesOf(cfg *boxes.Config) (Roles, error) {
	p, ok1 := cfg.ByFunction(boxes.Production)
	d, ok2 := cfg.ByFunction(boxes.Development)
	if !ok1 || !ok2 {
		return Roles{}, fmt.Errorf("%s: need one production and one development box", cfg.File)
	}
	return Roles{Prod: p, Dev: d}, nil
}

// Table returns both boxes as they stand at phase, for a cycle upgrading
// from release from to release to: the seed's table.
func Table(r Roles, phase Phase, from, to int) []BoxView {
	pf, df := boxes.Production, boxes.Development
	pr, dr := from, from
	switch phase {
	case Start:
	case DevUpgraded:
		dr = to
	case Redirected:
		pf, df, dr = None, boxes.Production, to
	case ProdUpgraded:
		pf, df, pr, dr = None, boxes.Production, to, to
	case SwitchedBack:
		df, pr, dr = None, to, to
	case Done:
		pr, dr = to, to
	}
	return []BoxView{
		{Name: r.Prod.Name, Host: r.Prod.Host, Function: pf, Release: pr},
		{Name: r.Dev.Name, Host: r.Dev.Host, Function: df, Release: dr},
	}
}
