package lab

// A gate is a point on a box where a program the tests drive stops and
// waits, so a test can put its fault exactly there: no sleep decides where
// a fault lands. The gated program runs GateShell(name) at the point; the
// test arms the gate (labtest's Harness.Arm), waits until the program has
// reached it (its PID appended to reached), injects the fault, and releases
// the gate or lets the fault end the program.
//
// A gate is armed while GateDir/NAME/fifo is a FIFO. It lives in the box's
// /run, a tmpfs on both kinds: a crash or a reboot disarms it.
//
// The lab's own gates: "install" (install.sh on both kinds, before it does
// anything) and "reboot" (the namespace kind's init, once a reboot is
// asked and before the box goes down: the box still answers, on its old
// boot id).
const GateDir = "/run/lab-gate"

// GateShell is the shell a gated program runs at its gate NAME: when the
// gate is armed it appends its PID to reached and blocks until the test
// releases it (or kills it); else it goes on at once.
func GateShell(name string) string {
	return `g=` + GateDir + `/` + name + `; if [ -p "$g/fifo" ]; then echo $$ >> "$g/reached"; read -r _ < "$g/fifo" || true; fi`
}
