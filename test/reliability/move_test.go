package reliability

import (
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"boxswap/state"
	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// The tests of issue 13's moves, on real boxes (Debian, no release
// change: labtest's MovesOnly), each from dev-upgraded: the next `next`
// is redirect, thurst → thermals.

func movesLab(t *testing.T) *labtest.Harness {
	h := labtest.New(t, lab.Options{Kind: lab.KindSystemd, OS: lab.OSDebian})
	h.MovesOnly()
	return h
}

// redirected checks the boxes against the table after redirect, on the
// cycle without a release change.
func redirected(t *testing.T, h *labtest.Harness) {
	t.Helper()
	if bad := h.CheckTable("redirected", h.Lab.Info.From, h.Lab.Info.From); len(bad) > 0 {
		t.Errorf("redirected: %v", bad)
	}
}

// stepStatus is the status where --json shows of step id.
func stepStatus(v labtest.View, id string) state.StepStatus {
	for _, s := range v.Transition.Steps {
		if s.ID == id {
			return s.Status
		}
	}
	return ""
}

// since is when systemd last started each unit on box (monotonic µs): a
// unit stopped and started again meanwhile shows.
func since(h *labtest.Harness, box string, units ...string) string {
	return h.Sh(box, "systemctl show -p ActiveEnterTimestampMonotonic --value -- "+strings.Join(units, " "))
}

// servesProduction checks that box answers the production address and
// holds it alone.
func servesProduction(t *testing.T, h *labtest.Harness, box, other string) {
	t.Helper()
	if got, err := labtest.Get(h.Lab, h.Lab.Info.ProductionURL); err != nil || got != box+" "+strconv.Itoa(h.Lab.Info.From)+" production" {
		t.Errorf("production address answers %q (%v), want %s", got, err, box)
	}
	if held, err := h.Lab.Holds(box, h.Lab.Info.ProductionAddress); err != nil || !held {
		t.Errorf("%s does not hold the production address (%v)", box, err)
	}
	if held, err := h.Lab.Holds(other, h.Lab.Info.ProductionAddress); err != nil || held {
		t.Errorf("%s holds the production address too (%v)", other, err)
	}
}

// Issue 13, item 1: a wrong certificate on thermals (self-signed, not
// the lab CA's) is caught by app.check on thermals itself before the
// window: redirect fails at check/thermals, thurst serves throughout and
// nothing of it was stopped; with the certificate back, resume completes.
func TestCheckBeforeTheWindow(t *testing.T) {
	h := movesLab(t)
	units := []string{"nbh-uwsgi", "nbh-monitor", "nbhosting-addr"}
	before := since(h, lab.Thurst, units...)
	h.Sh(lab.Thermals, "cp -a /etc/nginx/tls /root/tls.good && "+
		"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=nbhosting.lab "+
		"-addext subjectAltName=DNS:nbhosting.lab -keyout /etc/nginx/tls/nbhosting.key -out /etc/nginx/tls/nbhosting.pem 2>/dev/null && "+
		"systemctl reload nginx")
	r := h.Run("--yes", "next")
	v := h.Where()
	if r.Code == 0 || v.Transition == nil || v.Transition.Status != state.Failed || v.Transition.FailedStep != "redirect/check/thermals" {
		t.Fatalf("redirect with a wrong certificate on thermals: %+v\n%s", v.Transition, r)
	}
	if !strings.Contains(v.Transition.Error, "the certificate is not trusted") || !strings.Contains(v.Transition.Error, "production was not touched") {
		t.Errorf("error: %s", v.Transition.Error)
	}
	for _, id := range []string{"redirect/stop-writers/thurst", "redirect/final-sync/students", "redirect/release-address/thurst"} {
		if st := stepStatus(v, id); st != state.Pending {
			t.Errorf("%s is %s after the check failed, want pending", id, st)
		}
	}
	servesProduction(t, h, lab.Thurst, lab.Thermals)
	if after := since(h, lab.Thurst, units...); after != before {
		t.Errorf("thurst's %v were restarted: started at %q, now %q", units, before, after)
	}
	h.Sh(lab.Thermals, "cp -a /root/tls.good/. /etc/nginx/tls/ && systemctl reload nginx")
	if r := h.Run("--yes", "resume"); r.Code != 0 {
		t.Fatalf("resume with the certificate back: %s", r)
	}
	redirected(t, h)
}

// Issue 13, item 1: once thermals took the address, thurst (on the users'
// network) cannot reach its web front (thermals' replies to thurst are
// blackholed in its namespace): check-production fails, production moves
// back to thurst, the transition is failed with the steps undone in its
// record; healed, resume runs the window again and completes.
func TestCheckThroughTheAddressMovesBack(t *testing.T) {
	h := movesLab(t)
	if r := h.Run("--yes", "next", "--stop-before", "redirect/verify-address/thermals"); r.Code != 130 {
		t.Fatalf("next --stop-before verify-address: %s", r)
	}
	ns, thurst := h.Lab.Info.Boxes[lab.Thermals].Netns, h.Lab.Info.Boxes[lab.Thurst].Host
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ip("route", "add", "blackhole", thurst+"/32")
	healed := false
	t.Cleanup(func() {
		if !healed {
			_ = exec.Command("ip", "-n", ns, "route", "del", "blackhole", thurst+"/32").Run()
		}
	})
	r := h.Run("--yes", "resume")
	v := h.Where()
	if r.Code == 0 || v.Transition == nil || v.Transition.Status != state.Failed || v.Transition.FailedStep != "redirect/check-production" {
		t.Fatalf("resume with thermals unreachable from thurst: %+v\n%s", v.Transition, r)
	}
	if !strings.Contains(v.Transition.Error, "production moved back") {
		t.Errorf("error: %s", v.Transition.Error)
	}
	window := []string{"redirect/stop-writers/thurst", "redirect/stop-writers/thermals", "redirect/final-sync/students", "redirect/final-sync/raw",
		"redirect/start-writers/thermals", "redirect/release-address/thurst", "redirect/take-address/thermals", "redirect/verify-address/thermals"}
	for _, id := range window {
		if st := stepStatus(v, id); st != state.Undone {
			t.Errorf("%s is %s after the move back, want undone", id, st)
		}
	}
	servesProduction(t, h, lab.Thurst, lab.Thermals)
	if got := h.Sh(lab.Thurst, "systemctl is-active nbh-uwsgi nbh-monitor nbhosting-addr; systemctl is-enabled nbhosting-addr"); got != "active\nactive\nactive\nenabled" {
		t.Errorf("thurst after the move back: %q", got)
	}
	ip("route", "del", "blackhole", thurst+"/32")
	healed = true
	if r := h.Run("--yes", "resume"); r.Code != 0 {
		t.Fatalf("resume once healed: %s", r)
	}
	redirected(t, h)
	att := h.LastAttempt()
	for _, s := range att.Steps {
		if slices.Contains(window, s.ID) && s.Attempts < 2 {
			t.Errorf("%s ran %d times, want again after the move back", s.ID, s.Attempts)
		}
	}
}

// Issue 13, item 2: an address unit whose stop leaves the address on
// thurst makes redirect halt before thermals takes it, naming thurst;
// with the unit fixed and the address removed, resume completes.
func TestAddressLeftBehindHalts(t *testing.T) {
	h := movesLab(t)
	const dropIn = "/etc/systemd/system/nbhosting-addr.service.d/leave.conf"
	h.Sh(lab.Thurst, "mkdir -p "+dropIn[:strings.LastIndex(dropIn, "/")]+" && printf '[Service]\\nExecStop=\\nExecStop=/bin/true\\n' > "+dropIn+" && systemctl daemon-reload")
	r := h.Run("--yes", "next")
	v := h.Where()
	if r.Code == 0 || v.Transition == nil || v.Transition.FailedStep != "redirect/release-address/thurst" {
		t.Fatalf("redirect with an address unit that leaves the address: %+v\n%s", v.Transition, r)
	}
	if want := "thurst still holds " + h.Lab.Info.ProductionAddress; !strings.Contains(v.Transition.Error, want) {
		t.Errorf("error %q does not say %q", v.Transition.Error, want)
	}
	// thurst's address unit was stopped: the hint must not say nothing was.
	if r.Code != 1 || strings.Contains(r.Stderr, "nothing was changed") {
		t.Errorf("exit %d, want 1 (halted) and no \"nothing was changed\": %s", r.Code, r)
	}
	if st := stepStatus(v, "redirect/take-address/thermals"); st != state.Pending {
		t.Errorf("take-address/thermals is %s, want pending", st)
	}
	if held, err := h.Lab.Holds(lab.Thermals, h.Lab.Info.ProductionAddress); err != nil || held {
		t.Errorf("thermals holds the production address (%v)", err)
	}
	h.Sh(lab.Thurst, "rm "+dropIn+" && systemctl daemon-reload && ip addr del "+h.Lab.Info.ProductionAddress+"/24 dev host0")
	if r := h.Run("--yes", "resume"); r.Code != 0 {
		t.Fatalf("resume with the unit fixed: %s", r)
	}
	redirected(t, h)
}

// writerScript writes a timestamp (ns) every 20 ms, outside the data (to
// read after the move) and under raw/ (user data the final sync copies);
// a script, so that systemd's specifiers (%s) stay out of it.
const writerScript = `#!/bin/sh
while :; do
	t=$(date +%s%N)
	echo $t >> /var/log/nbh-writer.log
	echo $t >> /nbhosting/raw/writer-$(hostname).log
	sleep 0.02
done
`

const writerUnit = `[Unit]
Description=a writer of user data (lab test)

[Service]
ExecStart=/usr/local/bin/nbh-writer
`

// Issue 13, item 3: no writer writes between the final sync and the new
// box's writers' start. A writer service runs on both boxes; thermals'
// (the new box) must write nothing from its stop-writers to its
// start-writers, thurst's nothing after its stop-writers; the service
// declared writes: false (nbh-monitor) keeps running on thurst.
func TestNoWriterRacesTheFinalSync(t *testing.T) {
	h := movesLab(t)
	for _, b := range lab.BoxNames {
		h.Sh(b, "cat > /usr/local/bin/nbh-writer <<'EOF'\n"+writerScript+"EOF\nchmod 755 /usr/local/bin/nbh-writer && "+
			"cat > /etc/systemd/system/nbh-writer.service <<'EOF'\n"+writerUnit+"EOF\nsystemctl daemon-reload && systemctl start nbh-writer")
	}
	h.EditConfig(func(s string) string {
		return strings.Replace(s, "services: [nbh-uwsgi, nbh-monitor]", "services: [nbh-uwsgi, {name: nbh-monitor, writes: false}, nbh-writer]", 1)
	})
	stamps := func(box string) []time.Time {
		var out []time.Time
		for _, l := range strings.Fields(h.Sh(box, "cat /var/log/nbh-writer.log 2>/dev/null || true")) {
			ns, err := strconv.ParseInt(l, 10, 64)
			if err != nil {
				t.Fatalf("%s: writer log line %q", box, l)
			}
			out = append(out, time.Unix(0, ns))
		}
		return out
	}
	count := func(ts []time.Time, from, to time.Time) int {
		n := 0
		for _, x := range ts {
			if x.After(from) && (to.IsZero() || x.Before(to)) {
				n++
			}
		}
		return n
	}
	// Both writers have written before the move, thermals' again after
	// its start-writers: waited for, not slept.
	for _, b := range lab.BoxNames {
		waitStamp(t, b, time.Time{}, stamps)
	}
	if r := h.Run("--yes", "next"); r.Code != 0 {
		t.Fatalf("redirect: %s", r)
	}
	steps := map[string]state.StepRecord{}
	for _, s := range h.LastAttempt().Steps {
		steps[s.ID] = s
	}
	stopDst, startDst := steps["redirect/stop-writers/thermals"], steps["redirect/start-writers/thermals"]
	waitStamp(t, lab.Thermals, startDst.Ended, stamps)
	syncStart, syncEnd := steps["redirect/final-sync/students"].Started, steps["redirect/final-sync/raw"].Ended
	if stopDst.Ended.IsZero() || startDst.Started.IsZero() || syncStart.IsZero() || !syncStart.After(stopDst.Ended) || !startDst.Started.After(syncEnd) {
		t.Fatalf("window steps: stop-writers/thermals %v, final sync %v–%v, start-writers/thermals %v", stopDst.Ended, syncStart, syncEnd, startDst.Started)
	}
	dst, src := stamps(lab.Thermals), stamps(lab.Thurst)
	if n := count(dst, stopDst.Ended, startDst.Started); n != 0 {
		t.Errorf("thermals' writer wrote %d times between its stop-writers and its start-writers (final sync %s–%s)", n, syncStart.Format("15:04:05.000"), syncEnd.Format("15:04:05.000"))
	}
	if n := count(src, steps["redirect/stop-writers/thurst"].Ended, time.Time{}); n != 0 {
		t.Errorf("thurst's writer wrote %d times after its stop-writers", n)
	}
	// Not vacuous: both wrote before, thermals again after its start.
	if count(dst, time.Time{}, stopDst.Started) == 0 || count(src, time.Time{}, syncStart) == 0 || count(dst, startDst.Ended, time.Time{}) == 0 {
		t.Errorf("the writers did not write around the window: thermals %d stamps, thurst %d", len(dst), len(src))
	}
	if got := h.Sh(lab.Thurst, "systemctl is-active nbh-monitor nbh-writer nbh-uwsgi || true"); got != "active\ninactive\ninactive" {
		t.Errorf("thurst after redirect: nbh-monitor (writes: false), nbh-writer, nbh-uwsgi are %q", got)
	}
	// What thurst's writer wrote under raw/ before it stopped is on thermals.
	if a, b := h.Sh(lab.Thurst, "md5sum < /nbhosting/raw/writer-thurst.log"), h.Sh(lab.Thermals, "md5sum < /nbhosting/raw/writer-thurst.log"); a != b {
		t.Errorf("raw/writer-thurst.log differs between thurst and thermals after the final sync")
	}
}

// waitStamp waits until box's writer has logged a stamp after after
// (any, for the zero time), reading its log with stamps.
func waitStamp(t *testing.T, box string, after time.Time, stamps func(string) []time.Time) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		for _, x := range stamps(box) {
			if x.After(after) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: its writer logged nothing after %s within a minute (is nbh-writer running?)", box, after.Format("15:04:05.000"))
		}
	}
}
