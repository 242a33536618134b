package reliability

import (
	"maps"
	"strings"
	"testing"

	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// TestDataGuard: a sync from a box that does not hold production, from a
// missing or an empty folder, or deleting more than max_delete on the
// destination is refused before anything is deleted, with the numbers
// shown; --force max-delete overrides and is recorded in the history.
func TestDataGuard(t *testing.T) {
	h := labtest.New(t, lab.Options{})
	const root = "/nbhosting"
	advance(t, h, "dev-upgraded")
	// thermals' development data (~40 files in students) is what the first
	// sync would delete: above a max_delete of 5.
	h.EditConfig(func(s string) string { return strings.Replace(s, "max_delete: 1000", "max_delete: 5", 1) })
	devData := h.Sums(lab.Thermals, root, "students", "raw")
	prodData := h.Sums(lab.Thurst, root, "students", "raw")
	refusals := 0
	refused := func(what string, want ...string) labtest.Result {
		t.Helper()
		r := h.Run("--yes", map[bool]string{true: "resume", false: "next"}[h.Where().Pending()])
		if r.Code != 5 {
			t.Errorf("%s: want exit 5 (refused): %s", what, r)
		}
		for _, w := range want {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("%s: the refusal does not say %q: %s", what, w, r)
			}
		}
		if got := h.Sums(lab.Thermals, root, "students", "raw"); !maps.Equal(got, devData) {
			t.Errorf("%s: thermals' data changed under a refused sync: %v, was %v", what, got, devData)
		}
		if got := h.Sums(lab.Thurst, root, "raw"); got["raw"] != prodData["raw"] {
			t.Errorf("%s: thurst's data changed: %v", what, got)
		}
		refusals++
		return r
	}

	h.Sh(lab.Thurst, "systemctl stop nbhosting-addr")
	refused("wrong direction", "refusing to sync students from thurst: it does not hold production", "wrong direction?")
	h.Sh(lab.Thurst, "systemctl start nbhosting-addr")

	h.Sh(lab.Thurst, "mv /nbhosting/students /nbhosting/students.away")
	refused("missing folder", "/nbhosting/students does not exist there")
	h.Sh(lab.Thurst, "mkdir /nbhosting/students")
	refused("empty folder", "/nbhosting/students is empty there")
	h.Sh(lab.Thurst, "rmdir /nbhosting/students && mv /nbhosting/students.away /nbhosting/students")

	if got := h.Sums(lab.Thurst, root, "students", "raw"); !maps.Equal(got, prodData) {
		t.Fatalf("thurst's data not restored by the test: %v", got)
	}
	md := refused("max_delete", "the dry run would delete", "more than max_delete (5)", "--force max-delete")
	figure(t, "data guard: max_delete refusal: %s", strings.SplitN(md.Stderr, "\n", 2)[0])

	r := h.Run("--yes", "--force", "max-delete", "resume")
	if r.Code != 0 {
		t.Fatalf("resume --force max-delete: %s", r)
	}
	checkTable(t, h, "redirected")
	if got := h.Sums(lab.Thermals, root, "students", "raw"); !maps.Equal(got, prodData) {
		t.Errorf("thermals' data after the forced sync %v, want thurst's %v", got, prodData)
	}
	found := false
	for _, e := range h.Log().History {
		if e.Kind == "override" && strings.Contains(e.Detail, "max-delete") {
			found = true
		}
	}
	if !found {
		t.Errorf("--force max-delete is not in the history: %+v", h.Log().History)
	}
	figure(t, "data guard: %d refusals (wrong direction, missing folder, empty folder, max_delete), nothing deleted; --force max-delete recorded in the history", refusals)
}
