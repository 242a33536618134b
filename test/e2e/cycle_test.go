package e2e

import (
	"fmt"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"

	"boxswap/boxes"
	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// The lab's layout (test/lab writes it into DIR/boxes.yaml).
const (
	settingsFile = "/root/nbhosting/django/nbh_main/sitesettings.py"
	dataRoot     = "/nbhosting"
)

var folders = []string{"students", "raw"}

// phase is one row of the seed's table (DESIGN.md), as the boxes and
// `where` must show it once the row's transition is done; which box holds
// which function on which release is labtest.Table's.
type phase struct {
	event string // the transition that leads here; "" for the cycle's start
	name  string // the persisted phase after it
	next  string // the next event; "" once the cycle is done
	// Per box, in lab.BoxNames order: the function whose three values its
	// settings file holds (a box without a function keeps the last ones).
	settings [2]string
}

var cycleTable = []phase{
	{"", "start", "upgrade-dev", [2]string{"production", "development"}},
	{"upgrade-dev", "dev-upgraded", "redirect", [2]string{"production", "development"}},
	{"redirect", "redirected", "upgrade-prod", [2]string{"production", "production"}},
	{"upgrade-prod", "prod-upgraded", "switch-back", [2]string{"production", "production"}},
	{"switch-back", "switched-back", "epilogue", [2]string{"production", "production"}},
	{"epilogue", "done", "", [2]string{"production", "development"}},
}

// rows returns, per box in lab.BoxNames order, labtest.Table's row at
// phase for a cycle from → to, with "none" for no function as where
// shows it.
func rows(t *testing.T, phase string, from, to int) [2]labtest.Row {
	t.Helper()
	tu, tm, ok := labtest.Table(phase, from, to)
	if !ok {
		t.Fatalf("no table row for phase %s", phase)
	}
	r := [2]labtest.Row{tu, tm}
	for i := range r {
		if r[i].Function == "" {
			r[i].Function = "none"
		}
	}
	return r
}

// rehearsal is one lab and what was recorded before anything ran.
type rehearsal struct {
	h        *labtest.Harness
	original map[string]string // box → its settings file before anything ran
	// moving adds up the time spent in next and resume, the transitions
	// themselves, to log the length of a cycle without the checks.
	moving time.Duration
	// special runs a transition of the first cycle its own way (the
	// faults of issue 12) in place of next --yes.
	special map[string]func(t *testing.T)
}

// TestCycleFedora takes real boxes (systemd-nspawn, real dnf and rpm, the
// offline upgrade applied in a boot of its own) through a whole cycle (27
// → 29) and a second one (29 → 31) from where the first ended: the second
// is what tests the .prod basis and renaming over an older backup. The
// seed's table is checked on the boxes after every transition.
func TestCycleFedora(t *testing.T) {
	r := newRehearsal(t, lab.Options{Kind: lab.KindSystemd, OS: lab.OSFedora, Files: 12, FileSize: 512})
	// The second cycle's upgrade-dev was done by hand (issue 12): the
	// download, then dnf system-upgrade reboot; next recognises it.
	// The first cycle's upgrade-prod has thurst's power cut in the middle
	// of the offline rpm transaction, the second's its dnf killed there
	// (faults_fedora_test.go).
	r.special = map[string]func(t *testing.T){"1/upgrade-prod": r.upgradeProdCrashOffline, "2/upgrade-dev": r.upgradeDevByHand,
		"2/upgrade-prod": r.upgradeProdKillDnf}
	plan := r.h.MustRun("plan", "--offline", "--commands", "--wide").Stdout
	if !t.Run("cycle 27 to 29", func(t *testing.T) { r.cycle(t, 1, 27, 29) }) {
		return
	}
	r.h.T = t
	optionsPassed(t, r.h, plan)
	t.Run("second cycle 29 to 31", func(t *testing.T) {
		r.h.T = t
		rewriteUpgrade(t, r.h, 29, 31)
		r.cycle(t, 2, 29, 31)
	})
}

// TestCycleDebian takes real boxes (systemd-nspawn, real apt) through a
// whole cycle from Debian 12 to 13, checking the seed's table on the boxes
// after every transition.
//
// The cycle's one real release upgrade per box also carries the faults a
// real box meets (issue 12), so they cost no upgrade of their own:
// upgrade-dev loses the operator's link in the middle of the apt
// transaction and a pip package cannot be reinstalled; upgrade-prod is
// first refused at its gate, then has dpkg killed inside the box in the
// middle of its transaction, then the box's power cut in the middle of
// the transaction run again.
func TestCycleDebian(t *testing.T) {
	r := newRehearsal(t, lab.Options{Kind: lab.KindSystemd, OS: lab.OSDebian, Files: 12, FileSize: 512})
	r.special = map[string]func(t *testing.T){
		"1/upgrade-dev":  r.upgradeDevCutAndPip,
		"1/upgrade-prod": r.upgradeProdKillAndCrash,
	}
	r.cycle(t, 1, 12, 13)
	// The apt sources: the distribution's moved to trixie, the third-party
	// one (nbh-thirdparty.list, suite "stable") disabled, apt happy.
	for _, b := range lab.BoxNames {
		src := r.h.Sh(b, "cd /etc/apt/sources.list.d && ls && grep -h '^Suites:' debian.sources && apt-get -q update >/dev/null && echo updated")
		if strings.Contains(src, "\nnbh-thirdparty.list\n") || !strings.Contains(src, "nbh-thirdparty.list.") ||
			!strings.Contains(src, "Suites: trixie") || strings.Contains(src, "Suites: bookworm") || !strings.HasSuffix(src, "updated") {
			t.Errorf("%s: apt sources after the cycle:\n%s", b, src)
		}
	}
}

// newRehearsal starts a lab and records each box's settings file.
func newRehearsal(t *testing.T, opts lab.Options) *rehearsal {
	h := labtest.New(t, opts)
	// The state file is the default one, beside boxes.yaml, as an operator's.
	h.ImplicitState = true
	r := &rehearsal{h: h, original: map[string]string{}}
	for _, b := range lab.BoxNames {
		r.original[b] = h.ShRaw(b, "cat "+boxes.Quote(settingsFile))
	}
	if values(r.original[lab.Thurst]) == values(r.original[lab.Thermals]) {
		t.Fatalf("the lab's boxes start with the same settings values: the settings checks could not fail\n%s", r.original[lab.Thurst])
	}
	h.MustRun("check")
	return r
}

// move runs a boxswap verb that moves the boxes (next, resume), adding
// its time to r.moving.
func (r *rehearsal) move(args ...string) labtest.Result {
	res := r.h.Run(args...)
	r.moving += res.Took
	return res
}

// mustMove is move failing the test unless boxswap exits 0.
func (r *rehearsal) mustMove(t *testing.T, args ...string) {
	t.Helper()
	if res := r.move(args...); res.Code != 0 {
		t.Fatalf("%s", res)
	}
}

// cycle runs the five transitions of one cycle and checks each phase. The
// first cycle also watches `where` while a transition with a reboot runs,
// and writes data on the production box between the first sync pass and
// the final one of both moves.
func (r *rehearsal) cycle(t *testing.T, n, from, to int) {
	r.h.T = t
	r.checkPhase(t, cycleTable[0], n, from, to)
	startProd := r.sums(t, lab.Thurst, "")
	if n == 1 && maps.Equal(startProd, r.sums(t, lab.Thermals, "")) {
		t.Fatal("thurst and thermals start with the same user data: the sync checks could not fail")
	}
	begin, moving := time.Now(), r.moving
	var afterRedirect map[string]string
	for _, p := range cycleTable[1:] {
		switch {
		case r.special[fmt.Sprintf("%d/%s", n, p.event)] != nil:
			r.special[fmt.Sprintf("%d/%s", n, p.event)](t)
		case n == 1 && p.event == "upgrade-dev":
			r.nextWatched(t, "upgrade-dev")
		case n == 1 && p.event == "redirect":
			r.nextLateWrite(t, "redirect/stop-writers/thurst", lab.Thurst, lab.Thermals)
		case n == 1 && p.event == "switch-back":
			r.nextLateWrite(t, "switch-back/stop-writers/thermals", lab.Thermals, lab.Thurst)
		default:
			r.mustMove(t, "--yes", "next")
		}
		r.checkPhase(t, p, n, from, to)
		switch p.event {
		case "redirect":
			afterRedirect = r.sums(t, lab.Thermals, "")
			if old := r.sums(t, lab.Thurst, ""); !maps.Equal(afterRedirect, old) {
				t.Errorf("after redirect: thermals' user data %v, thurst's %v", afterRedirect, old)
			}
			if n == 1 && maps.Equal(afterRedirect, startProd) {
				t.Errorf("after redirect: the data written on thurst after the first sync pass is not in the checksums")
			}
		case "switch-back":
			got := r.sums(t, lab.Thurst, "")
			if old := r.sums(t, lab.Thermals, ""); !maps.Equal(got, old) {
				t.Errorf("after switch-back: thurst's user data %v, thermals' %v", got, old)
			}
			if n == 1 && maps.Equal(got, afterRedirect) {
				t.Errorf("after switch-back: the data written on thermals after the first sync pass is not in the checksums")
			}
			if n > 1 && !maps.Equal(got, afterRedirect) {
				t.Errorf("after switch-back: thurst's user data %v, production's after redirect %v", got, afterRedirect)
			}
		case "epilogue":
			for _, f := range folders {
				if r.h.Exists(lab.Thermals, dataRoot+"/"+f) {
					t.Errorf("after epilogue: thermals still has %s/%s", dataRoot, f)
				}
			}
			if got, want := r.sums(t, lab.Thermals, ".prod"), r.sums(t, lab.Thurst, ""); !maps.Equal(got, want) {
				t.Errorf("after epilogue: thermals' *.prod %v, thurst's data %v", got, want)
			}
		}
		if t.Failed() {
			t.Fatalf("stopping after %s", p.event)
		}
	}
	t.Logf("cycle %d (f%d to f%d): %s in boxswap next/resume, %s with the checks",
		n, from, to, (r.moving - moving).Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))

	var done []string
	for _, a := range r.h.Log().Attempts {
		if a.Cycle == n {
			if a.Status != "done" {
				t.Errorf("log: attempt %d (%s) is %s, want done", a.ID, a.Event, a.Status)
			}
			done = append(done, string(a.Event))
		}
	}
	if got, want := strings.Join(done, " "), "upgrade-dev redirect upgrade-prod switch-back epilogue"; got != want {
		t.Errorf("log: cycle %d attempts %q, want %q", n, got, want)
	}
	if got, want := len(r.h.Log().Attempts), 5*n; got != want {
		t.Errorf("log: %d attempts after cycle %d, want %d", got, n, want)
	}
}

