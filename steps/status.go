package steps

import (
	"context"
	"encoding/json"
	"fmt"
)

// BoxStatus is what RecordStatus stores in the fact BOX/status (JSON).
type BoxStatus struct {
	Release int                   `json:"release"`
	Units   map[string]UnitStatus `json:"units"`
}

// UnitStatus is systemctl's answers for one unit.
type UnitStatus struct {
	Active  string `json:"active"`
	Enabled string `json:"enabled"`
}

type statusStep struct {
	base
	box   string
	units []string
}

// RecordStatus records, in the fact BOX/status, whether each unit is
// active and enabled on box and the release it runs: the epilogue's record
// of how the cycle left the pair. It always runs and undoes nothing.
func RecordStatus(id, box string, units []string) Step {
	s := &statusStep{box: box, units: append([]string(nil), units...)}
	var cmds []string
	for _, u := range units {
		cmds = append(cmds, isActiveCmd(u), isEnabledCmd(u))
	}
	s.base = base{id: id, desc: Description{
		Box:      box,
		Text:     "record the state of " + box,
		Commands: append(cmds, osReleaseCmd),
		Retry:    true,
	}}
	return s
}

func (s *statusStep) Check(context.Context, *Env) (bool, string, error) {
	return false, "always recorded afresh", nil
}

func (s *statusStep) Apply(ctx context.Context, env *Env) error {
	f, err := facts(env)
	if err != nil {
		return err
	}
	st := BoxStatus{Units: map[string]UnitStatus{}}
	for _, u := range s.units {
		seen, err := readUnit(ctx, env, s.box, u)
		if err != nil {
			return err
		}
		st.Units[u] = UnitStatus{Active: seen.active, Enabled: seen.enabled}
	}
	res, err := run(ctx, env, s.box, "reading /etc/os-release", osReleaseCmd, false)
	if err != nil {
		return err
	}
	if st.Release, _, err = releaseOf(res.Stdout); err != nil {
		return fmt.Errorf("%s: %w", s.box, err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return f.Set(s.box+"/status", string(b))
}

func (s *statusStep) Undo(context.Context, *Env) error { return nil }
