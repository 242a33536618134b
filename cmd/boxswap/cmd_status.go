package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"boxswap/boxes"
	"boxswap/internal/text"
	"boxswap/steps"
)

type statusOptions struct {
	// Wide does not fit the table to 80 columns.
	Wide bool
}

func newStatusCommand(g *globalOptions) *cobra.Command {
	var opts statusOptions
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each box as it is: units, settings, data, release, images",
		Long: `status asks each box, over SSH and read-only: whether the address units
and the app services are active and enabled, the three settings lines of the
settings file, whether the data folders exist and their size, the release
(VERSION_ID of /etc/os-release) and the container images, marking the images
that differ between the two boxes. Values too long for 80 columns are cut
with "…"; --wide shows them whole, as --json does.`,
		Example: `  boxswap status
  boxswap status --json | jq '.boxes[].release'`,
		Annotations: map[string]string{annJSON: "yes"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatus(cmd.Context(), opts, g)
		},
	}
	addWide(cmd, &opts.Wide)
	return cmd
}

type boxStatus struct {
	Name          string       `json:"name"`
	Host          string       `json:"host"`
	Declared      string       `json:"declared_function"`
	Function      string       `json:"function"`        // from the address units: production, development, none
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
	// keys are the settings boxes.yaml sets, listed first.
	keys []string
}

