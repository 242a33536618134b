package reliability

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"boxswap/internal/etcdtest"
	"boxswap/state"
	"boxswap/test/lab/lab"
	"boxswap/test/labtest"
)

// TestEtcdCycle (issue 15): a moves-only cycle on real boxes (labtest's
// MovesOnly: redirect, upgrade-prod, switch-back, epilogue without the
// minutes of an upgrade) whose state is on a three-member etcd cluster
// running in the lab's network namespace, beside the operator:
//
//   - redirect: the cluster's leader is SIGKILLed mid-transition (install.sh
//     held at its gate on thermals); the run goes on after the re-election and ends right.
//   - switch-back, fencing: the operator stops itself (SIGSTOP, the
//     rehearsal fault running:stop) once take-address/thurst is recorded
//     running and before its command is sent, for longer than its lease;
//     a second operator takes the lock over and resumes, checking the
//     running step first; the first, continued, is refused at once and
//     sends nothing.
//   - epilogue: two of three members are SIGKILLed while the operator is
//     stopped at a step; continued, it stops at its next state access
//     (no quorum), nothing written; once quorum is back, resume ends it.
//
// After each, the boxes are checked (each address held by exactly the
// box the table gives, a kernel fact) and so is the state (where, log).
func TestEtcdCycle(t *testing.T) {
	h := labtest.New(t, lab.Options{Kind: lab.KindSystemd, OS: lab.OSDebian})
	c := etcdtest.StartWith(t, 3, etcdtest.Options{Host: lab.BridgeAddr, BasePort: 23790, Command: h.Lab.Command})
	h.MovesOnly()
	url := c.URL("/boxswap/lab")
	h.MustRun("state", "push", url)
	h.State = url
	rel := h.Lab.Info.From
	table := func(phase string) {
		t.Helper()
		if bad := h.CheckTable(phase, rel, rel); len(bad) > 0 {
			t.Fatalf("boxes do not match the table at %s:\n  %s", phase, strings.Join(bad, "\n  "))
		}
	}

	// redirect, the leader killed while a step runs: install.sh held at
	// its gate on thermals, boxswap in redirect/install/thermals.
	p, g, _ := holdIn(t, h, lab.Thermals, "install", "redirect/install/thermals", "--yes", "next")
	leader := c.Leader()
	c.Kill(leader, syscall.SIGKILL)
	killed := time.Now()
	g.Release()
	if r := p.Wait(); r.Code != 0 {
		t.Fatalf("redirect with the etcd leader killed: %s\n%s", r, c.Logs())
	}
	figure(t, "etcd: leader (member %d) SIGKILLed mid-redirect; the run went on and ended %s later", leader, time.Since(killed).Round(time.Millisecond))
	table("redirected")
	c.Restart(leader)
	c.WaitReady()

	if r := h.Run("--yes", "next"); r.Code != 0 {
		t.Fatalf("upgrade-prod: %s", r)
	}
	table("prod-upgraded")

	fencing(t, h)
	table("switched-back")

	quorum(t, h, c)
	table("done")
	l := h.Log()
	for _, a := range l.Attempts {
		if a.Status != state.Done {
			t.Errorf("attempt %d (%s) is %s, want done", a.ID, a.Event, a.Status)
		}
	}
}