// checkPhase checks p on the boxes themselves (labtest.CheckTable: who
// answers the production and development addresses, os-release, the
// address units; then the settings files) and in `where --json`.
func (r *rehearsal) checkPhase(t *testing.T, p phase, cycle, from, to int) {
	t.Helper()
	row, start := rows(t, p.name, from, to), rows(t, "start", from, to)
	release := map[string]int{}
	function := map[string]string{}
	for i, b := range lab.BoxNames {
		release[b], function[b] = row[i].Release, row[i].Function
	}
	at := p.name
	if p.event == "" {
		at = "the start"
	}

	w := r.h.Where()
	wantPhase, wantCycle := p.name, cycle
	if p.event == "" && cycle > 1 {
		// A new cycle begins with its first next; until then the last one shows.
		wantPhase, wantCycle = "done", cycle-1
	}
	next := ""
	if w.Next != nil {
		next = *w.Next
	}
	if w.Phase != wantPhase || next != p.next || w.Cycle != wantCycle || w.Transition != nil {
		t.Errorf("%s: where: phase %q next %q cycle %d transition %+v; want phase %q next %q cycle %d transition null",
			at, w.Phase, next, w.Cycle, w.Transition, wantPhase, p.next, wantCycle)
	}
	if wantCycle == cycle && (w.From != from || w.To != to) {
		t.Errorf("%s: where: f%d to f%d, want f%d to f%d", at, w.From, w.To, from, to)
	}
	if len(w.Boxes) != len(lab.BoxNames) {
		t.Errorf("%s: where: boxes %+v", at, w.Boxes)
	}
	for _, b := range w.Boxes {
		if b.Function != function[b.Name] || b.Release != release[b.Name] {
			t.Errorf("%s: where: %s is %s on %d, want %s on %d", at, b.Name, b.Function, b.Release, function[b.Name], release[b.Name])
		}
	}

	for _, bad := range r.h.CheckTable(p.name, from, to) {
		t.Errorf("%s", bad) // it names the phase
	}

	// The settings values of a function are the ones of the box that held it at the start.
	holder := map[string]string{"production": lab.Thurst, "development": lab.Thermals}
	for i, b := range lab.BoxNames {
		cur := r.h.ShRaw(b, "cat "+boxes.Quote(settingsFile))
		if err := onlyThreeLines(r.original[b], cur); err != nil {
			t.Errorf("%s: %s: %s: %v", at, b, settingsFile, err)
			continue
		}
		if want := withValues(r.original[b], r.original[holder[p.settings[i]]]); cur != want {
			t.Errorf("%s: %s: %s holds\n%s\nwant the %s values:\n%s", at, b, settingsFile, values(cur), p.settings[i], values(want))
		}
		if p.settings[i] == row[i].Function && row[i].Function == start[i].Function && cur != r.original[b] {
			t.Errorf("%s: %s is back to %s but its settings file is not its original", at, b, row[i].Function)
		}
	}
}

