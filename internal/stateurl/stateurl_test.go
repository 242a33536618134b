package stateurl

import (
	"strings"
	"testing"
)

// Every spelling an operator may write, and what the one parser makes of
// it: a file, an etcd state, or a refusal saying what (never a secret).
func TestParse(t *testing.T) {
	for _, c := range []struct {
		in        string
		path      string // a file
		eps, pref string // etcd
		tls       bool
		err       string // refused, saying this
	}{
		{in: "boxswap.db", path: "boxswap.db"},
		{in: "/var/lib/boxswap/state.db", path: "/var/lib/boxswap/state.db"},
		{in: "./backup:1.db", path: "./backup:1.db"},
		{in: "etcd/state.db", path: "etcd/state.db"},
		{in: "etcd://10.0.0.1:2379/boxswap/site-a", eps: "10.0.0.1:2379", pref: "/boxswap/site-a"},
		{in: "etcd://a:2379,b:2379,[::1]:2379/p/", eps: "a:2379 b:2379 [::1]:2379", pref: "/p"},
		{in: "etcds://a:2379/p", eps: "a:2379", pref: "/p", tls: true},
		{in: "", err: "blank"},
		{in: "  ", err: "blank"},
		{in: " boxswap.db", err: "starts or ends with a space"},
		{in: "state\n.db", err: "control character"},
		{in: "etcd://a:2379", err: "has no prefix"},
		{in: "etcd://a:2379/p?x=1", err: "has no prefix"},
		{in: "etcd://user:secret@a:2379/p", err: "would show in ps"},
		{in: "etcd://a/p", err: "not HOST:PORT"},
		{in: "etcd://:2379/p", err: "not HOST:PORT"},
		{in: "ETCD://a:2379/p", err: "the scheme is ETCD, not etcd"},
		{in: "Etcds://a:2379/p", err: "the scheme is Etcds, not etcds"},
		{in: "etcd:/a:2379/p", err: "etcd: without //"},
		{in: "etcd:a:2379/p", err: "etcd: without //"},
		{in: "etcd//a:2379/p", err: "no colon after etcd"},
		{in: "http://a:2379/p", err: "scheme http"},
		{in: "https://ann:secret@a:2379/p", err: "scheme https"},
		{in: "file:///tmp/x.db", err: "scheme file"},
		{in: "backup:1.db", err: "scheme backup"},
		{in: "://a:2379/p", err: "no scheme before ://"},
	} {
		w, err := Parse(c.in)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "secret") {
				t.Errorf("Parse(%q) = %+v, %v; want an error saying %q (and no secret)", c.in, w, err, c.err)
			} else if e := err.(*Error); e.Hint == "" || len(err.Error()) > 200 || len(e.Hint) > 200 {
				t.Errorf("Parse(%q): message %q, hint %q: want both, each at most 200 characters", c.in, err, e.Hint)
			}
		case err != nil:
			t.Errorf("Parse(%q): %v", c.in, err)
		case c.path != "":
			if w.Etcd || w.Path != c.path {
				t.Errorf("Parse(%q) = %+v, want the file %s", c.in, w, c.path)
			}
		case !w.Etcd || strings.Join(w.Endpoints, " ") != c.eps || w.Prefix != c.pref || w.TLS != c.tls:
			t.Errorf("Parse(%q) = %+v, want etcd %s %s tls=%v", c.in, w, c.eps, c.pref, c.tls)
		}
	}
	if _, err := ParseEtcd("/var/lib/boxswap.db"); err == nil || !strings.Contains(err.Error(), "not an etcd URL") {
		t.Errorf("ParseEtcd of a file path: %v", err)
	}
}
