package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"boxswap/boxes"
	"boxswap/fsm"
	"boxswap/internal/safefile"
	"boxswap/internal/text"
	"boxswap/state"
	"boxswap/steps"
)

// Exit codes. Scripts depend on them: add, never renumber.
const (
	exitOK          = 0
	exitFailure     = 1   // a step or a command failed
	exitUsage       = 2   // bad flags or a bad boxes.yaml
	exitLocked      = 3   // another operator holds the lock
	exitNotApproved = 4   // a gate was not approved
	exitRefused     = 5   // a guard or a precondition refused; nothing was changed
	exitUnreachable = 6   // a box could not be reached, or an outcome is unknown
	exitPhase       = 7   // the machine's state does not allow the verb now
	exitState       = 8   // the state file cannot be used
	exitInterrupted = 130 // stopped by the operator (SIGINT; other signals give 128 + their number)
)

// exitStatusHelp documents the codes in the root command's help.
var exitStatusHelp = strings.TrimSpace(`
EXIT STATUS
  0    ok
  1    failure: a step or a remote command failed (see the hint, then
       boxswap resume or boxswap rollback)
  2    usage: bad flags, or boxes.yaml has problems (each is listed as
       FILE:LINE), or a file it names (ssh, TLS, password) cannot be
       read, or a state location that is neither a file path nor a valid
       etcd:// or etcds:// URL (ETCD://, etcd:/, http://, blank)
  3    locked: another boxswap next/resume/rollback holds the operator lock,
       or this run lost it (its etcd lease expired) and stopped
  4    not approved: a gate needs --yes, or a "yes" typed on a terminal
  5    refused: a guard refused to act, or a box is not as a check step
       requires; nothing was changed (some guards can be overridden with
       --force GUARD); or state init or push refused an etcd prefix
       inside or above another pair's, or found a state there (or a file)
  6    unreachable: a box could not be reached, or a command's outcome is
       unknown (the connection dropped); boxswap resume checks it again
  7    not now: a transition is pending (resume or roll it back), there is
       nothing to resume or roll back, the cycle is done, boxes.yaml no
       longer matches the cycle in progress, or rollback reached a step
       that cannot be undone
  8    state file: it is corrupt (a record's checksum fails), was
       written by a newer boxswap, is not a regular file (a link, a FIFO,
       empty), has other names (a hard link), another owner or a mode
       others may write (so has its lock or an attempt log), or cannot be
       used here (permission, missing folder, disk full); on etcd: no
       state at the prefix (boxswap state init), the cluster did not
       answer, or it refused the user or password
  129  next, resume or rollback stopped by SIGHUP (its terminal closed)
  130  interrupted by the operator (SIGINT, Ctrl-C; also --stop-before)
  131  stopped by SIGQUIT (Ctrl-\; BOXSWAP_DEBUG=1 keeps Go's dump instead)
  141  stopped by SIGPIPE (its output's reader went away: boxswap next | head)
  143  stopped by SIGTERM
       After any of these the lock is free, the attempt is recorded
       interrupted, and boxswap resume goes on.
`)

