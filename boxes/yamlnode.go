package boxes

// The primitives that read typed values from a yaml.Node tree, each
// problem with its line.

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the text %q", clip(n.Value))
		case "!!int", "!!float":
			return "the number " + clip(n.Value)
		case "!!bool":
			return "the boolean " + n.Value
		case "!!null":
			return "nothing"
		}
		return fmt.Sprintf("%s %q", n.ShortTag(), clip(n.Value))
	}
	return "nothing"
}

// clip shortens values quoted in messages.
func clip(s string) string {
	if len(s) <= 60 {
		return s
	}
	i := 57
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

// join builds the dotted path of a key for messages.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mapping is one YAML mapping with its keys checked.
type mapping struct {
	path string
	node *yaml.Node            // nil when absent
	vals map[string]*yaml.Node // by key
}

func (m *mapping) at(key string) string { return join(m.path, key) }

// line is the mapping's own line, where a missing key is reported.
func (m *mapping) line(l *loader) int {
	if _, ok := l.pos[m.path]; ok || m.node == nil {
		return l.line(m.path)
	}
	return m.node.Line
}

// get returns the value of key, nil when absent or null.
func (m *mapping) get(key string) *yaml.Node {
	n := m.vals[key]
	if n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	return n
}

// node returns n unless it is an alias, which boxes.yaml does not allow:
// every value is written where it applies.
func (l *loader) node(n *yaml.Node, path string) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		l.add(n.Line, "write the value out instead of *"+n.Value, "%s: aliases are not allowed", path)
		return nil
	}
	return n
}

// mapping checks that n is a mapping of known, unique, plain keys. A nil
// or null n gives an empty mapping; so does a wrong type, once reported.
func (l *loader) mapping(n *yaml.Node, path string, allowed ...string) *mapping {
	m := &mapping{path: path, vals: map[string]*yaml.Node{}}
	n = l.node(n, path)
	if n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return m
	}
	if n.Kind != yaml.MappingNode {
		l.add(n.Line, "write it as indented key: value lines", "%s: must be a mapping, not %s", path, kindName(n))
		return m
	}
	m.node = n
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			l.add(k.Line, "keys are plain words like name or host", "%s: key %s is not a plain word", orTop(path), kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			l.add(k.Line, fmt.Sprintf("keep one of them; the first is on line %d", first), "%s: duplicate key %q", orTop(path), k.Value)
			continue
		}
		seen[k.Value] = k.Line
		if allowed != nil && !contains(allowed, k.Value) {
			hint := suggest(k.Value, allowed)
			if k.Value == "<<" {
				hint = "write the keys out; merge keys are not allowed"
			}
			l.add(k.Line, hint, "%s: unknown key %q", orTop(path), k.Value)
			continue
		}
		m.vals[k.Value] = v
		// A scalar is reported where it is written; a section, or a key
		// with nothing after it, on the key's line.
		l.pos[join(path, k.Value)] = k.Line
		if v.Kind == yaml.ScalarNode && v.ShortTag() != "!!null" {
			l.pos[join(path, k.Value)] = v.Line
		}
	}
	return m
}

