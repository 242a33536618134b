package boxes

import (
	"errors"
	"strings"
	"time"

	"boxswap/internal/stateurl"
)

// State says where the state is kept when it is not the default bbolt file
// beside boxes.yaml: an etcd cluster, for teams and many pairs. --state
// and the BOXSWAP_ETCD_* variables override it. There is no password here:
// boxes.yaml is recorded with each attempt, so only a file naming it is.
type State struct {
	// URL is etcd://HOST:PORT[,HOST:PORT…]/PREFIX.
	URL string `yaml:"url"`
	// CA, Cert and Key are PEM files for TLS: the CA that signed the
	// servers' certificates, the client's certificate and key.
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// User and PasswordFile authenticate to etcd.
	User         string `yaml:"user"`
	PasswordFile string `yaml:"password_file"`
	// Lease is how long a holder that stopped answering keeps the
	// operator lock; 15s when zero.
	Lease time.Duration `yaml:"lease"`
	Line  int           `yaml:"-"`
}

// state reads the optional state section.
func (l *loader) state(top *mapping) State {
	n := top.get("state")
	if n == nil {
		return State{}
	}
	m := l.mapping(n, "state", "url", "ca", "cert", "key", "user", "password_file", "lease")
	if m.node == nil {
		return State{}
	}
	s := State{Line: n.Line}
	if u := m.get("url"); u != nil && strings.Contains(u.Value, "@") {
		// Not quoted back: it may hold a password.
		l.add(u.Line, "boxes.yaml is recorded with each attempt: give user, and the password in password_file",
			"state.url: holds a user or password (not shown)")
	} else {
		s.URL, _ = l.str(m, "url", "add url: etcd://HOST:PORT[,HOST:PORT…]/PREFIX", checkStateURL)
	}
	for _, kv := range []struct {
		key string
		dst *string
	}{{"ca", &s.CA}, {"cert", &s.Cert}, {"key", &s.Key}, {"password_file", &s.PasswordFile}} {
		v, ok := l.str(m, kv.key, "", checkLocalPath)
		if !ok || v == "" {
			continue
		}
		p, err := l.localPath(v)
		if err != nil {
			l.add(l.line(m.at(kv.key)), "write an absolute path", "state.%s: %v", kv.key, err)
			continue
		}
		*kv.dst = p
	}
	s.User, _ = l.str(m, "user", "", nil)
	if (s.Cert == "") != (s.Key == "") {
		l.add(l.line("state"), "give both cert and key, or neither", "state: a client certificate needs its key, and a key its certificate")
	}
	if v, ok := l.duration(m, "lease", "15s"); ok {
		if v < time.Second {
			l.add(l.line(m.at("lease")), "write how long a silent holder keeps the lock, like 15s", "state.lease: must be at least 1s")
		} else {
			s.Lease = v
		}
	}
	return s
}

// checkStateURL accepts etcd://HOST:PORT[,…]/PREFIX (or etcds://) without
// credentials, with the parser --state uses.
func checkStateURL(s string) (string, string) {
	var ue *stateurl.Error
	if _, err := stateurl.ParseEtcd(s); errors.As(err, &ue) {
		return ue.What, "write " + stateurl.Form + " (etcds:// for TLS)"
	}
	return "", ""
}
