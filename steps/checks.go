package steps

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"boxswap/boxes"
)

type reachableStep struct {
	base
	box string
}

// Reachable checks that box answers over SSH by its own name (its host key
// known and accepted). It changes nothing.
func Reachable(id, box string) Step {
	return &reachableStep{box: box, base: base{id: id, desc: Description{
		Box: box, Text: "check that " + box + " answers over ssh", Commands: []string{"true"}, Retry: true,
	}}}
}

func (s *reachableStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	if _, err := stream(ctx, env, s.box, "checking that it answers", "true", false); err != nil {
		return false, err.Error(), nil
	}
	return true, s.box + " answers", nil
}

func (s *reachableStep) Apply(ctx context.Context, env *Env) error {
	_, err := stream(ctx, env, s.box, "checking that it answers", "true", false)
	if errors.Is(err, boxes.ErrUnreachable) {
		return fmt.Errorf("%w; run boxswap check to see why", err)
	}
	return err
}

func (s *reachableStep) Undo(context.Context, *Env) error { return nil }

// dfRow is one line of df -P -B1.
type dfRow struct {
	Filesystem        string
	Size, Used, Avail int64
	Mount             string
}

// parseDF reads df -P -B1 output: a header, then one row per path asked
// (in order). Filesystem and mount point may hold spaces, so a row is
// read around its capacity column ("42%", or "-").
func parseDF(out string) ([]dfRow, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(strings.TrimSpace(lines[0]), "Filesystem") {
		return nil, errors.New("df: no header line")
	}
	var rows []dfRow
	for n, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pct := -1
		for i := 4; i < len(f); i++ {
			if c := f[i]; c == "-" || strings.HasSuffix(c, "%") && digits(strings.TrimSuffix(c, "%")) {
				pct = i
				break
			}
		}
		if pct < 0 || pct+1 >= len(f) {
			return nil, fmt.Errorf("df line %d: cannot read %q", n+2, clip(line))
		}
		var nums [3]int64
		for k := range nums {
			v, err := strconv.ParseInt(f[pct-3+k], 10, 64)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("df line %d: %q is not a byte count", n+2, clip(f[pct-3+k]))
			}
			nums[k] = v
		}
		rows = append(rows, dfRow{
			Filesystem: strings.Join(f[:pct-3], " "),
			Size:       nums[0], Used: nums[1], Avail: nums[2],
			Mount: strings.Join(f[pct+1:], " "),
		})
	}
	return rows, nil
}

type freeDiskStep struct {
	base
	box   string
	paths []string
	min   int64
}

// FreeDisk checks that each of paths on box sits on a filesystem with at
// least min bytes available (the upgrade downloads and unpacks a release).
// It changes nothing.
func FreeDisk(id, box string, paths []string, minFree int64) Step {
	s := &freeDiskStep{box: box, paths: append([]string(nil), paths...), min: minFree}
	s.base = base{id: id, desc: Description{
		Box:      box,
		Text:     fmt.Sprintf("check that %s has %s free on %s", box, human(minFree), strings.Join(paths, ", ")),
		Commands: []string{s.cmd()},
		Retry:    true,
	}}
	return s
}

func (s *freeDiskStep) cmd() string { return "df -P -B1 -- " + quoteAll(s.paths) }

func (s *freeDiskStep) short(ctx context.Context, env *Env) ([]string, string, error) {
	if len(s.paths) == 0 {
		return nil, "no paths to check", nil
	}
	res, err := run(ctx, env, s.box, "measuring the free disk space", s.cmd(), false)
	if err != nil {
		return nil, "", err
	}
	rows, err := parseDF(res.Stdout)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", s.box, err)
	}
	if len(rows) != len(s.paths) {
		return nil, "", fmt.Errorf("%s: measuring the free disk space: df gave %d rows for %d paths", s.box, len(rows), len(s.paths))
	}
	var short, seen []string
	for i, r := range rows {
		seen = append(seen, fmt.Sprintf("%s free on %s", human(r.Avail), s.paths[i]))
		if r.Avail < s.min {
			short = append(short, fmt.Sprintf("only %s free on %s (%s)", human(r.Avail), s.paths[i], r.Mount))
		}
	}
	return short, strings.Join(seen, ", "), nil
}

func (s *freeDiskStep) Check(ctx context.Context, env *Env) (bool, string, error) {
	short, why, err := s.short(ctx, env)
	if err != nil {
		return false, "", err
	}
	if len(short) > 0 {
		return false, strings.Join(short, ", "), nil
	}
	return true, why, nil
}

func (s *freeDiskStep) Apply(ctx context.Context, env *Env) error {
	short, _, err := s.short(ctx, env)
	if err != nil || len(short) == 0 {
		return err
	}
	return fmt.Errorf("%s: %s, need %s: %w; free some space (dnf clean all, old kernels, docker images) or lower upgrade.min_free_disk, then run boxswap resume",
		s.box, strings.Join(short, ", "), human(s.min), ErrPrecondition)
}

func (s *freeDiskStep) Undo(context.Context, *Env) error { return nil }

// human prints a byte count in binary units.
func human(n int64) string { return boxes.HumanBytes(n) }
