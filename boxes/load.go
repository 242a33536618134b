package boxes

import (
	"boxswap/internal/safefile"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Version is the boxes.yaml format this boxswap reads.
const Version = 1

// maxProblems bounds the list a person has to read.
const maxProblems = 50

// maxConfigSize bounds what Load reads: a boxes.yaml is a few kilobytes.
const maxConfigSize = 1 << 20

// Problem is one thing wrong in a boxes.yaml.
type Problem struct {
	Line int    // 1-based line in the file; 0 when no line applies
	Msg  string // what is wrong, lowercase, naming the key
	Hint string // what to do about it; may be empty
}

func (p Problem) String() string {
	s := p.Msg
	if p.Hint != "" {
		s += " (hint: " + p.Hint + ")"
	}
	// One line per problem, whatever the file held.
	return strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(s)
}

// LoadError is returned by Load when boxes.yaml is not valid. It lists every
// problem found, in line order, not just the first.
type LoadError struct {
	File string
	// Problems are the first maxProblems, then one saying how many more
	// there are: what a person reads.
	Problems []Problem
	// Total is how many problems were found, those not listed too.
	Total int
}

// Count is how many problems boxes.yaml has: Total, not the length of the
// list, whose last line may stand for thousands.
func (e *LoadError) Count() int { return max(e.Total, len(e.Problems)) }

// Error prints one "FILE:LINE: what is wrong (hint: …)" line per problem.
func (e *LoadError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		if p.Line > 0 {
			fmt.Fprintf(&b, "%s:%d: %s", e.File, p.Line, p)
		} else {
			fmt.Fprintf(&b, "%s: %s", e.File, p)
		}
	}
	return b.String()
}

// Load reads, checks and completes the boxes.yaml at path. It refuses
// unknown and duplicate keys, wrong types and values that could not be used
// safely, and reports all of them at once as a *LoadError. Defaults are
// filled in and SSH paths made absolute (~ expanded, relative paths taken
// from the file's folder). A file that cannot be read gives a wrapped
// os error instead.
func Load(path string) (*Config, error) {
	// O_NONBLOCK: -c on a FIFO must not hang waiting for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("load %s: %w", path, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("is %s, not a regular file", safefile.Kind(fi.Mode()))})
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return LoadBytes(path, data)
}

// LoadBytes is Load of data, read from path (which names the file in
// errors and anchors relative SSH paths): a transition re-plans from the
// boxes.yaml it recorded, not from the file as it is now.
func LoadBytes(path string, data []byte) (*Config, error) {
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	l := &loader{file: path, dir: dir, pos: map[string]int{}, settingKeys: map[string]Settings{}}
	cfg := l.load(data)
	if cfg != nil && len(l.problems) == 0 {
		l.sameMachine(cfg)
	}
	if len(l.problems) > 0 {
		sort.SliceStable(l.problems, func(i, j int) bool { return l.problems[i].Line < l.problems[j].Line })
		total := len(l.problems)
		if n := total; n > maxProblems {
			l.problems = append(l.problems[:maxProblems], Problem{
				Msg:  fmt.Sprintf("%d more problems not shown", n-maxProblems),
				Hint: "fix these first",
			})
		}
		return nil, &LoadError{File: path, Problems: l.problems, Total: total}
	}
	cfg.Source = string(data)
	return cfg, nil
}

// loader walks the yaml.Node tree rather than decoding into structs so that
// each problem gets a line, and so that all problems are collected.
type loader struct {
	file     string
	dir      string // absolute folder of file, for relative SSH paths
	problems []Problem
	// pos maps a value's path (boxes[0].host) to its line, for the checks
	// that compare values once the whole file is read.
	pos map[string]int
	// boxPaths[i] is where Config.Boxes[i] was read (boxes[1]).
	boxPaths []string
	// settingKeys are the keys each settings mapping writes (by path),
	// those with a refused value too.
	settingKeys map[string]Settings
}