func runStatus(ctx context.Context, opts statusOptions, g *globalOptions) error {
	cfg, d, err := g.connect()
	if err != nil {
		return err
	}
	defer d.Close()
	out := statusJSON{keys: cfg.SettingsKeys()}
	out.Boxes, err = askBoxes(cfg, func(b boxes.Box) *boxStatus { return boxStatusOf(ctx, cfg, d, b) },
		func(s *boxStatus) error { return s.err })
	if len(out.Boxes) == 2 && out.Boxes[0].Images != nil && out.Boxes[1].Images != nil {
		markImageDiffs(out.Boxes[0].Images, out.Boxes[1].Images)
	}
	return g.report(err, func() { printStatus(g.stdout, out, opts.Wide) }, &out, func(e *jsonError) { out.Error = e })
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
	keys := cfg.SettingsKeys()
	sections := []struct {
		what, cmd string
		parse     func(string) error
		// quiet is the exit code that means "nothing found", not a failure.
		quiet int
	}{
		{"os-release", steps.OSReleaseCommand, func(s string) error { st.Release = steps.VersionID(s); return nil }, -1},
		{"units", unitsCommand(statusUnits(cfg)), func(s string) error {
			st.Units = parseUnits(s)
			st.Function = functionOf(cfg, st.Units)
			return nil
		}, -1},
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

// printStatus shows the boxes side by side, one row per thing a person
// compares: what differs between the two columns is what matters.
// Unless wide, it fits 80 columns (text.Width): long labels and values
// are cut with "…".
func printStatus(w io.Writer, s statusJSON, wide bool) {
	// Not a tabwriter: the section titles must not widen the first
	// column, and the columns must line up across sections.
	var rows [][]string // nil cells: a section title
	line := func(label string, cells []string) { rows = append(rows, append([]string{label}, cells...)) }
	row := func(label string, cell func(b *boxStatus) string) {
		var cells []string
		for _, b := range s.Boxes {
			c := "?"
			if b.Error == "" {
				c = cell(b)
			}
			cells = append(cells, c)
		}
		line(label, cells)
	}
	section := func(title string) { rows = append(rows, []string{title + ":"}) }
	var names, hosts, declared []string
	for _, b := range s.Boxes {
		names, hosts, declared = append(names, b.Name), append(hosts, b.Host), append(declared, b.Declared)
	}
	line("", names)
	line("host", hosts)
	line("declared", declared)
	row("function", func(b *boxStatus) string { return orDash(b.Function) })
	row("release", func(b *boxStatus) string { return orDash(b.Release) })
	if len(s.Boxes) > 0 {
		section("units (active, enabled)")
		for _, u := range unionUnits(s.Boxes) {
			row("  "+u, func(b *boxStatus) string {
				for _, x := range b.Units {
					if x.Unit == u {
						return x.Active + ", " + x.Enabled
					}
				}
				return "-"
			})
		}
		section("settings")
		for _, k := range unionSettings(s.keys, s.Boxes) {
			row("  "+k, func(b *boxStatus) string {
				if v, ok := settingValue(b.Settings, k); ok {
					return v
				}
				return "not set"
			})
		}
		section("data")
		for _, p := range unionFolders(s.Boxes) {
			row("  "+p, func(b *boxStatus) string {
				for _, f := range b.Data {
					if f.Path == p {
						if f.Exists {
							return boxes.HumanBytes(f.Bytes)
						}
						return "missing"
					}
				}
				return "-"
			})
		}
		section("images")
		for _, name := range unionImages(s.Boxes) {
			row("  "+name, func(b *boxStatus) string {
				for _, im := range b.Images {
					if im.Name == name {
						if im.Differs {
							return "* " + im.ID
						}
						return "  " + im.ID
					}
				}
				return "* none"
			})
		}
	}
	if !wide {
		fitRows(rows, len(s.Boxes))
	}
	widths := make([]int, len(s.Boxes)+1)
	for _, r := range rows {
		for i, c := range r {
			if len(r) > 1 {
				widths[i] = max(widths[i], utf8.RuneCountInString(c))
			}
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	wrap := paragraph(w, wide)
	para := func(s, first string) { wrap(s, first, "  ") }
	if len(s.Boxes) > 0 {
		para(fmt.Sprintf("(settings from %s; * marks an image not the same on the other box)", s.Boxes[0].SettingsFile), "")
	}
	for _, b := range s.Boxes {
		if b.Error != "" {
			para(oneLine(b.Error, wide), b.Name+": unreachable: ")
		}
		for _, e := range b.SectionErrors {
			para(oneLine(e, wide), "error: ")
		}
	}
}

// fitRows cuts the labels to 30 columns and the boxes' cells to what is
// left of 80 (text.Width) shared between them, 2 spaces between columns.
func fitRows(rows [][]string, boxes int) {
	const labelMax = 30
	label := 0
	for _, r := range rows {
		if len(r) > 1 {
			label = max(label, min(utf8.RuneCountInString(r[0]), labelMax))
		}
	}
	cell := (text.Width - label - 2*boxes) / max(boxes, 1)
	for _, r := range rows {
		if len(r) < 2 {
			r[0] = text.Cut(r[0], text.Width)
			continue
		}
		// A label's end tells it from the others (a folder's path).
		if n := utf8.RuneCountInString(r[0]); n > label {
			indent := len(r[0]) - len(strings.TrimLeft(r[0], " "))
			r[0] = r[0][:indent] + "…" + string([]rune(r[0])[n-label+indent+1:])
		}
		for i := 1; i < len(r); i++ {
			r[i] = text.Cut(r[i], cell)
		}
	}
}

// functionOf says which function a box holds by its address units: the
// truth on the box, to compare with boxes.yaml and where.
func functionOf(cfg *boxes.Config, units []unitStatus) string {
	var held []string
	for _, fn := range []string{boxes.Production, boxes.Development} {
		for _, u := range units {
			if u.Unit == cfg.Functions[fn].AddressUnit && u.Active == "active" {
				held = append(held, fn)
			}
		}
	}
	if len(held) == 0 {
		return "none"
	}
	return strings.Join(held, "+")
}

func unionUnits(bs []*boxStatus) []string {
	return union(bs, func(b *boxStatus) (out []string) {
		for _, u := range b.Units {
			out = append(out, u.Unit)
		}
		return out
	})
}

func unionFolders(bs []*boxStatus) []string {
	return union(bs, func(b *boxStatus) (out []string) {
		for _, f := range b.Data {
			out = append(out, f.Path)
		}
		return out
	})
}

func unionImages(bs []*boxStatus) []string {
	return union(bs, func(b *boxStatus) (out []string) {
		for _, im := range b.Images {
			out = append(out, im.Name)
		}
		return out
	})
}

func unionSettings(keys []string, bs []*boxStatus) []string {
	return append(slices.Clone(keys), union(bs, func(b *boxStatus) (out []string) {
		for _, l := range b.Settings {
			k, _, _ := strings.Cut(l, "=")
			if k = strings.TrimSpace(k); !slices.Contains(keys, k) {
				out = append(out, k)
			}
		}
		return out
	})...)
}

// union lists the names each box has, in first-seen order.
func union(bs []*boxStatus, names func(*boxStatus) []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, b := range bs {
		for _, n := range names(b) {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

// settingValue finds key's line ("key = value") and returns its value; the
// last one wins, as in Python.
func settingValue(lines []string, key string) (string, bool) {
	v, found := "", false
	for _, l := range lines {
		k, val, ok := strings.Cut(l, "=")
		if ok && strings.TrimSpace(k) == key {
			v, found = strings.TrimSpace(val), true
		}
	}
	return v, found
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
