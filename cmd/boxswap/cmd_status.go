package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"boxswap/boxes"
)

type statusOptions struct{}

func newStatusCommand(g *globalOptions) *cobra.Command {
	var opts statusOptions
	return &cobra.Command{
		Use:   "status",
		Short: "Show each box as it is: units, settings, data, release, images",
		Long: `status asks each box, over SSH and read-only: whether the address units
and the app services are active and enabled, the three settings lines of the
settings file, whether the data folders exist and their size, the release
(VERSION_ID of /etc/os-release) and the container images, marking the images
that differ between the two boxes.`,
		Example: `  boxswap status
  boxswap status --json | jq '.boxes[].release'`,
		Annotations: map[string]string{annJSON: "yes"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatus(cmd.Context(), opts, g)
		},
	}
}

type boxStatus struct {
	Name          string       `json:"name"`
	Host          string       `json:"host"`
	Declared      string       `json:"declared_function"`
	Error         string       `json:"error,omitempty"` // the box could not be reached
	Release       string       `json:"release"`
	Units         []unitStatus `json:"units"`
	SettingsFile  string       `json:"settings_file"`
	Settings      []string     `json:"settings"`
	Data          []folderSize `json:"data"`
	Images        []image      `json:"images"`
	SectionErrors []string     `json:"errors,omitempty"`

	err error
}

type statusJSON struct {
	Boxes []*boxStatus `json:"boxes"`
	Error *jsonError   `json:"error,omitempty"`
}

func runStatus(ctx context.Context, _ statusOptions, g *globalOptions) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	d, err := newDialer(cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	out := statusJSON{Boxes: make([]*boxStatus, len(cfg.Boxes))}
	var wg sync.WaitGroup
	for i, b := range cfg.Boxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out.Boxes[i] = boxStatusOf(ctx, cfg, d, b)
		}()
	}
	wg.Wait()
	if len(out.Boxes) == 2 && out.Boxes[0].Images != nil && out.Boxes[1].Images != nil {
		markImageDiffs(out.Boxes[0].Images, out.Boxes[1].Images)
	}
	var errs []error
	for _, b := range out.Boxes {
		errs = append(errs, b.err)
	}
	err = errors.Join(errs...)
	if !g.JSON {
		printStatus(g.stdout, out)
		return err
	}
	out.Error = newJSONError(err)
	if perr := g.printJSON(out); perr != nil {
		return perr
	}
	return reported(err)
}

// boxStatusOf asks one box. A section that fails is reported and the others
// still run; only an unreachable box stops.
func boxStatusOf(ctx context.Context, cfg *boxes.Config, d boxDialer, b boxes.Box) *boxStatus {
	st := &boxStatus{Name: b.Name, Host: b.Host, Declared: b.Function, SettingsFile: cfg.App.SettingsFile}
	r, err := d.Runner(b.Name)
	if err != nil {
		st.Error, st.err = err.Error(), err
		return st
	}
	var keys []string
	for _, kv := range cfg.Functions[boxes.Production].Settings.Lines() {
		keys = append(keys, kv[0])
	}
	sections := []struct {
		what, cmd string
		parse     func(string) error
		// quiet is the exit code that means "nothing found", not a failure.
		quiet int
	}{
		{"os-release", releaseCommand(), func(s string) error { st.Release = parseRelease(s); return nil }, -1},
		{"units", unitsCommand(statusUnits(cfg)), func(s string) error { st.Units = parseUnits(s); return nil }, -1},
		{"settings", settingsCommand(cfg.App.SettingsFile, keys), func(s string) error { st.Settings = lines(s); return nil }, 1},
		{"data", duCommand(dataPaths(cfg, false)), func(s string) error {
			var err error
			st.Data, err = parseDu(s)
			return err
		}, -1},
		{"images", imagesCommand(), func(s string) error { st.Images = parseImages(s); return nil }, -1},
	}
	for _, sec := range sections {
		out, code, err := capture(ctx, b.Name, r, sec.what, sec.cmd)
		if err != nil && code == sec.quiet && !isTransport(err) {
			err = nil
		}
		if err == nil {
			err = sec.parse(out)
		}
		if err == nil {
			continue
		}
		if isTransport(err) {
			st.Error, st.err = err.Error(), err
			return st
		}
		st.SectionErrors = append(st.SectionErrors, err.Error())
	}
	if st.Images == nil {
		st.Images = []image{}
	}
	if n := len(st.SectionErrors); n > 0 {
		st.err = fmt.Errorf("%s: %d of the status commands failed (shown above)", b.Name, n)
	}
	return st
}

func isTransport(err error) bool {
	return errors.Is(err, boxes.ErrUnreachable) || errors.Is(err, boxes.ErrOutcomeUnknown) || errors.Is(err, context.Canceled)
}

func printStatus(w io.Writer, s statusJSON) {
	for i, b := range s.Boxes {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s (%s), declared %s in boxes.yaml\n", b.Name, b.Host, b.Declared)
		if b.Error != "" {
			fmt.Fprintf(w, "  unreachable: %s\n", b.Error)
			continue
		}
		fmt.Fprintf(w, "  release: %s\n", orDash(b.Release))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  UNIT\tACTIVE\tENABLED")
		for _, u := range b.Units {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", u.Unit, u.Active, u.Enabled)
		}
		tw.Flush()
		fmt.Fprintf(w, "  settings (%s):\n", b.SettingsFile)
		if len(b.Settings) == 0 {
			fmt.Fprintln(w, "    none found")
		}
		for _, l := range b.Settings {
			fmt.Fprintf(w, "    %s\n", l)
		}
		fmt.Fprintln(w, "  data:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, f := range b.Data {
			size := "missing"
			if f.Exists {
				size = humanBytes(f.Bytes)
			}
			fmt.Fprintf(tw, "    %s\t%s\n", f.Path, size)
		}
		tw.Flush()
		other := "the other box"
		if len(s.Boxes) == 2 {
			other = s.Boxes[1-i].Name
		}
		fmt.Fprintf(w, "  images (* not the same on %s):\n", other)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, im := range b.Images {
			mark := " "
			if im.Differs {
				mark = "*"
			}
			fmt.Fprintf(tw, "  %s %s\t%s\n", mark, im.Name, im.ID)
		}
		tw.Flush()
		for _, e := range b.SectionErrors {
			fmt.Fprintf(w, "  error: %s\n", e)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
