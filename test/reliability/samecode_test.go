package reliability

import (
	"strings"
	"testing"

	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// TestSameCodeRealBoxes: the same code on both boxes, on real boxes
// (Fedora lab) with the lab's shared upstream served over HTTP.
//   - a fix pushed upstream before upgrade-dev is in thermals' devel
//     branch (upgrade-dev fetches, then branches at origin/f29);
//   - a fix committed on thermals' devel branch after redirect (as
//     developers validate on the new production) is what upgrade-prod
//     checks out on thurst (read from thermals at run time, fetched box
//     to box);
//   - thurst's checkout moved off that commit: switch-back refuses before
//     stopping anything (thermals still serves), naming --force checkout;
//     the override passes and is recorded in the history.
func TestSameCodeRealBoxes(t *testing.T) {
	h := labtest.New(t, lab.Options{Kind: lab.KindSystemd, OS: lab.OSFedora})
	const co = "/root/nbhosting"
	head := func(box string) string { return h.Sh(box, "git -C "+co+" rev-parse HEAD") }

	if got := h.Sh(lab.Thermals, "git -C "+co+" remote get-url origin && git -C "+co+" status --porcelain"); got != lab.UpstreamURL {
		t.Fatalf("thermals' checkout: origin and status %q, want %s and clean (sitesettings.py ignored)", got, lab.UpstreamURL)
	}
	fix, err := h.Lab.PushUpstream("f29", "fix.txt", "fixed upstream\n", "a fix for f29, pushed upstream")
	if err != nil {
		t.Fatal(err)
	}
	advance(t, h, "dev-upgraded")
	if got := head(lab.Thermals); got != fix {
		t.Fatalf("thermals' devel branch at %s, want upstream's f29 %s (fetched before branching)", got, fix)
	}
	advance(t, h, "redirected")

	validated := h.Sh(lab.Thermals, "cd "+co+" && echo validated > fix2.txt && git add fix2.txt && "+
		"git -c user.name=dev -c user.email=dev@lab commit -qm 'validated on thermals' && git rev-parse HEAD")
	advance(t, h, "prod-upgraded")
	if got := head(lab.Thurst); got != validated {
		t.Fatalf("thurst's devel branch at %s, want the commit thermals runs %s", got, validated)
	}
	if got := h.Sh(lab.Thurst, "git -C "+co+" symbolic-ref --short HEAD && cat "+co+"/fix2.txt"); got != "f29\nvalidated" {
		t.Errorf("thurst's checkout: %q", got)
	}

	// thurst moved off the commit: switch-back refuses before stopping anything.
	h.Sh(lab.Thurst, "git -C "+co+" checkout -q HEAD~1")
	r := h.Run("--yes", "next")
	if r.Code == 0 || !strings.Contains(r.Stderr, "--force checkout") || !strings.Contains(r.Stderr, "nothing was stopped") {
		t.Fatalf("switch-back with thurst off the commit: %s", r)
	}
	figure(t, "same code: switch-back refusal: %s", strings.SplitN(r.Stderr, "\n", 2)[0])
	checkTable(t, h, "prod-upgraded")
	if got := h.Sh(lab.Thermals, "systemctl is-active nbh-uwsgi nbh-monitor nbhosting-addr"); got != "active\nactive\nactive" {
		t.Errorf("thermals after the refusal: %q, want its app and address still up", got)
	}
	if r := h.Run("--yes", "--force", "checkout", "resume"); r.Code != 0 {
		t.Fatalf("resume --force checkout: %s", r)
	}
	checkTable(t, h, "switched-back")
	found := false
	for _, e := range h.Log().History {
		if e.Kind == "override" && strings.Contains(e.Detail, "checkout") {
			found = true
		}
	}
	if !found {
		t.Errorf("--force checkout is not in the history: %+v", h.Log().History)
	}
}
