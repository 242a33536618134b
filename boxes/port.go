package boxes

import (
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Port is a TCP port written in decimal: yaml.v3 reads 022 as octal (18)
// and 0x16 as hex into an int, and boxes.yaml means 22 or a typo. Port
// decodes the node's text itself, so that it means the same whoever
// decodes boxes.yaml (the loader, or yaml.v3 into a Box directly).
type Port int

// ParsePort reads a port from its text as written: 1 to 65535, decimal
// digits only, no leading zero (YAML's octal), sign, underscore or base
// prefix (0x16, 0o26).
func ParsePort(s string) (Port, error) {
	digits := s != ""
	for _, r := range s {
		digits = digits && r >= '0' && r <= '9'
	}
	switch {
	case !digits:
		return 0, fmt.Errorf("port %s is not written in decimal digits", clip(s))
	case len(s) > 1 && s[0] == '0':
		return 0, fmt.Errorf("port %s has a leading zero (YAML reads it as octal); write %s", s, trimZeros(s))
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %s is out of range", clip(s))
	}
	return Port(n), nil
}

func trimZeros(s string) string {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s
}

// UnmarshalYAML decodes a port from the node's text as written, not from
// yaml.v3's reading of it as an integer.
func (p *Port) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return fmt.Errorf("line %d: port must be a number, not %s", n.Line, kindName(n))
	}
	v, err := ParsePort(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*p = v
	return nil
}

// Int is the port as an int, for net and strconv.
func (p Port) Int() int { return int(p) }