// fencing runs switch-back as told in TestEtcdCycle.
func fencing(t *testing.T, h *labtest.Harness) {
	t.Helper()
	const step = "switch-back/take-address/thurst"
	lease := []string{"BOXSWAP_ETCD_LEASE=3s"}
	first := h.Start(append(fault(step, "running", "stop"), lease...), "--yes", "next")
	waitStopped(t, first, time.Minute)
	stopped := time.Now()
	for alive(t, h) {
		if time.Since(stopped) > time.Minute {
			t.Fatal("the stopped operator's lease never expired")
		}
		time.Sleep(200 * time.Millisecond)
	}
	second := h.RunEnv(lease, "--yes", "resume")
	if second.Code != 0 {
		_ = first.Signal(syscall.SIGKILL)
		t.Fatalf("the second operator's resume: %s", second)
	}
	if !strings.Contains(second.Stderr, "boxswap next") {
		t.Errorf("the second operator was not told whose lock it took over: %s", second)
	}
	if err := first.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	r := first.Wait()
	// Its line names the step it stopped in (cut in the middle where the
	// cluster's URL is long); the hint says why.
	if r.Code != 3 || !strings.Contains(r.Stderr, "hint: another operator may have taken over") {
		t.Errorf("the continued stale operator: want exit 3, lock lost: %s", r)
	}
	figure(t, "etcd: an operator stopped %s past its 3s lease was refused on SIGCONT (exit %d); the second had resumed in %s",
		time.Since(stopped).Round(time.Second), r.Code, second.Took.Round(time.Millisecond))
	v := h.Where()
	if v.Phase != "switched-back" || v.Pending() {
		t.Errorf("after the fencing: phase %s, pending %v", v.Phase, v.Pending())
	}
	a := h.LastAttempt()
	seen := false
	for _, s := range a.Steps {
		if s.ID == step {
			seen = true
			if s.Status != state.StepDone || s.Attempts != 2 {
				t.Errorf("%s: %s after %d tries, want done after 2 (the stale one's record, the new holder's run)", step, s.Status, s.Attempts)
			}
		}
	}
	if !seen {
		t.Errorf("%s is not in the last attempt (%s): its tries went unchecked", step, a.Event)
	}
}

// quorum runs the epilogue as told in TestEtcdCycle.
func quorum(t *testing.T, h *labtest.Harness, c *etcdtest.Cluster) {
	t.Helper()
	_, planned := h.Plan()
	step := ""
	for _, s := range planned {
		if strings.Contains(s.ID, "/take-address/") || strings.Contains(s.ID, "/release-address/") {
			step = s.ID
			break
		}
	}
	if step == "" {
		t.Fatalf("the epilogue has no address step to stop at: %+v", planned)
	}
	p := h.Start(fault(step, "running", "stop"), "--yes", "next")
	waitStopped(t, p, time.Minute)
	leader := c.Leader()
	down := []int{leader, (leader + 1) % len(c.Members)}
	for _, i := range down {
		c.Kill(i, syscall.SIGKILL)
	}
	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	r := p.Wait()
	if r.Code != 8 || !strings.Contains(r.Stderr, "hint: check the etcd cluster") || strings.Contains(r.Stdout, "done     epilogue/take-address") {
		t.Errorf("the run without quorum: want it stopped, the cluster not answering: %s", r)
	}
	figure(t, "etcd: quorum lost (members %v killed) during %s: the run stopped (exit %d) in %s", down, step, r.Code, r.Took.Round(time.Second))
	for _, i := range down {
		c.Restart(i)
	}
	c.WaitReady()
	v := h.Where()
	if v.Transition == nil || v.Transition.Status == state.Done {
		t.Fatalf("after the quorum loss: %+v", v.Transition)
	}
	if r := h.Run("--yes", "resume"); r.Code != 0 {
		t.Fatalf("resume once quorum is back: %s", r)
	}
}

// waitStopped waits until the run stopped itself (state T in /proc).
func waitStopped(t *testing.T, p *labtest.Proc, within time.Duration) {
	t.Helper()
	stat := "/proc/" + strconv.Itoa(p.Cmd.Process.Pid) + "/stat"
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-p.Done():
			t.Fatalf("the run ended before its stop point: %s", p.Wait())
		default:
		}
		data, err := os.ReadFile(stat)
		if err == nil {
			if f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:])); len(f) > 0 && f[0] == "T" {
				return
			}
		}
	}
	_ = p.Signal(syscall.SIGKILL)
	t.Fatalf("the run never stopped itself: %s", p.Wait())
}

// alive says whether where sees a live lock holder.
func alive(t *testing.T, h *labtest.Harness) bool {
	t.Helper()
	r := h.Run("--json", "where")
	var v struct {
		Lock *struct {
			Alive bool `json:"alive"`
		} `json:"lock"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil {
		t.Fatalf("where --json: %v: %s", err, r)
	}
	return v.Lock != nil && v.Lock.Alive
}
