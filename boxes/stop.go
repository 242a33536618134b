package boxes

import (
	"context"
	"errors"
)

// ErrStopped is the cause of a wait the operator's stop (a first SIGINT or
// SIGTERM) ended: a connection attempt, a reboot wait, a backoff. Nothing
// was sent to a box by the wait itself.
var ErrStopped = errors.New("stopped by the operator")

type stopKey struct{}

// WithStop returns ctx carrying stop: once stop is closed, waits derived
// with Waiting end, while the work under ctx itself (a command running on a
// box) goes on. A nil stop returns ctx.
func WithStop(ctx context.Context, stop <-chan struct{}) context.Context {
	if stop == nil {
		return ctx
	}
	return context.WithValue(ctx, stopKey{}, stop)
}

// Waiting returns the context a wait must use: done when ctx is, or when
// the operator asked to stop (context.Cause is then ErrStopped). Call
// cancel when the wait is over.
func Waiting(ctx context.Context) (context.Context, context.CancelFunc) {
	stop, _ := ctx.Value(stopKey{}).(<-chan struct{})
	if stop == nil {
		return context.WithCancel(ctx)
	}
	wctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-stop:
			cancel(ErrStopped)
		case <-wctx.Done():
		}
	}()
	return wctx, func() { cancel(context.Canceled) }
}

// Stopped reports whether the operator asked ctx's run to stop.
func Stopped(ctx context.Context) bool {
	stop, _ := ctx.Value(stopKey{}).(<-chan struct{})
	if stop == nil {
		return false
	}
	select {
	case <-stop:
		return true
	default:
		return false
	}
}
