package main

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

type versionOptions struct{}

// versionJSON is what version --json prints.
type versionJSON struct {
	Version  string `json:"version"`  // the module version, "(devel)" for a local build
	Commit   string `json:"commit"`   // the VCS revision it was built from, if known
	Modified bool   `json:"modified"` // built from a tree with uncommitted changes
	Go       string `json:"go"`
}

// buildVersion reads the module version and commit the binary was built with.
func buildVersion() versionJSON {
	v := versionJSON{Version: "(unknown)"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.Version, v.Go = bi.Main.Version, bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func (v versionJSON) String() string {
	s := v.Version
	if v.Commit != "" {
		s += " commit " + v.Commit
		if v.Modified {
			s += " (modified)"
		}
	}
	return s + " " + v.Go
}

func newVersionCommand(g *globalOptions) *cobra.Command {
	var opts versionOptions
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and commit boxswap was built from",
		Long: `version prints the module version and the commit boxswap was built from
(as boxswap --version does); --json prints them as an object.`,
		Example:     "  boxswap version --json",
		Annotations: map[string]string{annJSON: "yes"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVersion(cmd.Context(), opts, g)
		},
	}
}

func runVersion(_ context.Context, _ versionOptions, g *globalOptions) error {
	v := buildVersion()
	if g.JSON {
		return g.printJSON(v)
	}
	_, err := fmt.Fprintf(g.stdout, "boxswap %s\n", v)
	return err
}
