package boxes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Cause says in a few words why a Runner's error left a command's outcome
// unseen, to follow the box's name in a message for the operator:
// "thermals refused the connection (sshd down?)". The error's own text
// (addresses, the system's words) stays for the record. It is "" for an
// error that is not a Runner's.
func Cause(err error) string {
	var na *NoAnswerError
	var hk *HostKeyError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrStopped):
		return "was left alone: the operator stopped boxswap"
	case errors.As(err, &hk) && errors.Is(err, ErrUnknownHostKey):
		return "offered host key " + hk.Fingerprint() + ", which known_hosts does not hold"
	case errors.As(err, &hk):
		return "offered host key " + hk.Fingerprint() + ", not the one known_hosts holds"
	case errors.Is(err, ErrUnknownHostKey):
		return "offered a host key known_hosts does not hold"
	case errors.Is(err, ErrHostKeyChanged):
		return "offered a host key that differs from known_hosts"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused the connection (sshd down?)"
	case errors.As(err, &na):
		return fmt.Sprintf("did not answer within %v", na.After)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "could not be reached (no route to it)"
	case errors.Is(err, ErrOutcomeUnknown) && errors.Is(err, context.Canceled):
		return "had its command interrupted (it may have run in part)"
	case errors.Is(err, ErrOutcomeUnknown) && strings.Contains(err.Error(), "keepalives"):
		return "stopped answering (connection lost)"
	case errors.Is(err, ErrOutcomeUnknown):
		return "lost the connection (outcome unknown)"
	case errors.Is(err, ErrUnreachable) && strings.Contains(err.Error(), "refused every key"):
		return "refused every key boxswap offered"
	case errors.Is(err, ErrUnreachable):
		return "could not be reached"
	}
	return ""
}
