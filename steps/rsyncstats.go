package steps

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// RsyncStats is what rsync --stats reports (a dry run: what it would do).
type RsyncStats struct {
	Files           int64 // Number of files
	Created         int64 // Number of created files (rsync >= 3.1)
	Deleted         int64 // Number of deleted files (rsync >= 3.1)
	HasDeleted      bool  // the deleted count was reported
	Transferred     int64 // Number of (regular) files transferred
	TotalSize       int64 // Total file size, bytes
	TransferredSize int64 // Total transferred file size, bytes
}

// ParseRsyncStats reads the --stats block of rsync's output (3.0 to 3.4
// wording; numbers may carry thousands separators). Lines it does not know
// are skipped; an output without "Number of files" is an error, as is a
// known line whose number does not parse.
func ParseRsyncStats(out string) (RsyncStats, error) {
	var st RsyncStats
	seen := false
	for _, line := range strings.Split(out, "\n") {
		key, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch key {
		case "Number of files":
			dst, seen = &st.Files, true
		case "Number of created files":
			dst = &st.Created
		case "Number of deleted files":
			dst, st.HasDeleted = &st.Deleted, true
		case "Number of regular files transferred", "Number of files transferred":
			dst = &st.Transferred
		case "Total file size":
			dst = &st.TotalSize
		case "Total transferred file size":
			dst = &st.TransferredSize
		default:
			continue
		}
		n, err := statNumber(val)
		if err != nil {
			return RsyncStats{}, fmt.Errorf("rsync stats: %s: %w", key, err)
		}
		*dst = n
	}
	if !seen {
		return RsyncStats{}, errors.New("no rsync statistics in the output (no \"Number of files\" line)")
	}
	return st, nil
}

// statNumber reads "1,234 (reg: 2, dir: 2)" or "6 bytes": the first word,
// without thousands separators (',' '.' or '\” depending on the locale).
func statNumber(val string) (int64, error) {
	fields := strings.Fields(val)
	if len(fields) == 0 {
		return 0, errors.New("no number")
	}
	w := strings.NewReplacer(",", "", ".", "", "'", "").Replace(fields[0])
	if w == "" || strings.TrimLeft(w, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a count", clip(fields[0]))
	}
	n, err := strconv.ParseInt(w, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", clip(fields[0]))
	}
	return n, nil
}
