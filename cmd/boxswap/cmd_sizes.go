package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"boxswap/boxes"
)

type sizesOptions struct{}

func newSizesCommand(g *globalOptions) *cobra.Command {
	var opts sizesOptions
	return &cobra.Command{
		Use:   "sizes",
		Short: "Show the size of each data folder (and its backup) on each box",
		Long: `sizes runs du -sb on each data folder, and on its backup (the folder
with the backup suffix, left by the epilogue), on both boxes: what a sync
will have to move.`,
		Example: `  boxswap sizes
  boxswap sizes --json`,
		Annotations: map[string]string{annJSON: "yes"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSizes(cmd.Context(), opts, g)
		},
	}
}

type boxSizes struct {
	Name    string       `json:"name"`
	Host    string       `json:"host"`
	Folders []folderSize `json:"folders"`
	Error   string       `json:"error,omitempty"`
	err     error
}

type sizesJSON struct {
	Boxes []*boxSizes `json:"boxes"`
	Error *jsonError  `json:"error,omitempty"`
}

func runSizes(ctx context.Context, _ sizesOptions, g *globalOptions) error {
	cfg, d, err := g.connect()
	if err != nil {
		return err
	}
	defer d.Close()
	paths := dataPaths(cfg, true)
	var out sizesJSON
	out.Boxes, err = askBoxes(cfg, func(b boxes.Box) *boxSizes { return sizesOf(ctx, d, b, paths) },
		func(s *boxSizes) error { return s.err })
	return g.report(err, func() { printSizes(g.stdout, paths, out) }, &out, func(e *jsonError) { out.Error = e })
}

func sizesOf(ctx context.Context, d boxDialer, b boxes.Box, paths []string) *boxSizes {
	s := &boxSizes{Name: b.Name, Host: b.Host, Folders: []folderSize{}}
	r, err := d.Runner(b.Name)
	if err == nil {
		var out string
		out, _, err = capture(ctx, b.Name, r, "du", duCommand(paths))
		if err == nil {
			s.Folders, err = parseDu(out)
			if err != nil {
				err = fmt.Errorf("%s: %w", b.Name, err)
			}
		}
	}
	if err != nil {
		s.Error, s.err = err.Error(), err
	}
	return s
}

func printSizes(w io.Writer, paths []string, s sizesJSON) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "FOLDER\t")
	for _, b := range s.Boxes {
		fmt.Fprintf(tw, "%s\t", b.Name)
	}
	fmt.Fprintln(tw)
	for _, p := range paths {
		fmt.Fprintf(tw, "%s\t", p)
		for _, b := range s.Boxes {
			cell := "?"
			if b.Error == "" {
				cell = "missing"
				for _, f := range b.Folders {
					if f.Path == p && f.Exists {
						cell = boxes.HumanBytes(f.Bytes)
					}
				}
			}
			fmt.Fprintf(tw, "%s\t", cell)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	for _, b := range s.Boxes {
		if b.Error != "" {
			fmt.Fprintf(w, "%s: %s\n", b.Name, b.Error)
		}
	}
}
