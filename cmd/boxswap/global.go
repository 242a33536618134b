package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"boxswap/boxes"
	"boxswap/fsm"
	"boxswap/internal/text"
	"boxswap/state"
	"boxswap/state/etcdstate"
	"boxswap/steps"
)

// globalOptions are the flags every verb shares, and the process's streams.
type globalOptions struct {
	Config string
	State  string
	JSON   bool
	Yes    bool
	Force  []string
	Plain  bool
	// EtcdOpts reach a state on etcd (flags; see etcdOptions).
	EtcdOpts etcdOptions

	// cfg is boxes.yaml once loaded; etcd the etcd state once opened.
	cfg  *boxes.Config
	etcd *etcdstate.Store

	stdin          io.Reader
	stdout, stderr io.Writer
	// started is set once a verb runs: an error before that came from
	// cobra's own parsing, and is a usage error.
	started bool
}

// Command annotations say which global flags a verb honours, so that a flag
// that would be silently ignored is refused instead.
const (
	annJSON  = "boxswap/json"  // the verb has a --json form
	annSteps = "boxswap/steps" // the verb runs or plans steps: --yes, --force apply
)

// guardName is what --force accepts: a guard's name as steps spell it.
var guardName = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// validate catches bad and conflicting flags before anything is read.
func (g *globalOptions) validate(cmd *cobra.Command) error {
	name := cmd.Name()
	if g.Config == "" {
		return usagef("-c/--config is empty; give the path of boxes.yaml")
	}
	if cmd.Flags().Changed("state") {
		if _, err := parseState(g.State); err != nil {
			return err
		}
	}
	if g.JSON && cmd.Annotations[annJSON] == "" {
		return usagef("--json does not apply to %s; it applies to where, plan, status, sizes, log, check and pairs", name)
	}
	if cmd.Annotations[annSteps] == "" {
		if g.Yes {
			return usagef("--yes does not apply to %s; it approves the gates of next and resume", name)
		}
		if len(g.Force) > 0 {
			return usagef("--force does not apply to %s; it overrides a guard of next, resume, rollback or plan", name)
		}
	}
	for _, f := range g.Force {
		if !guardName.MatchString(f) {
			return usagef("--force %q is not a guard name; guards are named in their refusals, e.g. --force max-delete", f)
		}
		if _, ok := steps.ParseGuard(f); !ok {
			return withHint(usagef("--force %s: no guard is named %s", f, f),
				"the guards are: "+strings.Join(steps.GuardNames(), ", ")+"; each refusal names the one to override")
		}
	}
	if f := cmd.Flags().Lookup("stop-before"); f != nil && f.Changed && f.Value.String() == "" {
		return usagef("--stop-before is empty; give a step ID (boxswap plan lists them)")
	}
	return nil
}

// force is --force as the engine wants it.
// Each name was checked by validate.
func (g *globalOptions) force() map[steps.Guard]bool {
	if len(g.Force) == 0 {
		return nil
	}
	m := map[steps.Guard]bool{}
	for _, f := range g.Force {
		if guard, ok := steps.ParseGuard(f); ok {
			m[guard] = true
		}
	}
	return m
}

// statePath is --state, or boxswap.db beside boxes.yaml.
func (g *globalOptions) statePath() string {
	if g.State != "" {
		return g.State
	}
	return filepath.Join(filepath.Dir(g.Config), "boxswap.db")
}

// loadConfig loads and validates boxes.yaml; every verb calls it before
// touching the state or a box.
func (g *globalOptions) loadConfig() (*boxes.Config, error) {
	cfg, err := boxes.Load(g.Config)
	var le *boxes.LoadError
	switch {
	case err == nil:
		g.cfg = cfg
		return cfg, nil
	case errors.As(err, &le):
		return cfg, err
	case errors.Is(err, fs.ErrNotExist):
		return nil, withHint(&usageError{err.Error()},
			"run boxswap from the folder holding boxes.yaml, or pass -c PATH")
	}
	// A directory, a FIFO, a file it may not read: boxes.yaml is unusable,
	// which is a usage error (exit 2), not a failed step.
	return nil, withHint(&usageError{err.Error()}, "pass -c the path of a readable boxes.yaml file")
}

// openStore opens the state and reads it whole once, so that every verb
// refuses a damaged state, or one naming a phase this boxswap does not
// know, the same way (exit 8) before it does anything. It creates nothing;
// the first write does.
func (g *globalOptions) openStore() (state.Backend, error) {
	store, err := g.backend()
	if err != nil {
		return nil, err
	}
	return store, g.verifyStore(store)
}

// verifyStore is openStore's check of a backend already opened (one whose
// lock is held). What the check found that works but should be fixed (an
// etcd pair nested under this one) is printed as a warning.
func (g *globalOptions) verifyStore(store state.Backend) error {
	if err := store.Verify(); err != nil {
		return err
	}
	if w, ok := store.(interface{ Warnings() []string }); ok {
		for _, l := range w.Warnings() {
			fmt.Fprintf(g.stderr, "boxswap: warning: %s\n", l)
		}
	}
	_, err := fsm.ReadMeta(store)
	return err
}

