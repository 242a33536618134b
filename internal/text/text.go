// Package text makes strings safe to print on an operator's terminal.
package text

import (
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Hidden reports a character that acts on a terminal instead of showing:
// C0 and C1 controls (ESC, CR, NUL, NEL), DEL, the Unicode line and
// paragraph separators (U+2028, U+2029: a line break to some editors and
// terminals, not to others), and the bidi marks, embeddings, overrides
// and isolates that can reorder a line.
func Hidden(r rune) bool {
	return unicode.IsControl(r) || r == 0x2028 || r == 0x2029 || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) || r == 0x200E || r == 0x200F
}

// Printable returns s with every Hidden character escaped as Go escapes it
// (\x1b, \u202e); other text is left as it is.
func Printable(s string) string {
	if !strings.ContainsFunc(s, Hidden) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if Hidden(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Round shortens a duration for people: milliseconds under a second,
// tenths under a minute, seconds above.
func Round(d time.Duration) time.Duration {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < time.Minute:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// MaxLineShow is how long a line of a box's output an error quotes.
const MaxLineShow = 400

// Tail returns the last n non-blank lines of a command's output, each
// trimmed and cut to MaxLineShow bytes: what an error quotes of it. It is
// the one trimmer of output tails (steps' errors, the CLI's queries).
func Tail(s string, n int) []string {
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if len(l) > MaxLineShow {
			l = l[:MaxLineShow] + "…"
		}
		lines = append(lines, l)
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// LastLine is the last of lines, or "".
func LastLine(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}