func orTop(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

// words are the strings of a list of names typed as strings (Events,
// NotifyEvents).
func words[T ~string](list []T) []string {
	out := make([]string, len(list))
	for i, x := range list {
		out[i] = string(x)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest names the closest allowed key, or lists them all.
func suggest(key string, allowed []string) string {
	best, dist := "", 3
	for _, a := range allowed {
		if len(key) >= 3 && strings.HasPrefix(a, strings.ToLower(key)) {
			return "did you mean " + a + "?"
		}
		if d := editDistance(strings.ToLower(key), a); d < dist {
			best, dist = a, d
		}
	}
	if best != "" {
		return "did you mean " + best + "?"
	}
	return "allowed keys here: " + strings.Join(allowed, ", ")
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// missing reports a required key that is absent or empty.
func (l *loader) missing(m *mapping, key, hint string) {
	if m.vals[key] != nil {
		l.add(l.line(m.at(key)), hint, "%s: %s is empty", orTop(m.path), key)
		return
	}
	l.add(m.line(l), hint, "%s: missing %s", orTop(m.path), key)
}

// scalar returns the value of key if it is a scalar with one of tags.
// need is the hint for a missing value; "" means the key is optional.
func (l *loader) scalar(m *mapping, key, need, typeHint string, tags ...string) *yaml.Node {
	n := l.node(m.get(key), m.at(key))
	if n == nil {
		if need != "" && (m.vals[key] == nil || m.vals[key].Kind != yaml.AliasNode) {
			l.missing(m, key, need)
		}
		return nil
	}
	if n.Kind == yaml.ScalarNode && contains(tags, n.ShortTag()) {
		return n
	}
	l.add(n.Line, typeHint, "%s: must be %s, not %s", m.at(key), tagNames(tags), kindName(n))
	return nil
}

func tagNames(tags []string) string {
	switch tags[0] {
	case "!!str":
		return "text"
	case "!!int":
		return "a whole number"
	case "!!bool":
		return "true or false"
	}
	return tags[0]
}

// str reads a text value and checks it with check (which may be nil).
func (l *loader) str(m *mapping, key, need string, check checker) (string, bool) {
	n := l.scalar(m, key, need, `write it as text; quote it if it looks like a number: "29"`, "!!str")
	if n == nil {
		return "", false
	}
	if n.Value == "" && need != "" {
		l.missing(m, key, need)
		return "", false
	}
	if n.Value == "" {
		// An optional value written empty: the caller's default applies.
		return "", true
	}
	return n.Value, l.check(n, m.at(key), n.Value, check)
}

// checker says what is wrong with a value ("" if nothing) and what to do.
type checker func(string) (msg, hint string)

// maxText bounds every text value of boxes.yaml, commands included; the
// checkers bound each kind of value more tightly where it has a limit of
// its own (a path, a file name, a URL).
const maxText = 64 << 10

func (l *loader) check(n *yaml.Node, path, v string, check checker) bool {
	if len(v) > maxText {
		l.add(n.Line, "check what the value holds; boxes.yaml values are at most 64 KiB", "%s: is %d bytes long", path, len(v))
		return false
	}
	if check == nil {
		return true
	}
	if msg, hint := check(v); msg != "" {
		l.add(n.Line, hint, "%s: %q %s", path, clip(v), msg)
		return false
	}
	return true
}

// integer reads a whole number.
func (l *loader) integer(m *mapping, key, need string) (int, bool) {
	n := l.scalar(m, key, need, "write a whole number without quotes", "!!int")
	if n == nil {
		return 0, false
	}
	var v int64
	if err := n.Decode(&v); err != nil || int64(int(v)) != v {
		l.add(n.Line, "write a smaller whole number", "%s: %s is out of range", m.at(key), clip(n.Value))
		return 0, false
	}
	return int(v), true
}

func (l *loader) boolean(m *mapping, key string) (bool, bool) {
	n := l.scalar(m, key, "", "write true or false", "!!bool")
	if n == nil {
		return false, false
	}
	var v bool
	if err := n.Decode(&v); err != nil {
		l.add(n.Line, "write true or false", "%s: %q is not true or false", m.at(key), clip(n.Value))
		return false, false
	}
	return v, true
}

// duration reads a Go duration string. A bare number is refused: seconds
// or minutes would be a guess.
func (l *loader) duration(m *mapping, key, example string) (time.Duration, bool) {
	hint := "write it with a unit, like " + example
	n := l.node(m.get(key), m.at(key))
	if n == nil {
		return 0, false
	}
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
		l.add(n.Line, hint, "%s: %s has no unit", m.at(key), clip(n.Value))
		return 0, false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		l.add(n.Line, hint, "%s: must be a duration, not %s", m.at(key), kindName(n))
		return 0, false
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		l.add(n.Line, hint+"; units are s, m and h", "%s: %q is not a duration", m.at(key), clip(n.Value))
		return 0, false
	}
	if d < 0 {
		l.add(n.Line, hint, "%s: %s is negative", m.at(key), n.Value)
		return 0, false
	}
	return d, true
}

func (l *loader) byteSize(m *mapping, key string) (ByteSize, bool) {
	hint := "write a size like 10GiB, 500MB, or 1024 for bytes"
	n := l.node(m.get(key), m.at(key))
	if n == nil {
		return 0, false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" && n.ShortTag() != "!!int" {
		l.add(n.Line, hint, "%s: must be a size, not %s", m.at(key), kindName(n))
		return 0, false
	}
	b, err := ParseByteSize(n.Value)
	if err != nil {
		l.add(n.Line, hint, "%s: %v", m.at(key), err)
		return 0, false
	}
	return b, true
}

// fraction reads a number from 0 to 1 (0.5, or 0 and 1 as whole numbers).
func (l *loader) fraction(m *mapping, key string) (float64, bool) {
	hint := "write a number from 0 to 1, like 0.5"
	n := l.scalar(m, key, "", hint, "!!float", "!!int")
	if n == nil {
		return 0, false
	}
	var v float64
	if err := n.Decode(&v); err != nil || !(v >= 0 && v <= 1) {
		l.add(n.Line, hint, "%s: %s is not a number from 0 to 1", m.at(key), clip(n.Value))
		return 0, false
	}
	return v, true
}

// strList reads a list of text values; each is checked with check and
// must be unique. Bad items are left out.
func (l *loader) strList(m *mapping, key, need, example string, check checker) []string {
	items := l.seq(m, key, need, "write a list: "+key+": "+example)
	if n := m.get(key); n == nil || n.Kind != yaml.SequenceNode {
		return nil // seq said what is wrong
	}
	if len(items) == 0 && need != "" {
		l.missing(m, key, need)
		return nil
	}
	out := []string{}
	seen := map[string]int{}
	for i, it := range items {
		path := fmt.Sprintf("%s[%d]", m.at(key), i)
		it = l.node(it, path)
		if it == nil {
			continue
		}
		if it.Kind != yaml.ScalarNode || it.ShortTag() != "!!str" {
			l.add(it.Line, "write each item as text: "+example, "%s: must be text, not %s", path, kindName(it))
			continue
		}
		if !l.check(it, path, it.Value, check) {
			continue
		}
		if first, dup := seen[it.Value]; dup {
			l.add(it.Line, fmt.Sprintf("remove one; the first is on line %d", first), "%s: %q is listed twice", m.at(key), clip(it.Value))
			continue
		}
		seen[it.Value] = it.Line
		l.pos[path] = it.Line
		out = append(out, it.Value)
	}
	return out
}

// seq returns the items of a list value, nil when absent.
func (l *loader) seq(m *mapping, key, need, example string) []*yaml.Node {
	raw := m.vals[key]
	n := l.node(m.get(key), m.at(key))
	if n == nil {
		if need != "" && (raw == nil || raw.Kind != yaml.AliasNode) {
			l.missing(m, key, need)
		}
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		l.add(n.Line, example, "%s: must be a list, not %s", m.at(key), kindName(n))
		return nil
	}
	return n.Content
}

// newer reports a file written for a newer boxswap. Such a file may have
// keys and rules this one does not know: its other problems would only
// bury the real one, so they are not looked for.
