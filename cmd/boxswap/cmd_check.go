package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"boxswap/boxes"
	"boxswap/fsm"
)

type checkOptions struct {
	Offline bool
}

func newCheckCommand(g *globalOptions) *cobra.Command {
	var opts checkOptions
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check boxes.yaml, then that both boxes and box-to-box ssh work",
		Long: `check loads boxes.yaml and lists every problem in it (FILE:LINE: what is
wrong). Without --offline it then reaches each box by its own name, verifying
its host key against known_hosts (an unknown key is refused, with its
fingerprint and how to trust it), runs true there, and checks that each box
reaches the other with ssh as the syncs will (BatchMode, known host key).`,
		Example: `  boxswap -c boxes.yaml check --offline
  boxswap check`,
		Annotations: map[string]string{annJSON: "yes"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.Context(), opts, g)
		},
	}
	cmd.Flags().BoolVar(&opts.Offline, "offline", false, "check boxes.yaml only; do not reach the boxes")
	return cmd
}

type checkJSON struct {
	Config configSummary `json:"config"`
	// Boxes is null with --offline.
	Boxes []*boxCheck `json:"boxes"`
	OK    bool        `json:"ok"`
	// Error is set when ok is false: what main reports, with its exit code.
	Error *jsonError `json:"error,omitempty"`
}

type configSummary struct {
	File    string    `json:"file"`
	OK      bool      `json:"ok"`
	State   string    `json:"state"`
	Boxes   []boxRef  `json:"boxes"`
	From    int       `json:"from"`
	To      int       `json:"to"`
	Method  string    `json:"method"`
	Names   [2]string `json:"-"`
	Root    string    `json:"data_root"`
	Folders []string  `json:"folders"`
	Hooks   int       `json:"hooks"`
}

type boxRef struct {
	Name     string `json:"name"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	User     string `json:"user"`
	Function string `json:"function"`
}

type boxCheck struct {
	Name      string `json:"name"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// Fingerprint of an unknown or changed host key.
	Fingerprint string   `json:"fingerprint,omitempty"`
	Peer        *peerSSH `json:"peer"`
	err         error
}

// peerSSH is the box-to-box ssh the syncs need.
type peerSSH struct {
	To      string `json:"to"`
	Command string `json:"command"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
}

// peerTimeout bounds the box-to-box check, whose ssh runs on the box with
// its own timeouts.
const peerTimeout = 2 * time.Minute

func runCheck(ctx context.Context, opts checkOptions, g *globalOptions) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	if err := fsm.CheckPlans(cfg); err != nil {
		return withHint(&usageError{err.Error()}, "fix the hooks in boxes.yaml (boxswap plan lists each transition's step IDs), then run boxswap check --offline")
	}
	for _, w := range cfg.Notify {
		// A URL from the environment or a file is checked where it is.
		if _, err := w.Target(); err != nil {
			return withHint(&usageError{fmt.Sprintf("%s:%d: notify: %v", cfg.File, w.Line, err)},
				"set the variable, or fix the file, that url_env or url_file names in boxes.yaml")
		}
	}
	out := checkJSON{Config: summarize(cfg, g.stateURL()), OK: true}
	if !g.JSON {
		printConfigSummary(g.stdout, out.Config)
	}
	if opts.Offline {
		if g.JSON {
			return g.printJSON(out)
		}
		return nil
	}
	d, err := newDialer(cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	out.Boxes, err = askBoxes(cfg, func(b boxes.Box) *boxCheck { return checkBox(ctx, cfg, d, b) },
		func(c *boxCheck) error { return c.err })
	if err != nil {
		out.OK = false
	}
	err = withHint(err, "fix what is listed above, then run boxswap check again")
	return g.report(err, func() { printBoxChecks(g.stdout, out.Boxes) }, &out, func(e *jsonError) { out.Error = e })
}

// checkBox reaches b, runs true, then ssh from b to the other box.
func checkBox(ctx context.Context, cfg *boxes.Config, d boxDialer, b boxes.Box) *boxCheck {
	c := &boxCheck{Name: b.Name}
	r, err := d.Runner(b.Name)
	if err == nil {
		_, _, err = capture(ctx, b.Name, r, "true", "true")
	}
	if err != nil {
		c.Error, c.err = err.Error(), err
		var hk *boxes.HostKeyError
		if errors.As(err, &hk) {
			c.Fingerprint = hk.Fingerprint()
		}
		return c
	}
	c.Reachable = true
	other, ok := cfg.Other(b.Name)
	if !ok {
		return c
	}
	p := &peerSSH{To: other.Name, Command: sshCommand(other)}
	c.Peer = p
	pctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	if _, _, err := capture(pctx, b.Name, r, "ssh to "+other.Name, p.Command); err != nil {
		p.Error = err.Error()
		c.err = fmt.Errorf("%w; the syncs run rsync on %s over ssh to %s: give root on %s a key that %s@%s accepts and put %s's host key in its known_hosts",
			err, b.Name, other.Name, b.Name, userOf(other), other.Host, other.Name)
		return c
	}
	p.OK = true
	return c
}

func userOf(b boxes.Box) string {
	if b.User == "" {
		return "root"
	}
	return b.User
}

func summarize(cfg *boxes.Config, statePath string) configSummary {
	s := configSummary{File: cfg.File, OK: true, State: statePath, From: cfg.Upgrade.From, To: cfg.Upgrade.To,
		Method: cfg.Upgrade.Method, Names: [2]string{cfg.Upgrade.Short(cfg.Upgrade.From), cfg.Upgrade.Short(cfg.Upgrade.To)},
		Root: cfg.Data.Root, Folders: cfg.Data.Folders}
	for _, b := range cfg.Boxes {
		s.Boxes = append(s.Boxes, boxRef{Name: b.Name, Host: b.Host, Port: b.Port.Int(), User: b.User, Function: b.Function})
	}
	for _, h := range cfg.Hooks {
		s.Hooks += len(h.Before) + len(h.After) + len(h.At)
	}
	return s
}

func printConfigSummary(w io.Writer, s configSummary) {
	fmt.Fprintf(w, "%s: ok\n", s.File)
	for _, b := range s.Boxes {
		fmt.Fprintf(w, "  %s: %s@%s port %d, %s\n", b.Name, b.User, b.Host, b.Port, b.Function)
	}
	fmt.Fprintf(w, "  upgrade %s to %s (%s); data %s: %v; %d hooks\n", s.Names[0], s.Names[1], s.Method, s.Root, s.Folders, s.Hooks)
	fmt.Fprintf(w, "  state: %s\n", s.State)
}

func printBoxChecks(w io.Writer, cs []*boxCheck) {
	for _, c := range cs {
		if !c.Reachable {
			fmt.Fprintf(w, "%s: FAILED: %s\n", c.Name, c.Error)
			continue
		}
		fmt.Fprintf(w, "%s: reachable, host key known\n", c.Name)
		if p := c.Peer; p != nil {
			if p.OK {
				fmt.Fprintf(w, "%s: reaches %s over ssh for rsync\n", c.Name, p.To)
			} else {
				fmt.Fprintf(w, "%s: FAILED: cannot reach %s over ssh for rsync: %s\n", c.Name, p.To, p.Error)
			}
		}
	}
}
