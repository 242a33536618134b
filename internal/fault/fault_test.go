package fault

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := map[string]string{
		"upgrade-dev/b@before:kill":                       "upgrade-dev/b@before:kill",
		"redirect/take-address/thermals@applied:fail":     "redirect/take-address/thermals@applied:fail",
		" a@undo:kill , b@before:fail":                    "a@undo:kill,b@before:fail",
		"redirect/hook/before/x@y@applied:kill":           "redirect/hook/before/x@y@applied:kill",
		"upgrade-dev/preflight/reach/thurst@applied:kill": "upgrade-dev/preflight/reach/thurst@applied:kill",
		"redirect/take-address/thermals@running:stop":     "redirect/take-address/thermals@running:stop",
	}
	for spec, want := range good {
		f, err := Parse(spec)
		if err != nil {
			t.Errorf("%q: %v", spec, err)
			continue
		}
		if f.String() != want {
			t.Errorf("%q parsed as %q, want %q", spec, f, want)
		}
	}
	for _, spec := range []string{"", " ", "a", "a@before", "@before:kill", "a@during:kill", "a@before:explode", "a:kill@before", "a@before:kill,", "a@before:kill,b"} {
		if f, err := Parse(spec); err == nil {
			t.Errorf("%q accepted: %v", spec, f)
		} else if !strings.Contains(err.Error(), Env) {
			t.Errorf("%q: error does not name %s: %v", spec, Env, err)
		}
	}
}