// printJSON writes v as indented JSON on stdout.
func (g *globalOptions) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // commands hold && and <
	return enc.Encode(v)
}

// isStateFileError reports an unusable state file (exit 8).
func isStateFileError(err error) bool {
	return errors.Is(err, state.ErrNewerSchema) || errors.Is(err, state.ErrCorrupt) || errors.Is(err, state.ErrBusy)
}

// jsonError is an error under --json: {"error": {...}}.
type jsonError struct {
	Code     int      `json:"code"`
	Kind     string   `json:"kind"`
	Message  string   `json:"message"`
	Hint     string   `json:"hint,omitempty"`
	Problems []string `json:"problems,omitempty"` // boxes.yaml's, one per line
	Detail   string   `json:"detail,omitempty"`   // message with the command and the transport's words, when it differs
}

func newJSONError(err error) *jsonError {
	if err == nil {
		return nil
	}
	code, kind, def := classify(err)
	j := &jsonError{Code: code, Kind: kind, Message: err.Error(), Hint: hintOf(err, def)}
	if d := steps.Detail(err); d != j.Message {
		j.Detail = d
	}
	var le *boxes.LoadError
	if errors.As(err, &le) {
		j.Problems = strings.Split(le.Error(), "\n")
	}
	return j
}

// reportedError is an error a verb already put in its --json report (as
// its "error" member), so that stdout holds one JSON document.
type reportedError struct{ error }

func (e reportedError) Unwrap() error { return e.error }

// reported marks err as carried by the verb's JSON report.
func reported(err error) error {
	if err == nil {
		return nil
	}
	return reportedError{err}
}

// report prints err for a person (stderr) or, under --json, as an object
// on stdout too, and returns the exit code.
func report(err error, jsonOut bool, stdout, stderr io.Writer) int {
	code, _, def := classify(err)
	if code == exitOK {
		return code
	}
	hint := hintOf(err, def)
	msg := err.Error()
	var re reportedError
	if jsonOut && !errors.As(err, &re) {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		_ = enc.Encode(map[string]*jsonError{"error": newJSONError(err)})
	}
	var le *boxes.LoadError
	if errors.As(err, &le) && len(le.Problems) > 1 {
		fmt.Fprintf(stderr, "boxswap: %s has %d problems:\n", le.File, le.Count())
		for _, l := range strings.Split(le.Error(), "\n") {
			fmt.Fprintf(stderr, "  %s\n", l)
		}
	} else if errors.As(err, new(*fsm.StepError)) {
		fmt.Fprintln(stderr, screenLine("boxswap: ", msg))
	} else {
		// Continuation lines (joined errors) are indented under the first.
		fmt.Fprintf(stderr, "boxswap: %s\n", strings.ReplaceAll(msg, "\n", "\n  "))
	}
	if hint != "" {
		fmt.Fprintln(stderr, screenLine("hint: ", hint))
	}
	return code
}

// maxScreenLine bounds a step failure's line and every hint's: what a
// person reads is one line of each; the rest (the command, the output, the
// transport's words) is in the step's record, which boxswap log shows.
// Other errors (boxes.yaml's problems, a usage error listing the step IDs)
// are printed whole: no record keeps them.
const maxScreenLine = 200

// screenLine is prefix and s on one line of at most maxScreenLine
// characters; joined errors are separated by "; ".
func screenLine(prefix, s string) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ")
	return prefix + text.OneLine(s, maxScreenLine-utf8.RuneCountInString(prefix))
}

// wantsJSON finds --json in raw arguments, for errors cobra hits before it
// has parsed the flags.
func wantsJSON(args []string) bool {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--json" || a == "--json=true" {
			return true
		}
	}
	return false
}

// stdinIsTerminal reports whether r is a terminal a person can answer on.
// A character device is not enough: /dev/null is one.
func stdinIsTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && isTerminal(f)
}

// terminalWidth is f's width in columns, or 80 when it cannot be read.
func terminalWidth(f *os.File) int {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return 80
	}
	return int(ws.Col)
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	_, err = unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// paragraph returns a printer of a paragraph on w: wrapped to 80 columns
// (text.Width) unless wide, its first line starting with first, the
// others with rest.
func paragraph(w io.Writer, wide bool) func(s, first, rest string) {
	width := text.Width
	if wide {
		width = 1 << 30
	}
	return func(s, first, rest string) {
		for _, l := range text.Wrap(s, width, first, rest) {
			fmt.Fprintln(w, l)
		}
	}
}

// addWide gives a verb --wide: its text as long as it is, not fitted to
// 80 columns (text.Width).
func addWide(cmd *cobra.Command, wide *bool) {
	cmd.Flags().BoolVar(wide, "wide", false, "do not fit the text to 80 columns: long lines stay whole")
}
