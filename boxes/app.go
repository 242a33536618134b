package boxes

// Readers of what app and functions say about a move: the services that
// write, the containers, app.check and the function addresses.

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// services reads app.services: each entry a unit name, or a mapping with
// name and writes (default true). It returns every name, and the writers.
func (l *loader) services(m *mapping) (all, writers []string) {
	const example = "[nbh-uwsgi, {name: nbh-monitor, writes: false}]"
	all, writers = []string{}, []string{}
	items := l.seq(m, "services", "", "write a list: services: "+example)
	seen := map[string]int{}
	for i, it := range items {
		path := fmt.Sprintf("%s[%d]", m.at("services"), i)
		if it = l.node(it, path); it == nil {
			continue
		}
		l.pos[path] = it.Line
		name, writes, ok := l.service(it, path, example)
		if !ok {
			continue
		}
		if first, dup := seen[name]; dup {
			l.add(it.Line, fmt.Sprintf("remove one; the first is on line %d", first), "%s: %q is listed twice", m.at("services"), clip(name))
			continue
		}
		seen[name] = it.Line
		all = append(all, name)
		if writes {
			writers = append(writers, name)
		}
	}
	return all, writers
}

// service reads one entry of app.services.
func (l *loader) service(it *yaml.Node, path, example string) (name string, writes, ok bool) {
	if it.Kind == yaml.ScalarNode && it.ShortTag() == "!!str" {
		return it.Value, true, l.check(it, path, it.Value, checkUnit)
	}
	if it.Kind != yaml.MappingNode {
		l.add(it.Line, "write each service as a unit name or {name: UNIT, writes: false}: "+example, "%s: must be a unit name or a mapping, not %s", path, kindName(it))
		return "", false, false
	}
	sm := l.mapping(it, path, "name", "writes")
	name, ok = l.str(sm, "name", "add name: the service's unit, like nbh-monitor", checkUnit)
	writes = true
	if v, set := l.boolean(sm, "writes"); set {
		writes = v
	}
	return name, writes, ok
}

// appCheck reads app.check; nil when absent.
func (l *loader) appCheck(app *mapping) *Check {
	if app.get("check") == nil {
		return nil
	}
	m := l.mapping(app.vals["check"], app.at("check"), "path", "status", "text", "timeout", "ca", "insecure")
	if m.node == nil {
		return nil
	}
	c := &Check{Path: "/", Status: 200, Timeout: 30 * time.Second, Line: m.node.Line}
	if n := m.get("path"); n != nil && n.Kind == yaml.ScalarNode && urlSecret("https://box"+n.Value) != "" {
		// Not quoted back: it is a secret, and plan prints the check.
		l.add(n.Line, "check a page that needs no secret, like /hub/login", "%s: holds a secret parameter (not shown)", m.at("path"))
	} else if v, ok := l.str(m, "path", "", checkURLPath); ok && v != "" {
		c.Path = v
	}
	if v, ok := l.integer(m, "status", ""); ok {
		if v < 100 || v > 599 {
			l.add(l.line(m.at("status")), "write an HTTP status like 200", "%s: %d is not an HTTP status", m.at("status"), v)
		} else {
			c.Status = v
		}
	}
	c.Text, _ = l.str(m, "text", "", checkSetting)
	if v, ok := l.duration(m, "timeout", "30s"); ok {
		if v < time.Second {
			l.add(l.line(m.at("timeout")), "write how long the app may take to answer, like 30s", "%s: must be at least 1s", m.at("timeout"))
		} else {
			c.Timeout = v
		}
	}
	c.CA, _ = l.str(m, "ca", "", checkRemotePath)
	c.Insecure, _ = l.boolean(m, "insecure")
	if c.Insecure && c.CA != "" {
		l.add(l.line(m.at("insecure")), "keep ca: and remove insecure: a certificate is verified against it",
			"%s: insecure: true skips the verification ca: asks for", m.path)
	}
	return c
}

var ifaceRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,14}$`)

// IsInterface reports whether s is a network interface name: what
// functions.*.interface accepts, and what steps reads from ip's output.
func IsInterface(s string) bool { return ifaceRe.MatchString(s) }

// checkAddress accepts an IPv4 address: arping, which announces it and
// probes for another holder, speaks ARP.
func checkAddress(s string) (string, string) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return "is not an IPv4 address", "write the function's address alone, like 193.51.196.151"
	}
	return "", ""
}

func checkInterface(s string) (string, string) {
	if !IsInterface(s) {
		return "is not a network interface name", "write the interface that holds the address, like eth0, or leave interface out"
	}
	return "", ""
}

func checkContainers(s string) (string, string) {
	if s != ContainersDocker && s != ContainersPodman && s != ContainersNone {
		return "is not how containers run", "write containers: docker, containers: podman or containers: none"
	}
	return "", ""
}

// checkURLPath accepts the path (and query) of a URL on the site.
func checkURLPath(s string) (string, string) {
	if !strings.HasPrefix(s, "/") || len(s) > maxURL || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '#' || hidden(r) }) {
		return "is not a URL path", "write the path of a page on the site, starting with /, like /hub/login"
	}
	return "", ""
}