func (l *loader) add(line int, hint, format string, args ...any) {
	l.problems = append(l.problems, Problem{Line: line, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// line returns where path was read, or its closest parent's line.
func (l *loader) line(path string) int {
	for path != "" {
		if n, ok := l.pos[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return l.pos[""]
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (l *loader) load(data []byte) *Config {
	if len(data) > maxConfigSize {
		l.add(0, "a boxes.yaml is a few kilobytes; check the path", "file is larger than 1MiB")
		return nil
	}
	if !l.plainText(data) {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.add(1, "start from the shipped boxes.yaml", "file is empty")
			return nil
		}
		l.syntax(data, err)
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		l.add(next.Line, "remove the --- line and what follows; keep one document", "a second YAML document starts here")
	} else if !errors.Is(err, io.EOF) {
		l.syntax(data, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		l.add(1, "start from the shipped boxes.yaml", "file is empty")
		return nil
	}
	root := doc.Content[0]
	l.pos[""] = root.Line
	if root.Kind != yaml.MappingNode {
		l.add(root.Line, "start from the shipped boxes.yaml", "file must be a mapping of keys (version, boxes, functions, …), not %s", kindName(root))
		return nil
	}
	if l.newer(root) {
		return nil
	}
	m := l.mapping(root, "", "version", "boxes", "functions", "app", "data", "upgrade", "cleanup", "ssh", "hooks", "notify", "state")
	l.version(m)
	c := &Config{File: l.file, Version: Version}
	c.Boxes = l.boxes(m)
	c.Functions = l.functions(m)
	c.App = l.app(m)
	c.Data = l.data(m)
	c.Upgrade = l.upgrade(m)
	c.Cleanup = l.cleanup(m)
	c.SSH = l.ssh(m)
	c.Hooks = l.hooks(m, c.Boxes)
	c.Notify = l.notify(m)
	c.State = l.state(m)
	l.validate(c)
	return c
}

// plainText refuses bytes the YAML reader reports without a line: NUL and
// other control characters, invalid UTF-8.
func (l *loader) plainText(data []byte) bool {
	ok := true
	for i, line := range bytes.Split(data, []byte("\n")) {
		if !utf8.Valid(line) {
			l.add(i+1, "save the file as UTF-8", "line is not valid UTF-8")
			ok = false
			continue
		}
		for _, r := range string(line) {
			if r == '\t' || r == '\r' || r == '\uFEFF' {
				continue
			}
			if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
				l.add(i+1, "remove it; write special characters as \\x escapes in double quotes if you must", "line holds control character %U", r)
				ok = false
				break
			}
		}
	}
	return ok
}

// syntax turns a yaml.v3 syntax error into a problem. yaml.v3 gives the
// line where the construct began, and none at all on line 1.
func (l *loader) syntax(data []byte, err error) {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	// yaml.v3 counts lines from 1 for scanner errors but from 0 for
	// parser errors, and leaves out a line 0.
	if parserError(msg) || line == 0 {
		line++
	}
	if name, ok := strings.CutPrefix(msg, "unknown anchor '"); ok {
		name, _, _ = strings.Cut(name, "'")
		for i, text := range strings.Split(string(data), "\n") {
			if strings.Contains(text, "*"+name) {
				line = i + 1
				break
			}
		}
	}
	hint := "fix the YAML syntax; compare with the shipped boxes.yaml"
	if strings.Contains(msg, "tab") {
		// Point at the tab itself, which may be a few lines further.
		lines := strings.Split(string(data), "\n")
		for i := line - 1; i >= 0 && i < len(lines); i++ {
			indent := lines[i][:len(lines[i])-len(strings.TrimLeft(lines[i], " \t"))]
			if strings.Contains(indent, "\t") {
				line = i + 1
				break
			}
		}
		hint = "indent with spaces; YAML does not allow tabs there"
	}
	l.add(line, hint, "not valid YAML: %s", msg)
}

// parserError tells yaml.v3's parser messages from its scanner ones.
func parserError(msg string) bool {
	for _, p := range []string{
		"did not find expected ',' or ']'", "did not find expected ',' or '}'",
		"did not find expected '-' indicator", "did not find expected <document start>",
		"did not find expected <stream-start>", "did not find expected key",
		"did not find expected node content", "found duplicate %TAG directive",
		"found duplicate %YAML directive", "found incompatible YAML document",
		"found undefined tag handle",
	} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
