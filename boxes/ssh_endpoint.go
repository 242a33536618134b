package boxes

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"

	"boxswap/internal/safefile"
)

// Endpoint is where and as whom a box is reached, after ~/.ssh/config.
//
// The box's host from boxes.yaml is looked up as a Host alias in the ssh
// config file named by ssh.config (only that file, and only if it exists).
// HostName from there always applies: that is what an alias is for. Port
// and User from boxes.yaml win unless they hold their defaults (22, root)
// or are unset, because the loader fills in those defaults and a written
// default cannot be told from an omitted one. IdentityFile entries are tried
// after ssh.identity; ProxyJump takes one hop. known_hosts is checked for
// Host (after HostName) and Port, as ssh does.
type Endpoint struct {
	Box   string // box name (or, for a jump host, the ProxyJump text)
	Alias string // the host as written, looked up in the ssh config
	Host  string // the name or address dialled and checked in known_hosts
	Port  int
	User  string
	// Identities are the private key files tried after the agent, in order.
	Identities []string
	// Jump is the ProxyJump hop, nil for a direct connection.
	Jump *Endpoint
}

// Addr is "host:port", as dialled and as looked up in known_hosts.
func (e Endpoint) Addr() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

func (e Endpoint) String() string {
	s := e.User + "@" + e.Addr()
	if e.Jump != nil {
		s += " via " + e.Jump.String()
	}
	return s
}

// sshConfigFile is a parsed ssh config, or nil when none applies.
type sshConfigFile struct {
	path string
	cfg  *ssh_config.Config
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home := homeDir(); home != "" {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

// loadSSHConfig parses path; a missing file (or no path) means no ssh config.
func loadSSHConfig(path string) (f *sshConfigFile, err error) {
	if path == "" {
		return nil, nil
	}
	path = expandHome(path)
	b, err := safefile.ReadInput(path, SmallInput)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %w", path, err)
	}
	// The parser reports some malformed input by panicking; bad input must
	// be an error here.
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("ssh config %s: cannot parse: %v", path, r)
		}
	}()
	cfg, err := ssh_config.DecodeBytes(b)
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %w: fix the file or unset ssh.config in boxes.yaml", path, err)
	}
	return &sshConfigFile{path: path, cfg: cfg}, nil
}

func (f *sshConfigFile) get(alias, key string) string {
	if f == nil {
		return ""
	}
	v, _ := f.cfg.Get(alias, key)
	return strings.TrimSpace(v)
}

func (f *sshConfigFile) getAll(alias, key string) []string {
	if f == nil {
		return nil
	}
	v, _ := f.cfg.GetAll(alias, key)
	return v
}

func localUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

// expandTokens does the ssh_config(5) expansions that make sense here.
func expandTokens(s string, ep Endpoint) string {
	home := homeDir()
	r := strings.NewReplacer("%%", "%", "%h", ep.Host, "%p", strconv.Itoa(ep.Port),
		"%r", ep.User, "%u", localUser(), "%d", home, "%n", ep.Alias)
	return expandHome(r.Replace(s))
}

// resolve applies the ssh config to a box (see Endpoint for the rules).
func resolveEndpoint(box Box, identity string, sc *sshConfigFile) (Endpoint, error) {
	ep := Endpoint{Box: box.Name, Alias: box.Host, Host: box.Host, Port: box.Port.Int(), User: box.User}
	if hn := sc.get(box.Host, "HostName"); hn != "" {
		ep.Host = strings.ReplaceAll(hn, "%h", box.Host)
	}
	if ep.Port == 0 || ep.Port == 22 {
		ep.Port = 22
		if p := sc.get(box.Host, "Port"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return ep, fmt.Errorf("ssh config %s: Host %s: Port %q is not a port number", sc.path, box.Host, p)
			}
			ep.Port = n
		}
	}
	if ep.User == "" || ep.User == "root" {
		if u := sc.get(box.Host, "User"); u != "" {
			ep.User = u
		} else if ep.User == "" {
			ep.User = "root"
		}
	}
	ep.Identities = identities(identity, sc, box.Host, ep)

	jump := sc.get(box.Host, "ProxyJump")
	if jump == "" || strings.EqualFold(jump, "none") {
		return ep, nil
	}
	if strings.Contains(jump, ",") {
		return ep, fmt.Errorf("ssh config %s: Host %s: ProxyJump %s has several hops; boxswap follows one: point ProxyJump at the last hop and give that host its own ProxyJump in a separate ssh setup", sc.path, box.Host, jump)
	}
	j, err := parseJump(jump, identity, sc)
	if err != nil {
		return ep, fmt.Errorf("ssh config %s: Host %s: %w", sc.path, box.Host, err)
	}
	ep.Jump = &j
	return ep, nil
}

// parseJump reads "[user@]host[:port]" (or an ssh:// URI) and applies the
// ssh config to host like ssh does for a jump host.
func parseJump(spec, identity string, sc *sshConfigFile) (Endpoint, error) {
	s := strings.TrimPrefix(spec, "ssh://")
	ep := Endpoint{Box: "jump host " + spec}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		ep.User, s = s[:i], s[i+1:]
	}
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	if host == "" {
		return ep, fmt.Errorf("ProxyJump %q has no host", spec)
	}
	ep.Alias, ep.Host = host, host
	if hn := sc.get(host, "HostName"); hn != "" {
		ep.Host = strings.ReplaceAll(hn, "%h", host)
	}
	if port == "" {
		port = sc.get(host, "Port")
	}
	ep.Port = 22
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return ep, fmt.Errorf("ProxyJump %q: port %q is not a port number", spec, port)
		}
		ep.Port = n
	}
	if ep.User == "" {
		ep.User = sc.get(host, "User")
	}
	if ep.User == "" {
		ep.User = localUser() // as ssh does for a jump host
	}
	if pj := sc.get(host, "ProxyJump"); pj != "" && !strings.EqualFold(pj, "none") {
		return ep, fmt.Errorf("ProxyJump %s: the jump host has a ProxyJump of its own (%s); boxswap follows one hop only", spec, pj)
	}
	ep.Identities = identities(identity, sc, host, ep)
	return ep, nil
}

func identities(identity string, sc *sshConfigFile, alias string, ep Endpoint) []string {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if p != "" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	add(expandHome(identity))
	for _, f := range sc.getAll(alias, "IdentityFile") {
		add(expandTokens(strings.Trim(strings.TrimSpace(f), `"`), ep))
	}
	return out
}