// nextWatched runs `next` for event and polls `where --json` from another
// process while it runs: the state must be readable during a transition.
func (r *rehearsal) nextWatched(t *testing.T, event string) {
	t.Helper()
	proc := r.h.Start(nil, "--yes", "next")
	// Poll until next ends, noting every running step seen.
	var seen []string
	for running := true; running; {
		select {
		case <-proc.Done():
			running = false
		default:
		}
		w, o, err := r.h.TryWhere()
		if o.Code != 0 {
			t.Errorf("where while next runs: %s", o)
			break
		}
		if err != nil {
			proc.Wait()
			t.Fatalf("%v\n%s", err, o)
		}
		if tr := w.Transition; running && tr != nil && tr.Status == "running" {
			if tr.Event != event || w.Phase != "start" || !strings.HasPrefix(tr.Step, event+"/") {
				t.Errorf("where while next runs: phase %s, transition %+v; want phase start, %s running one of its steps", w.Phase, tr, event)
			}
			if len(seen) == 0 || seen[len(seen)-1] != tr.Step {
				seen = append(seen, tr.Step)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	res := proc.Wait()
	r.moving += res.Took
	if res.Code != 0 {
		t.Fatalf("next (%s): %s", event, res)
	}
	if len(seen) == 0 {
		t.Fatalf("where never showed a running transition while next ran %s", event)
	}
	t.Logf("where while next ran %s showed it running at: %s", event, strings.Join(seen, ", "))
}

// nextLateWrite runs a move with `next --stop-before` the stop of the
// app on the old production box, writes there (a new file, an edit of an
// existing one) as users would, and resumes: the final sync must carry it.
func (r *rehearsal) nextLateWrite(t *testing.T, stopBefore, from, to string) {
	t.Helper()
	event := strings.SplitN(stopBefore, "/", 2)[0]
	if res := r.move("--yes", "next", "--stop-before", stopBefore); res.Code != 130 {
		t.Fatalf("next --stop-before %s: exit %d, want 130 (stopped by the operator)\n%s", stopBefore, res.Code, res)
	}
	w := r.h.Where()
	if w.Transition == nil || w.Transition.Event != event || w.Transition.Status != "interrupted" || w.Transition.Step != stopBefore {
		t.Fatalf("where after --stop-before %s: %+v", stopBefore, w.Transition)
	}
	if a, b := r.sums(t, from, ""), r.sums(t, to, ""); !maps.Equal(a, b) {
		t.Errorf("%s after the first sync pass: %s has %v, %s has %v", event, to, b, from, a)
	}

	dir := dataRoot + "/students"
	first := r.h.Sh(from, "cd "+boxes.Quote(dir)+" && find . -type f | sort | head -n 1")
	if first == "" {
		t.Fatalf("%s: no file in %s", from, dir)
	}
	late := "late/" + event + ".ipynb"
	r.h.Sh(from, fmt.Sprintf("cd %s && printf '\\n%%s\\n' %s >> %s && mkdir -p late && echo %s > %s",
		boxes.Quote(dir), boxes.Quote("edited during "+event), boxes.Quote(first),
		boxes.Quote("written during "+event), boxes.Quote(late)))
	if a, b := r.sums(t, from, ""), r.sums(t, to, ""); maps.Equal(a, b) {
		t.Fatalf("%s: the late writes on %s changed no checksum", event, from)
	}

	r.mustMove(t, "--yes", "resume")
	if got := r.h.ShRaw(to, "cat "+boxes.Quote(dir+"/"+late)); got != "written during "+event+"\n" {
		t.Errorf("%s: %s:%s/%s holds %q", event, to, dir, late, got)
	}
	if got := r.h.ShRaw(to, "tail -n 1 "+boxes.Quote(dir+"/"+first)); got != "edited during "+event+"\n" {
		t.Errorf("%s: %s:%s/%s ends with %q", event, to, dir, first, got)
	}
}

// sums returns, per data folder (with suffix), labtest's digest of its
// tree on box (names, types, modes and contents), failing the test when
// the folder is missing or holds no file: the data checks could not fail.
func (r *rehearsal) sums(t *testing.T, box, suffix string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range folders {
		if r.h.CountFiles(box, dataRoot+"/"+f+suffix) == 0 {
			t.Fatalf("%s: %s/%s%s is empty: the data checks could not fail", box, dataRoot, f, suffix)
		}
		m[f] = r.h.Sums(box, dataRoot, f+suffix)[f+suffix]
	}
	return m
}

// settingLine matches the three lines a move may change.
var settingLine = regexp.MustCompile(`^(server_name|ssl_certificate|ssl_certificate_key)\s*=`)

// onlyThreeLines says which lines of cur differ from orig other than the
// three setting lines.
func onlyThreeLines(orig, cur string) error {
	o, c := strings.Split(orig, "\n"), strings.Split(cur, "\n")
	if len(o) != len(c) {
		return fmt.Errorf("%d lines, was %d:\n%s", len(c), len(o), cur)
	}
	var bad []string
	for i := range o {
		if o[i] == c[i] {
			continue
		}
		ko, kc := settingLine.FindStringSubmatch(o[i]), settingLine.FindStringSubmatch(c[i])
		if ko == nil || kc == nil || ko[1] != kc[1] {
			bad = append(bad, fmt.Sprintf("line %d: %q became %q", i+1, o[i], c[i]))
		}
	}
	if bad != nil {
		return fmt.Errorf("lines other than server_name, ssl_certificate, ssl_certificate_key changed:\n%s", strings.Join(bad, "\n"))
	}
	return nil
}

// withValues returns file with its three setting lines taken from from.
func withValues(file, from string) string {
	src := map[string]string{}
	for _, line := range strings.Split(from, "\n") {
		if m := settingLine.FindStringSubmatch(line); m != nil {
			src[m[1]] = line
		}
	}
	lines := strings.Split(file, "\n")
	for i, line := range lines {
		if m := settingLine.FindStringSubmatch(line); m != nil {
			lines[i] = src[m[1]]
		}
	}
	return strings.Join(lines, "\n")
}

// values returns the three setting lines of file, for messages.
func values(file string) string {
	var out []string
	for _, line := range strings.Split(file, "\n") {
		if settingLine.MatchString(line) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// rewriteUpgrade sets the upgrade section of the lab's boxes.yaml to the
// next cycle, as an operator would edit it.
func rewriteUpgrade(t *testing.T, h *labtest.Harness, from, to int) {
	t.Helper()
	h.EditConfig(func(s string) string {
		for _, e := range []struct{ re, repl string }{
			{`(?m)^  from: \d+$`, fmt.Sprintf("  from: %d", from)},
			{`(?m)^  to: \d+$`, fmt.Sprintf("  to: %d", to)},
			{`(?m)^  devel_branch: \S+$`, fmt.Sprintf("  devel_branch: f%d", to)},
		} {
			re := regexp.MustCompile(e.re)
			if n := len(re.FindAllString(s, -1)); n != 1 {
				t.Fatalf("%s: %d lines match %s, want 1", h.Config, n, e.re)
			}
			s = re.ReplaceAllString(s, e.repl)
		}
		return s
	})
}
