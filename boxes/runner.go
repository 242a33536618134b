package boxes

import (
	"context"
	"errors"
	"io"
)

// Runner runs shell command lines on one box.
//
// Run starts cmd (handed to the remote user's shell as one string, so every
// value in it must have been quoted with Quote), streams its stdout and
// stderr to the writers as they arrive, and returns its exit status.
//
// err is nil exactly when the command ran to completion and reported an exit
// status (which may be non-zero). Otherwise err wraps ErrOutcomeUnknown when
// the command may have started but its end was not seen (connection dropped,
// no exit status, context cancelled after start), or ErrUnreachable when it
// never started (dial, handshake or host-key failure). A Runner reconnects on
// the next Run after a dropped connection.
type Runner interface {
	Run(ctx context.Context, cmd string, stdout, stderr io.Writer) (exit int, err error)
}

var (
	// ErrOutcomeUnknown is returned by Run when a command may have run but
	// its exit status was not received. The caller must not assume either
	// outcome: re-check, never record done.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrUnreachable is returned by Run when the command was not started:
	// the box could not be dialed, the handshake failed or its key was refused.
	ErrUnreachable = errors.New("box unreachable")
)
