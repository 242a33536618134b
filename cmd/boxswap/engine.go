package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"boxswap/boxes"
	"boxswap/fsm"
	"boxswap/internal/text"
	"boxswap/notify"
	"boxswap/state"
	"boxswap/steps"
)

// engineVerb is what next, resume and rollback share: the lock, the
// connections, the gates, the signals and the summary.
type engineVerb struct {
	name string // next, resume, rollback
	run  func(e *fsm.Engine, ctx context.Context) (*state.Attempt, error)
}

// Retries of a step whose outcome is unknown and that is safe to repeat:
// enough to ride out a dropped connection (5s, then 10s), not so many that
// a box that is really down keeps the operator waiting.
const (
	defaultRetries = 2
	defaultBackoff = 5 * time.Second
)

func runEngine(ctx context.Context, g *globalOptions, v engineVerb) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	command := "boxswap " + v.name
	store, err := g.backend()
	if err != nil {
		return err
	}
	lock, err := store.Lock(state.CurrentHolder(command))
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if w := lock.Info().Warning; w != "" {
		fmt.Fprintf(g.stderr, "boxswap: warning: %s\n", w)
	}
	if r := lock.Info().Reclaimed; r != nil {
		fmt.Fprintf(g.stderr, "boxswap: reclaimed a stale lock of pid %d (%s), which is gone\n", r.PID, holderText(*r))
	}
	if err := g.verifyStore(store); err != nil {
		return err // an unusable state is refused before any box is dialed
	}
	d, err := newDialer(cfg)
	if err != nil {
		return err
	}
	defer d.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	done := make(chan struct{})
	defer close(done)
	sig := watchSignals(g.stderr, stop, cancel, done)

	who := state.Me()
	rep := g.reporter()
	defer rep.Close()
	e := &fsm.Engine{
		Config:  cfg,
		Store:   store,
		LogDir:  g.logDir(),
		Boxes:   d.Runner,
		Report:  rep,
		Notify:  notifier(cfg),
		Approve: approver(g, who, stop, rep),
		Force:   g.force(),
		Who:     who,
		Command: v.name,
		Stop:    stop,
		Retries: defaultRetries,
		Backoff: defaultBackoff,
		Wrap:    faultWrap(g.stderr), // nil but in the lab's rehearsal binary: see docs/reliability.md
	}
	att, err := v.run(e, ctx)
	rep.Close()
	printSummary(g.stdout, att, err)
	if s := sig.get(); s != nil && (errors.Is(err, fsm.ErrStopped) || errors.Is(err, context.Canceled)) {
		what := "before any transition"
		if att != nil {
			what = fmt.Sprintf("%s (attempt %d) at %s, now %s", att.Event, att.ID, att.FailedStep, att.Status)
		}
		_ = store.Record(state.Event{Who: who, Kind: "signal", Detail: fmt.Sprintf("boxswap %s stopped by %s: %s", v.name, signalName(*s), what)})
		err = &signalError{sig: *s, err: err}
	}
	return err
}

// signalError is a run the operator stopped with a signal: its exit code is
// 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
type signalError struct {
	sig syscall.Signal
	err error
}

func (e *signalError) Error() string { return e.err.Error() }
func (e *signalError) Unwrap() error { return e.err }

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGPIPE:
		return "SIGPIPE"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	}
	return s.String()
}

// seenSignal is the last signal watchSignals received, if any.
type seenSignal struct {
	mu  sync.Mutex
	sig *syscall.Signal
}

func (s *seenSignal) set(sig syscall.Signal) { s.mu.Lock(); s.sig = &sig; s.mu.Unlock() }

func (s *seenSignal) get() *syscall.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sig
}

