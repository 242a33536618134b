// Command boxswap upgrades a production/development pair of servers by
// swapping their functions, one transition at a time, over SSH, recording
// every step so that a run stopped anywhere resumes.
//
//	boxswap [-c boxes.yaml] [--state FILE] [--json] [--yes] [--force GUARD] VERB
//
// Verbs: where, plan, next, resume, rollback, status, sizes, log, check,
// graph, completion (and the hidden gen-man, which writes docs/man). `boxswap --help` and `boxswap VERB --help` describe each, with
// examples; the root help lists the exit codes under EXIT STATUS.
//
// # Basics
//
// Every verb but graph loads boxes.yaml first (-c, default ./boxes.yaml)
// and refuses it, exit 2, listing every problem as FILE:LINE, before it
// reads the state or reaches a box. Flags that a verb would ignore (--json
// on next, --yes on where, ...) are refused the same way.
//
// The state file (--state, default boxswap.db beside boxes.yaml) is only
// read by where, log and plan, and never created by them: they work from
// another terminal while next runs. next, resume and rollback take the
// operator lock (<state>.lock) first; a second one is refused at once
// (exit 3) naming the holder, and a lock left by a dead process is taken
// over, with a message.
//
// Gates (approve moving production) are answered by --yes, or by typing
// yes on a terminal; with neither, next stops at the gate (exit 4). A first
// SIGINT/SIGTERM stops at the next safe point between steps (exit 130); a
// second one interrupts the running step, whose outcome resume checks.
//
// Under --json, where, plan, status, sizes, log and check print one JSON
// document on stdout. An error is {"error": {"code", "kind", "message",
// "hint"}} on stdout — or the "error" member of the verb's own report when
// it has one — besides the exit code and the message on stderr.
//
// Progress of next, resume and rollback goes to stdout: fsm emits typed
// events (fsm.Reporter) and this package renders them, as live lines with
// colors when stdout is a terminal (report_terminal.go), as plain lines
// (time, box, text; report_plain.go) otherwise, with --plain, NO_COLOR or
// TERM=dumb. The summary table follows once the reporter is closed.
// boxes.yaml's notify webhooks are wired to Engine.Notify (package notify).
//
// # Caveats
//
// The generated docs (docs/man/boxswap.1, docs/phases.mmd, the diagram in
// docs/phases.md) and the golden outputs (testdata/golden, the cmp files
// of testdata/script/golden_*.txtar) are checked by the tests; after a
// deliberate change, regenerate them with go test ./cmd/boxswap -update
// and read the diff.
//
// Only main exits; the exit code of an error is decided in one place,
// classify in exitcodes.go, from the sentinels of boxes, steps, state and
// fsm. A new sentinel there needs a case, or it exits 1.
//
// status, sizes and check build their remote commands with pure functions
// (remote.go), every value quoted with boxes.Quote; they only read. plan
// runs the steps' checks, which only read, and keeps the facts they learn
// in memory rather than in the state.
package main
