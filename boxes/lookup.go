package boxes

import (
	"net"
	"strconv"
)

// Box returns the box called name.
func (c *Config) Box(name string) (Box, bool) {
	for _, b := range c.Boxes {
		if b.Name == name {
			return b, true
		}
	}
	return Box{}, false
}

// ByFunction returns the box declared in boxes.yaml with function fn. The
// declared function is where the pair starts; during an upgrade the state
// database, not this, says who holds what.
func (c *Config) ByFunction(fn string) (Box, bool) {
	for _, b := range c.Boxes {
		if b.Function == fn {
			return b, true
		}
	}
	return Box{}, false
}

// Other returns the box of the pair that is not name; false when name is
// not one of the boxes.
func (c *Config) Other(name string) (Box, bool) {
	if _, ok := c.Box(name); !ok {
		return Box{}, false
	}
	for _, b := range c.Boxes {
		if b.Name != name {
			return b, true
		}
	}
	return Box{}, false
}

// Addr is host:port for dialing, with brackets around an IPv6 address.
func (b Box) Addr() string {
	return net.JoinHostPort(b.Host, strconv.Itoa(b.Port.Int()))
}