// watchSignals turns a first stop signal (stopSignals: SIGINT, SIGTERM,
// SIGHUP, SIGPIPE, SIGQUIT) into a stop at the next safe point (between
// steps, or at once in a wait: a connection attempt, a backoff, a reboot
// wait), and a second SIGINT, SIGTERM or SIGQUIT into cancelling the step.
// The signal recorded is the first.
func watchSignals(stderr io.Writer, stop chan struct{}, cancel func(), done <-chan struct{}) *seenSignal {
	seen := &seenSignal{}
	sigs := make(chan os.Signal, 4)
	watching.Store(true)
	signal.Notify(sigs, stopSignals()...)
	go func() {
		defer watching.Store(false)
		defer signal.Stop(sigs)
		n, pipeSaid := 0, false
		for {
			select {
			case <-done:
				return
			case s := <-sigs:
				if n > 0 && countsOnce(s) {
					continue
				}
				if s == syscall.SIGPIPE && !outputClosed() {
					// Not the reader of stdout or stderr gone: a write on a
					// connection to a box that was closed under it (the
					// write fails, and is handled as a lost link).
					if !pipeSaid {
						pipeSaid = true
						fmt.Fprintf(stderr, "\nboxswap: SIGPIPE with stdout and stderr open: a write to a closed connection, not a stop (stop with SIGTERM)\n")
					}
					continue
				}
				n++
				name := s.String()
				if ss, ok := s.(syscall.Signal); ok {
					name = signalName(ss)
					if seen.get() == nil {
						seen.set(ss)
					}
				}
				if n == 1 {
					close(stop)
					fmt.Fprintf(stderr, "\nboxswap: %s: stopping at the next safe point (waits end now); a second one interrupts the step itself (resume checks it again)\n", name)
					continue
				}
				fmt.Fprintf(stderr, "\nboxswap: %s: interrupting the current step\n", name)
				cancel()
				return
			}
		}
	}()
	return seen
}

// approver answers the gates: --yes approves as user@host; a terminal is
// asked; anything else is refused with what to do.
func approver(g *globalOptions, who string, stop <-chan struct{}, rep reporter) func(ctx context.Context, gate, prompt string) (string, error) {
	return func(ctx context.Context, _, prompt string) (string, error) {
		if g.Yes {
			rep.Say(fmt.Sprintf("approved with --yes by %s: %s", who, prompt))
			return who, nil
		}
		if !stdinIsTerminal(g.stdin) {
			// The question goes with the run's lines: the hint is one line.
			rep.Say(fmt.Sprintf("the gate asks: %s", prompt))
			return "", withHint(fmt.Errorf("%w: --yes was not given and there is no terminal to ask on", steps.ErrNotApproved),
				"run with --yes once you have validated what the gate asks (above), or run on a terminal to be asked")
		}
		rep.Hold() // live lines would draw over the question
		fmt.Fprintf(g.stderr, "%s — type yes to go on: ", prompt)
		line := make(chan string, 1)
		go func() {
			s, _ := bufio.NewReader(g.stdin).ReadString('\n')
			line <- s
		}()
		select {
		case s := <-line:
			if ans := strings.TrimSpace(s); ans != "yes" {
				return "", fmt.Errorf("%w: the answer was %q, not yes", steps.ErrNotApproved, ans)
			}
			return who, nil
		case <-stop:
			return "", fmt.Errorf("%w: stopped at the prompt", steps.ErrNotApproved)
		case <-ctx.Done():
			return "", fmt.Errorf("%w: %w", steps.ErrNotApproved, ctx.Err())
		}
	}
}

// printSummary lists the attempt's steps, then the outcome.
func printSummary(w io.Writer, att *state.Attempt, err error) {
	if att == nil {
		return
	}
	fmt.Fprintf(w, "\n%s (attempt %d): %s\n", att.Event, att.ID, att.Status)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  STATUS\tSTEP\tBOX\tTRIES\tTIME")
	for _, s := range att.Steps {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\n", s.Status, s.ID, steps.BoxLabel(s.Box), s.Attempts, duration(s.Started, s.Ended))
	}
	tw.Flush()
	switch {
	case err == nil && att.Status == state.Done:
		fmt.Fprintf(w, "phase is now %s; boxswap plan shows what comes next\n", att.To)
	case err == nil:
		fmt.Fprintf(w, "phase is still %s\n", att.From)
	case errors.Is(err, fsm.ErrStopped):
		fmt.Fprintf(w, "stopped at %s; phase is still %s; boxswap resume goes on\n", att.FailedStep, att.From)
	default:
		fmt.Fprintf(w, "phase is still %s\n", att.From)
	}
}

// duration is how long a step took, or "-" when it has not ended.
func duration(start, end time.Time) string {
	if start.IsZero() || end.IsZero() || end.Before(start) {
		return "-"
	}
	return text.Round(end.Sub(start)).String()
}

// boxDialer is what the verbs need of boxes.Dialer.
type boxDialer interface {
	Runner(name string) (boxes.Runner, error)
	Close() error
}

// notifier posts the engine's notices to boxes.yaml's webhooks, if any.
func notifier(cfg *boxes.Config) func(context.Context, fsm.Notice) error {
	if len(cfg.Notify) == 0 {
		return nil
	}
	w := notify.New(cfg.Notify)
	return func(ctx context.Context, n fsm.Notice) error { return w.Send(ctx, n.Kind, n) }
}
