package labtest

import (
	"strconv"
	"strings"
	"time"

	"boxswap/boxes"
	"boxswap/test/lab/lab"
)

// Gate is an armed lab.GateShell point on a box: the program that reaches
// it stops there until Release, so a test injects its fault at that very
// moment, after checking the program is where it means it to be.
type Gate struct {
	h         *Harness
	Box, Name string
	seen      int // arrivals already returned by Wait
}

func (g *Gate) dir() string { return lab.GateDir + "/" + g.Name }

// Arm arms gate name on box: the next program to reach it stops there.
// The gate stays armed, stopping every later arrival too, until Release
// or the box's next boot.
func (h *Harness) Arm(box, name string) *Gate {
	h.T.Helper()
	g := &Gate{h: h, Box: box, Name: name}
	d := boxes.Quote(g.dir())
	h.Sh(box, "rm -rf "+d+" && mkdir -p "+d+" && mkfifo "+d+"/fifo && : > "+d+"/reached")
	return g
}

// Wait waits until one more program has reached the gate than Wait has
// already returned, and returns its PID (as the box sees it). It fails the
// test when p ends first or within passes, saying what it waited for.
func (g *Gate) Wait(p *Proc, within time.Duration) int {
	g.h.T.Helper()
	deadline := time.Now().Add(within)
	for {
		out, code, err := g.h.Lab.Run(g.Box, "cat "+boxes.Quote(g.dir()+"/reached"))
		if pids := strings.Fields(out); err == nil && code == 0 && len(pids) > g.seen {
			pid, err := strconv.Atoi(pids[g.seen])
			if err != nil {
				g.h.T.Fatalf("%s: gate %s: reached holds %q", g.Box, g.Name, out)
			}
			g.seen++
			return pid
		}
		if p != nil {
			select {
			case <-p.Done():
				g.h.T.Fatalf("%s: boxswap ended before anything reached gate %s (arrival %d): %s", g.Box, g.Name, g.seen+1, p.Wait())
			default:
			}
		}
		if time.Now().After(deadline) {
			if p != nil {
				_ = p.Cmd.Process.Kill()
				g.h.T.Fatalf("%s: nothing reached gate %s (arrival %d) within %s: %s", g.Box, g.Name, g.seen+1, within, p.Wait())
			}
			g.h.T.Fatalf("%s: nothing reached gate %s (arrival %d) within %s", g.Box, g.Name, g.seen+1, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Disarm disarms the gate: no later program stops there, while one held
// now stays held (blocked in its open of the FIFO) until it is killed or
// Release lets it go. A box that booted since Arm has no gate left.
func (g *Gate) Disarm() {
	g.h.T.Helper()
	d := boxes.Quote(g.dir())
	g.h.Sh(g.Box, "if [ -p "+d+"/fifo ]; then mv "+d+"/fifo "+d+"/held; fi")
}

// Release disarms the gate and lets every program held there go on.
func (g *Gate) Release() {
	g.h.T.Helper()
	g.Disarm()
	// Opening the FIFO for writing wakes every program blocked in its open.
	d := boxes.Quote(g.dir())
	g.h.Sh(g.Box, "if [ -p "+d+"/held ]; then timeout 10 sh -c 'echo go > \"$1\"' - "+d+"/held || true; rm -f "+d+"/held; fi")
}

// Alive says whether PID runs on the gate's box.
func (g *Gate) Alive(pid int) bool {
	g.h.T.Helper()
	_, code, err := g.h.Lab.Run(g.Box, "kill -0 "+strconv.Itoa(pid))
	return err == nil && code == 0
}

// Parent returns the PID and the command name of pid's parent on the
// gate's box, read from /proc.
func (g *Gate) Parent(pid int) (int, string) {
	g.h.T.Helper()
	out := g.h.Sh(g.Box, "pp=$(sed 's/.*) //' /proc/"+strconv.Itoa(pid)+"/stat | cut -d' ' -f2) && echo $pp $(cat /proc/$pp/comm)")
	f := strings.Fields(out)
	if len(f) == 2 {
		if ppid, err := strconv.Atoi(f[0]); err == nil {
			return ppid, f[1]
		}
	}
	g.h.T.Fatalf("%s: parent of %d: %q", g.Box, pid, out)
	return 0, ""
}

// Pass lets the program held at the gate go on and keeps the gate armed:
// the next arrival stops there again. For a gate reached in a step before
// the one the test means (Wait, then the state's running step says which).
func (g *Gate) Pass() {
	g.h.T.Helper()
	d := boxes.Quote(g.dir())
	// One writer, one held reader: it reads the line and goes on.
	g.h.Sh(g.Box, "timeout 30 sh -c 'echo go > \"$1\"' - "+d+"/fifo")
}

// WaitGone waits until pid no longer runs on the gate's box (the program
// a released gate let go has ended), failing the test after within.
func (g *Gate) WaitGone(pid int, within time.Duration) {
	g.h.T.Helper()
	for deadline := time.Now().Add(within); g.Alive(pid); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			g.h.T.Fatalf("%s: pid %d, let go from gate %s, still runs after %s", g.Box, pid, g.Name, within)
		}
	}
}
