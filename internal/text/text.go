// Package text makes strings safe to print on an operator's terminal.
package text

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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

// OneLine makes s one line of at most n characters for an operator's
// screen: line breaks and runs of blanks become one space, and a longer
// s loses its middle (" … "), since its start says what failed and its
// end why. The whole text belongs in a record, not on that line.
func OneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n || n < 10 {
		return s
	}
	const gap = " … "
	tail := (n - len([]rune(gap))) / 3
	head := n - len([]rune(gap)) - tail
	return string(r[:head]) + gap + string(r[len(r)-tail:])
}

// Width is what a person reads fits in: one terminal line.
const Width = 80

// Wrap breaks s into lines of at most width runes at spaces, the first
// line starting with first and the others with rest (their runes count in
// width). A word longer than a line is cut with "…" at its end, so that no
// line is ever wider: the whole text is behind --json.
func Wrap(s string, width int, first, rest string) []string {
	var lines []string
	line, prefix := first, first
	room := func(p string) int { return width - utf8.RuneCountInString(p) }
	for _, word := range strings.Fields(s) {
		if line != prefix && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > width {
			lines = append(lines, line)
			line, prefix = rest, rest
		}
		if line == prefix {
			if r := []rune(word); len(r) > room(prefix) && room(prefix) > 1 {
				word = string(r[:room(prefix)-1]) + "…"
			}
			line += word
			continue
		}
		line += " " + word
	}
	if line != prefix || len(lines) == 0 {
		lines = append(lines, line)
	}
	return lines
}

// Cut shortens s to at most n runes, ending it with "…" when cut.
func Cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n || n < 1 {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Fold breaks s into lines of at most width runes as Wrap does, but keeps
// every character: a word longer than a line is split across lines, and
// runs of spaces are kept. For commands shown for reading; the exact one
// is on one line behind --wide.
func Fold(s string, width int, first, rest string) []string {
	var lines []string
	prefix := first
	r := []rune(s)
	for {
		room := max(width-utf8.RuneCountInString(prefix), 8)
		if len(r) <= room {
			return append(lines, prefix+string(r))
		}
		cut := room
		for i := room; i > room/2; i-- {
			if r[i] == ' ' {
				cut = i
				break
			}
		}
		lines = append(lines, prefix+string(r[:cut]))
		if r[cut] == ' ' {
			cut++ // the break stands for this one space
		}
		r, prefix = r[cut:], rest
	}
}