// classify maps an error to its exit code, a short kind for --json, and the
// hint shown when the error carries none. It is the only place that knows
// the mapping; the order of the cases is the precedence when an error
// wraps several causes.
func classify(err error) (code int, kind, hint string) {
	var ue *usageError
	var le *boxes.LoadError
	var se *signalError
	var lk *state.LockedError
	var pc *fsm.PlanChangedError
	var uf *safefile.UnsafeFileError
	var hinted interface{ Hint() string }
	switch {
	case err == nil:
		return exitOK, "", ""
	case errors.As(err, &ue):
		return exitUsage, "usage", "see boxswap --help"
	case errors.Is(err, fsm.ErrNoSuchStep):
		return exitUsage, "usage", "boxswap plan lists the next transition's step IDs"
	case errors.As(err, &le):
		return exitUsage, "config", "fix the problems listed, then run boxswap check --offline"
	case errors.Is(err, state.ErrExists):
		return exitRefused, "exists", "nothing was written: give an empty etcd prefix or a new file name"
	case errors.As(err, &lk) && lk.OtherHost:
		return exitLocked, "locked", "make sure that run is over (ask its operator, or look on " + text.Printable(lk.Holder.Host) +
			"), then boxswap unlock --force --reason TEXT, which records who removed it and why"
	case errors.Is(err, state.ErrLockLost):
		return exitLocked, "lock-lost", "another operator may have taken over: boxswap where shows who holds the lock; " +
			"do not drive the boxes from here until that run is over, then boxswap resume checks what this one left"
	case errors.Is(err, state.ErrLocked):
		return exitLocked, "locked", "wait for the other run to finish; a lock whose process is dead is reclaimed by the next run"
	case errors.Is(err, state.ErrNoState):
		return exitState, "no-state", "check the prefix (boxswap --state etcd://HOST:PORT/ROOT pairs lists the states under ROOT), or create one with boxswap state init"
	case errors.Is(err, state.ErrDenied), etcdAuthError(err):
		return exitState, "denied", "give etcd's user with --etcd-user (or BOXSWAP_ETCD_USER) and its password with BOXSWAP_ETCD_PASSWORD or --etcd-password-file; the user needs read and write on the prefix"
	case errors.Is(err, state.ErrNoAnswer):
		return exitState, "no-answer", "check the etcd cluster (etcdctl endpoint health --cluster) and the network to it; " +
			"once it answers, boxswap where shows the state and boxswap resume checks the step that was running"
	case errors.As(err, &uf):
		return exitState, "state", uf.Hint
	case errors.Is(err, state.ErrNotAFile):
		return exitState, "state", "the message says what is there; boxswap reads and writes only regular files, and only a missing state file starts afresh"
	case errors.Is(err, state.ErrUnusable):
		return exitState, "state", "the message names the file and what the system said: check that its folder exists, its permissions, and the free space (df)"
	case errors.Is(err, state.ErrUnsafeDir):
		return exitState, "state", "keep the state in a folder only its owner can write"
	case errors.Is(err, fsm.ErrUnknownPhase):
		return exitState, "state", "use the boxswap that wrote the state file, or restore it from a backup"
	case errors.Is(err, state.ErrCorrupt) && errors.As(err, &hinted):
		return exitState, "state", hinted.Hint()
	case isStateFileError(err) && onEtcd(err):
		return exitState, "state", "restore the prefix from an etcd snapshot, or use the boxswap that wrote it"
	case isStateFileError(err):
		return exitState, "state", "restore the state file from a backup, or use the boxswap that wrote it"
	case errors.Is(err, steps.ErrNotApproved):
		return exitNotApproved, "not-approved", "run with --yes once you have validated the boxes (boxswap status), or run on a terminal to be asked"
	case errors.Is(err, state.ErrNestedPrefix):
		return exitRefused, "refused", "nothing was written: put each pair's state beside the others, e.g. ROOT/site-a and ROOT/site-b; boxswap --state etcd://HOST:PORT/ROOT pairs lists them"
	case errors.Is(err, steps.ErrRefused):
		return exitRefused, "refused", "nothing was changed; fix what the guard saw, or override it with --force GUARD if you are sure"
	case errors.Is(err, steps.ErrPrecondition):
		return exitRefused, "precondition", "nothing was changed; make the box as the step expects, then boxswap resume"
	case errors.Is(err, steps.ErrHalted):
		return exitFailure, "halted", "this transition changed the boxes before it stopped (boxswap where lists its done steps): " +
			"fix what the message names, then boxswap resume, or boxswap rollback to undo the done steps"
	case errors.As(err, &se):
		return 128 + int(se.sig), "interrupted", "boxswap where shows where it stopped; boxswap resume goes on"
	case errors.Is(err, fsm.ErrStopped), errors.Is(err, context.Canceled):
		return exitInterrupted, "interrupted", "boxswap where shows where it stopped; boxswap resume goes on"
	case errors.Is(err, boxes.ErrUnreachable) && errors.Is(err, syscall.ECONNREFUSED):
		return exitUnreachable, "unreachable", "the box refused the connection, so nothing ran: check that sshd runs on it and listens on the port boxes.yaml gives (boxswap check), then boxswap resume"
	case errors.Is(err, boxes.ErrUnreachable):
		return exitUnreachable, "unreachable", "check the box is up and boxswap check passes, then run boxswap resume"
	case errors.Is(err, boxes.ErrOutcomeUnknown):
		return exitUnreachable, "outcome-unknown", "the connection dropped during a command; boxswap resume checks the step before running it again"
	case errors.Is(err, fsm.ErrPending):
		return exitPhase, "pending", "boxswap where shows the pending transition"
	case errors.Is(err, fsm.ErrNothingToResume), errors.Is(err, fsm.ErrNothingToRollBack):
		return exitPhase, "nothing-pending", "boxswap where shows the phase; boxswap plan shows the next transition"
	case errors.Is(err, fsm.ErrCycleDone):
		return exitPhase, "cycle-done", "edit upgrade.from and upgrade.to in boxes.yaml to start a new cycle"
	case errors.As(err, &pc) && pc.SameConfig:
		return exitPhase, "plan-changed", "boxswap resume --replan takes this boxswap's plan for the steps not done yet (recorded), or use the boxswap that planned it; boxswap rollback undoes the done steps"
	case errors.As(err, &pc):
		return exitPhase, "config-changed", "boxswap resume --replan takes the new plan for the steps not done yet (recorded), or put boxes.yaml back; boxswap rollback undoes the done steps with their recorded commands"
	case errors.Is(err, fsm.ErrConfigChanged):
		return exitPhase, "config-changed", "set upgrade.from and upgrade.to in boxes.yaml as the message says; boxswap where shows the cycle"
	case errors.Is(err, fsm.ErrRollbackStopped):
		return exitPhase, "irreversible", "boxswap resume goes forward from here"
	}
	return exitFailure, "failure", "boxswap log shows the step's output; fix the cause, then boxswap resume (or boxswap rollback)"
}

