package reliability

import (
	"strconv"
	"strings"
	"testing"

	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

const settingsFile = "/root/nbhosting/django/nbh_main/sitesettings.py"

// Issue 13, item 6 on real boxes: hooks at points inside the moves run on
// the box their on: names where they run (after redirect's take,
// production is thermals; after switch-back's, thurst again), the one at
// before:install/thermals before install.sh; typed settings are written as
// Python literals; a settings file that is a symbolic link is edited in
// its target and stays a link, through the whole swap.
func TestHooksAtPointsAndTypedSettings(t *testing.T) {
	h := labtest.New(t, lab.Options{Kind: lab.KindSystemd, OS: lab.OSDebian})
	h.MovesOnly()
	prodAddr := h.Lab.Info.ProductionAddress
	// thermals keeps its settings in /etc, linked from the checkout.
	h.Sh(lab.Thermals, "mkdir -p /etc/nbhosting && mv "+settingsFile+" /etc/nbhosting/sitesettings.py && ln -s /etc/nbhosting/sitesettings.py "+settingsFile)
	h.Sh(lab.Thurst, "printf 'production_box = True\\nworkers = 8\\n' >> "+settingsFile)
	h.Sh(lab.Thermals, "printf 'production_box = False\\nworkers = 2\\n' >> "+settingsFile)
	h.EditConfig(func(s string) string {
		// functions: production's settings come first, development's next.
		if parts := strings.Split(s, "    settings:\n"); len(parts) == 3 {
			s = parts[0] + "    settings:\n      production_box: true\n      workers: 8\n" +
				parts[1] + "    settings:\n      production_box: false\n      workers: 2\n" + parts[2]
		} else {
			t.Fatalf("the lab's boxes.yaml has %d settings sections, want 2", len(parts)-1)
		}
		return strings.Replace(s, "hooks: {}\n", `hooks:
  redirect:
    at:
      - name: smoke
        on: production
        run: ip -o addr | grep -qF ' `+prodAddr+`/' && hostname > /root/hook-smoke
        point: after-take-address
      - name: early
        on: development
        run: cat /root/nbhosting/install.log 2>/dev/null | wc -l > /root/hook-early
        point: before:install/thermals
  switch-back:
    at:
      - name: home
        on: production
        run: ip -o addr | grep -qF ' `+prodAddr+`/' && hostname > /root/hook-home
        point: after-take-address
`, 1)
	})
	installs := h.InstallRuns(lab.Thermals)

	if r := h.Run("--yes", "next"); r.Code != 0 {
		t.Fatalf("redirect: %s", r)
	}
	if !h.Exists(lab.Thermals, "/root/hook-smoke") || h.Exists(lab.Thurst, "/root/hook-smoke") {
		t.Errorf("the after-take-address hook on production did not run on thermals (and only there)")
	} else if got := h.Sh(lab.Thermals, "cat /root/hook-smoke"); got != lab.Thermals {
		t.Errorf("hook-smoke says %q", got)
	}
	if got := h.Sh(lab.Thermals, "cat /root/hook-early"); got != strconv.Itoa(installs) {
		t.Errorf("the hook at before:install/thermals saw %s runs of install.sh, want %d (it runs before it)", got, installs)
	}
	if got := h.InstallRuns(lab.Thermals); got != installs+1 {
		t.Errorf("install.sh ran %d times during redirect, want 1", got-installs)
	}
	linkKept(t, h, `production_box = True`, `workers = 8`)

	for _, ph := range []string{"prod-upgraded", "switched-back", "done"} {
		if r := h.Run("--yes", "next"); r.Code != 0 {
			t.Fatalf("next to %s: %s", ph, r)
		}
	}
	if !h.Exists(lab.Thurst, "/root/hook-home") || h.Exists(lab.Thermals, "/root/hook-home") {
		t.Errorf("switch-back's after-take-address hook on production did not run on thurst (and only there)")
	}
	linkKept(t, h, `production_box = False`, `workers = 2`)
	if got := h.Sh(lab.Thurst, "grep -E '^(production_box|workers) =' "+settingsFile); got != "production_box = True\nworkers = 8" {
		t.Errorf("thurst's settings after the swap: %q", got)
	}
	if bad := h.CheckTable("done", h.Lab.Info.From, h.Lab.Info.From); len(bad) > 0 {
		t.Errorf("done: %v", bad)
	}
}

// linkKept checks that thermals' settings file is still the link to
// /etc/nbhosting/sitesettings.py, whose lines are want.
func linkKept(t *testing.T, h *labtest.Harness, want ...string) {
	t.Helper()
	if got := h.Sh(lab.Thermals, "readlink "+settingsFile); got != "/etc/nbhosting/sitesettings.py" {
		t.Errorf("the settings link now points to %q", got)
	}
	if h.Sh(lab.Thermals, "test -f /etc/nbhosting/sitesettings.py && test ! -L /etc/nbhosting/sitesettings.py && echo ok") != "ok" {
		t.Errorf("the link's target is not a regular file")
	}
	got := h.Sh(lab.Thermals, "cat /etc/nbhosting/sitesettings.py") + "\n"
	for _, w := range want {
		if !strings.Contains(got, "\n"+w+"\n") {
			t.Errorf("thermals' settings lack %q:\n%s", w, got)
		}
	}
	if h.Exists(lab.Thermals, "/etc/nbhosting/sitesettings.py.boxswap-new") || h.Exists(lab.Thermals, settingsFile+".boxswap-new") {
		t.Errorf("a temporary settings file is left")
	}
}
