package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"boxswap/state"
)

func newStateCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state init | push DEST | pull FILE",
		Short: "Create a state on etcd, or copy a state between bbolt and etcd",
		Long: `state init creates the state at the etcd prefix --state (or boxes.yaml's
state.url) names: until then every verb refuses the prefix ("no boxswap
state at PREFIX"), so that a mistyped prefix never starts a cycle afresh.
A bbolt state needs no init: its first write creates the file.

state push DEST copies the state (--state, or boxes.yaml's) to DEST, an
etcd URL (etcd://HOST:PORT[,HOST:PORT…]/PREFIX) or a file; state pull FILE
copies it into a new bbolt file. Both hold the source's operator lock
during the copy (refused while another boxswap holds it), write only to an
empty destination, and read the copy back to check that it is the same.
The source is left as it was: point --state (or state.url) at the copy.`,
		Example: `  boxswap --state etcd://10.0.0.5:2379/boxswap/site-a state init
  boxswap state push etcd://10.0.0.5:2379/boxswap/site-a  # boxswap.db to etcd
  boxswap --state etcd://10.0.0.5:2379/boxswap/site-a state pull backup.db`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use: "init", Short: "Create the state at an etcd prefix", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runStateInit(cmd.Context(), g) },
	}, &cobra.Command{
		Use: "push DEST", Short: "Copy the state to an etcd prefix or a file", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runStateCopy(cmd.Context(), g, args[0]) },
	}, &cobra.Command{
		Use: "pull FILE", Short: "Copy the state into a new bbolt file", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if w, err := parseState(args[0]); err != nil {
				return err
			} else if w.Etcd {
				return usagef("state pull writes a file; to copy to etcd, use state push %s", args[0])
			}
			return runStateCopy(cmd.Context(), g, args[0])
		},
	})
	return cmd
}

func runStateInit(_ context.Context, g *globalOptions) error {
	if _, err := g.loadConfig(); err != nil {
		return err
	}
	s, err := g.etcdBackend("state init creates a state on etcd; %s is a bbolt file, which its first write creates",
		"give --state etcd://HOST:PORT/PREFIX, or state.url in boxes.yaml")
	if err != nil {
		return err
	}
	if err := s.Create(); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "created an empty boxswap state at %s\n", s.Path())
	return nil
}

// runStateCopy copies the state to dest under the source's lock, then
// reads the copy back and compares.
func runStateCopy(_ context.Context, g *globalOptions, dest string) error {
	if _, err := g.loadConfig(); err != nil {
		return err
	}
	src, err := g.backend()
	if err != nil {
		return err
	}
	lock, err := src.Lock(state.CurrentHolder("boxswap state copy"))
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := g.verifyStore(src); err != nil {
		return err
	}
	dst, closeDst, err := g.openDest(dest)
	if err != nil {
		return err
	}
	defer closeDst()
	if dst.Path() == src.Path() {
		return usagef("state copy: %s is the source itself", dest)
	}
	d, err := state.ReadDump(src)
	if err != nil {
		return err
	}
	if err := dst.(state.Loader).Load(d); err != nil {
		return err
	}
	got, err := state.ReadDump(dst)
	if err != nil {
		return fmt.Errorf("state copy: reading the copy back: %w", err)
	}
	if same, part := state.SameDump(d, got); !same {
		return fmt.Errorf("state copy: the copy at %s differs from %s in its %s: do not use it", dst.Path(), src.Path(), part)
	}
	fmt.Fprintf(g.stdout, "copied %s to %s: phase %s, %d attempts, %d events; read back and identical\n",
		src.Path(), dst.Path(), d.Meta.Phase, len(d.Attempts), len(d.History))
	return nil
}

// openDest opens a copy's destination: an etcd prefix, or a bbolt file.
func (g *globalOptions) openDest(dest string) (state.Backend, func(), error) {
	w, err := parseState(dest)
	if err != nil {
		return nil, nil, err
	}
	if !w.Etcd {
		return state.Open(w.Path), func() {}, nil
	}
	s, err := g.openEtcd(w)
	if err != nil {
		return nil, nil, err
	}
	return s, func() { _ = s.Close() }, nil
}