// etcdAuthError reports etcd refusing the credentials (or their lack)
// as the client's first authentication, when it connects, returns it:
// not yet a state.ErrDenied.
func etcdAuthError(err error) bool {
	for _, e := range []error{rpctypes.ErrAuthFailed, rpctypes.ErrUserEmpty, rpctypes.ErrPermissionDenied,
		rpctypes.ErrInvalidAuthToken, rpctypes.ErrAuthOldRevision, rpctypes.ErrAuthNotEnabled} {
		if errors.Is(err, e) {
			return true
		}
	}
	// The client's first authentication returns the server's status as
	// it came.
	return strings.Contains(err.Error(), "etcdserver: authentication failed") || strings.Contains(err.Error(), "etcdserver: user name is empty")
}

// onEtcd reports an error about a state on etcd, whose hints are not a
// file's.
func onEtcd(err error) bool {
	var e interface{ OnEtcd() bool }
	return errors.As(err, &e) && e.OnEtcd()
}

// usageError is a mistake on the command line, caught before any work.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// hintError carries the hint a verb knows better than classify does.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hintError{err, hint}
}

// hintOf returns the hint a verb attached, or else the one a step's error
// carries (a guard's advice), or else the default one.
func hintOf(err error, def string) string {
	var he *hintError
	if errors.As(err, &he) {
		return he.hint
	}
	var sh interface{ Hint() string }
	if errors.As(err, &sh) && sh.Hint() != "" {
		return sh.Hint()
	}
	return def
}
