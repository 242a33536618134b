package main

import (
	"os"

	"boxswap/fsm"
)

// reporter is how next, resume and rollback show a run: the engine's
// events (fsm.Reporter), and what the CLI itself needs of the screen.
type reporter interface {
	fsm.Reporter
	// Hold stops drawing until the next step event: a gate's question is
	// typed on the same terminal.
	Hold()
	// Close ends the reporter's own output (live lines); it is safe to
	// call twice. Nothing else may be printed before it.
	Close()
}

var (
	_ reporter = (*plain)(nil)
	_ reporter = (*terminal)(nil)
)

// reporter picks how progress is shown: live lines on a terminal, plain
// lines otherwise (a pipe, a file, NO_COLOR set, TERM=dumb, or --plain).
func (g *globalOptions) reporter() reporter {
	f, ok := g.stdout.(*os.File)
	// TERM=dumb (an Emacs shell, a serial console) draws no escape codes.
	if g.Plain || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" || !ok || !isTerminal(f) {
		return newPlain(g.stdout, nil)
	}
	return newTerminal(f, func() int { return terminalWidth(f) })
}
