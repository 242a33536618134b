package main

import (
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// What each signal does to boxswap (docs/troubleshooting.md, "Signals"):
//
//   - SIGINT (Ctrl-C), SIGTERM, SIGHUP (the terminal closed; not under
//     nohup, which boxswap respects), SIGPIPE
//     (stdout's reader went away: boxswap next | head) and SIGQUIT
//     (Ctrl-\) stop next, resume and rollback at the next safe point:
//     the lock is freed, the attempt recorded interrupted, a history event
//     names the signal, and the exit code is 128 + its number (130, 143,
//     129, 141, 131). A second SIGINT, SIGTERM or SIGQUIT interrupts the
//     step itself; SIGHUP and SIGPIPE count once (a dead terminal or pipe
//     raises them again at every write).
//   - A SIGPIPE while stdout and stderr are open is not a stop: once
//     boxswap watches SIGPIPE, the kernel raises it for a write on a
//     connection to a box that was closed under it too (the write fails
//     and is handled as a lost link). It is said once, and ignored.
//   - Output to a closed terminal or pipe is dropped: a write fails, and
//     boxswap goes on to its safe point; it never dies of it.
//   - SIGQUIT gives Go's goroutine dump only when asked (BOXSWAP_DEBUG or
//     GOTRACEBACK set); otherwise the verbs that do not stop at safe
//     points end at once, as SIGTERM ends them, with exit code 131.

// stopSignals are those watchSignals turns into a stop.
func stopSignals() []os.Signal {
	s := []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGPIPE}
	// nohup (or a trap "" HUP) asked that a closed terminal not stop the
	// run: Notify would undo that, so SIGHUP is watched only when it was
	// not ignored when boxswap started (hupIgnored, read before any
	// Notify).
	if !hupIgnored {
		s = append(s, syscall.SIGHUP)
	}
	if !quitDumps() {
		s = append(s, syscall.SIGQUIT)
	}
	return s
}

// hupIgnored says SIGHUP was ignored when boxswap started (nohup): read
// at init, before any signal.Notify can change it.
var hupIgnored = signal.Ignored(syscall.SIGHUP)

// quitDumps reports whether SIGQUIT keeps Go's goroutine dump.
func quitDumps() bool { return os.Getenv("BOXSWAP_DEBUG") != "" || os.Getenv("GOTRACEBACK") != "" }

// countsOnce are the signals a dead terminal or pipe repeats.
func countsOnce(s os.Signal) bool { return s == syscall.SIGHUP || s == syscall.SIGPIPE }

// watching is set while watchSignals watches: SIGQUIT is then its.
var watching atomic.Bool

// processSignals sets what the whole process does, once, in main: a write
// to a closed pipe fails instead of killing boxswap (next, resume and
// rollback then stop at their safe point; the other verbs end at once,
// exit 141), and SIGQUIT, unless it dumps, ends the verbs that do not
// watch signals at once, with exit code 131.
func processSignals() {
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	go func() {
		for range pipe {
			// A verb that does not watch signals (log --follow | head)
			// ends as a closed pipe used to end it: at once, with 128 +
			// the signal; it holds no lock. A SIGPIPE with the output
			// open came from a connection, and is dropped.
			if !watching.Load() && outputClosed() {
				os.Exit(128 + int(syscall.SIGPIPE))
			}
		}
	}()
	if quitDumps() {
		return
	}
	quit := make(chan os.Signal, 1)
	signal.Notify(quit, syscall.SIGQUIT)
	go func() {
		for range quit {
			if !watching.Load() {
				// As SIGTERM ends a verb that does not watch signals: at
				// once (it holds no lock), with 128 + the signal.
				os.Exit(128 + int(syscall.SIGQUIT))
			}
		}
	}()
}

// outputClosed reports whether stdout's or stderr's reader is gone (a pipe
// with no reader, a terminal hung up): what makes a SIGPIPE a stop.
func outputClosed() bool {
	fds := []unix.PollFd{{Fd: 1, Events: unix.POLLOUT}, {Fd: 2, Events: unix.POLLOUT}}
	if _, err := unix.Poll(fds, 0); err != nil {
		return false
	}
	for _, f := range fds {
		if f.Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
			return true
		}
	}
	return false
}
