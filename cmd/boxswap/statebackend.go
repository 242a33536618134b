package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"boxswap/internal/safefile"
	"boxswap/internal/stateurl"
	"boxswap/state"
	"boxswap/state/etcdstate"
)

// etcdOptions reach an etcd state: flags, then BOXSWAP_ETCD_* variables,
// then boxes.yaml's state section. The password is never a flag (ps shows
// flags): BOXSWAP_ETCD_PASSWORD, or a file.
type etcdOptions struct {
	CA, Cert, Key, User, PasswordFile string
	Lease                             time.Duration
}

func (o *etcdOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.CA, "etcd-ca", "", "etcd: the CA of the servers' certificates, a `PEM` file (env BOXSWAP_ETCD_CA)")
	f.StringVar(&o.Cert, "etcd-cert", "", "etcd: the client certificate, a `PEM` file (env BOXSWAP_ETCD_CERT)")
	f.StringVar(&o.Key, "etcd-key", "", "etcd: the client key, a `PEM` file (env BOXSWAP_ETCD_KEY)")
	f.StringVar(&o.User, "etcd-user", "", "etcd: the `USER` (env BOXSWAP_ETCD_USER); the password in env BOXSWAP_ETCD_PASSWORD or --etcd-password-file")
	f.StringVar(&o.PasswordFile, "etcd-password-file", "", "etcd: the `FILE` holding the password (env BOXSWAP_ETCD_PASSWORD_FILE)")
	f.DurationVar(&o.Lease, "etcd-lease", 0, "etcd: how long a silent holder keeps the lock (env BOXSWAP_ETCD_LEASE; default 15s)")
}

// parseState reads a state location the operator wrote (--state, state
// push's DEST, boxes.yaml's state.url) with the one parser: a string that
// looks like a URL and is not a valid etcd one is a usage error, never a
// new local file.
func parseState(s string) (stateurl.Where, error) {
	w, err := stateurl.Parse(s)
	var ue *stateurl.Error
	if errors.As(err, &ue) {
		return w, withHint(usagef("%v", ue), ue.Hint)
	}
	return w, err
}

// stateWhere is where the state is, as the operator named it: --state,
// then boxes.yaml's state.url, else the bbolt file beside boxes.yaml
// (never parsed: a folder of boxes.yaml with a colon in it is a folder).
func (g *globalOptions) stateWhere() (stateurl.Where, error) {
	switch {
	case g.State != "":
		return parseState(g.State)
	case g.cfg != nil && g.cfg.State.URL != "":
		return parseState(g.cfg.State.URL)
	}
	return stateurl.Where{Path: g.statePath()}, nil
}

// stateURL is the state as the operator named it, for display.
func (g *globalOptions) stateURL() string {
	if g.State == "" && g.cfg != nil && g.cfg.State.URL != "" {
		return g.cfg.State.URL
	}
	return g.statePath()
}

// backend is the state --state (or boxes.yaml) names, without reading it.
// An etcd store is opened once per process and closed by run.
func (g *globalOptions) backend() (state.Backend, error) {
	w, err := g.stateWhere()
	if err != nil {
		return nil, err
	}
	if !w.Etcd {
		return state.Open(w.Path), nil
	}
	if g.etcd != nil {
		return g.etcd, nil
	}
	s, err := g.openEtcd(w)
	if err != nil {
		return nil, err
	}
	g.etcd = s
	return s, nil
}

// openEtcd opens the etcd state at w with the TLS and credentials of the
// flags, the environment and boxes.yaml; etcds:// asks for TLS even
// without a CA (the system's). Errors never quote a secret.
func (g *globalOptions) openEtcd(w stateurl.Where) (*etcdstate.Store, error) {
	eps, prefix := w.Endpoints, w.Prefix
	var err error
	var y etcdOptions
	if g.cfg != nil {
		c := g.cfg.State
		y = etcdOptions{CA: c.CA, Cert: c.Cert, Key: c.Key, User: c.User, PasswordFile: c.PasswordFile, Lease: c.Lease}
	}
	pick := func(flag, env, yaml string) string {
		if flag != "" {
			return flag
		}
		if v := os.Getenv(env); v != "" {
			return v
		}
		return yaml
	}
	o := etcdstate.Options{Endpoints: eps, Prefix: prefix, Who: state.Me()}
	o.Username = pick(g.EtcdOpts.User, "BOXSWAP_ETCD_USER", y.User)
	o.Password, err = password(pick(g.EtcdOpts.PasswordFile, "BOXSWAP_ETCD_PASSWORD_FILE", y.PasswordFile))
	if err != nil {
		return nil, err
	}
	if o.Username != "" && o.Password == "" {
		return nil, withHint(usagef("etcd state: user %s has no password", o.Username),
			"set BOXSWAP_ETCD_PASSWORD, or give --etcd-password-file (state.password_file in boxes.yaml)")
	}
	lease := g.EtcdOpts.Lease
	if lease != 0 && lease < time.Second {
		return nil, usagef("--etcd-lease %s: write a duration of at least 1s, like 15s", lease)
	}
	if v := os.Getenv("BOXSWAP_ETCD_LEASE"); lease == 0 && v != "" {
		if lease, err = time.ParseDuration(v); err != nil || lease < time.Second {
			return nil, usagef("BOXSWAP_ETCD_LEASE=%q: write a duration of at least 1s, like 15s", v)
		}
	}
	if lease == 0 {
		lease = y.Lease
	}
	o.TTL = int((lease + time.Second - 1) / time.Second)
	o.TLS, err = tlsConfig(pick(g.EtcdOpts.CA, "BOXSWAP_ETCD_CA", y.CA),
		pick(g.EtcdOpts.Cert, "BOXSWAP_ETCD_CERT", y.Cert), pick(g.EtcdOpts.Key, "BOXSWAP_ETCD_KEY", y.Key))
	if err != nil {
		return nil, err
	}
	if o.TLS == nil && w.TLS {
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return etcdstate.Open(o)
}

// password is BOXSWAP_ETCD_PASSWORD, or the first line of file.
func password(file string) (string, error) {
	if v := os.Getenv("BOXSWAP_ETCD_PASSWORD"); v != "" {
		return v, nil
	}
	if file == "" {
		return "", nil
	}
	f, err := safefile.Open(file, os.O_RDONLY)
	if err != nil {
		return "", fmt.Errorf("etcd password file: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, err := f.Read(buf)
	if err != nil {
		return "", fmt.Errorf("etcd password file %s: %w", file, err)
	}
	line, _, _ := strings.Cut(string(buf[:n]), "\n")
	return strings.TrimRight(line, "\r"), nil
}

// tlsConfig is the client's TLS: none without a CA or certificate.
func tlsConfig(ca, cert, key string) (*tls.Config, error) {
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	if (cert == "") != (key == "") {
		return nil, usagef("etcd state: a client certificate needs its key, and a key its certificate (--etcd-cert, --etcd-key)")
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("etcd CA: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA %s: no PEM certificate in it", ca)
		}
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate %s: %w", cert, err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// logDir is where the engine writes each attempt's full output: beside the
// bbolt file, or beside boxes.yaml for a state on etcd.
func (g *globalOptions) logDir() string {
	if w, err := g.stateWhere(); err == nil && w.Etcd {
		return filepath.Join(filepath.Dir(g.Config), "boxswap.etcd.logs")
	}
	return ""
}

// closeState closes an etcd store the verb opened.
func (g *globalOptions) closeState() error {
	if g.etcd == nil {
		return nil
	}
	err := g.etcd.Close()
	g.etcd = nil
	return err
}
