// Package stateurl is the one parser of where a boxswap state is: a bbolt
// file path, or an etcd URL (etcd://HOST:PORT[,HOST:PORT…]/PREFIX, or
// etcds:// for TLS). The flag --state, state push's destination and
// boxes.yaml's state.url all go through Parse, so that no spelling is an
// etcd URL in one place and a file name in another.
//
// # Caveats
//
// Anything that looks like a URL (a scheme and a colon, "://", or an
// "etcd" spelled with another case or missing slashes) and is not a valid
// etcd URL is an error, never a file: a mistyped URL must not create a new
// local state and start a cycle on it. A file whose name holds a colon is
// written with a leading ./ (./backup:1.db).
package stateurl

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"unicode"
)

// Where is a parsed state location: a file (Path), or etcd (Endpoints and
// Prefix, TLS for etcds://).
type Where struct {
	Path      string
	Etcd      bool
	TLS       bool
	Endpoints []string // host:port each
	Prefix    string   // "/a/b": one leading slash, none trailing
}

// Error is a location Parse refuses: Value is what was given (without
// what may be a credential), What says what is wrong with it, Hint what to
// write instead.
type Error struct {
	Value, What, Hint string
}

func (e *Error) Error() string {
	if strings.HasPrefix(e.What, "is ") || strings.HasPrefix(e.What, "has ") {
		return fmt.Sprintf("state %s %s", e.Value, e.What)
	}
	return fmt.Sprintf("state %s: %s", e.Value, e.What)
}

// Form is the documented spelling, for messages.
const Form = "etcd://HOST:PORT[,HOST:PORT…]/PREFIX"

// scheme is what a URL starts with (RFC 3986): a letter, then letters,
// digits, + - or ., then a colon.
var scheme = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*):`)

// Parse reads s, as --state or state push's DEST give it. A file path is
// returned as is; what looks like a URL must be a valid etcd one.
func Parse(s string) (Where, error) {
	if strings.TrimSpace(s) == "" {
		return Where{}, &Error{Value: fmt.Sprintf("%q", s), What: "is blank",
			Hint: "give the state file's path, or " + Form + "; leave --state out for boxswap.db beside boxes.yaml"}
	}
	if strings.TrimSpace(s) != s || strings.ContainsFunc(s, unicode.IsControl) {
		return Where{}, &Error{Value: fmt.Sprintf("%q", safe(s)), What: "starts or ends with a space, or holds a control character",
			Hint: "write the path or URL without them (quote it in the shell)"}
	}
	if !LooksLikeURL(s) {
		return Where{Path: s}, nil
	}
	return parseEtcd(s)
}

// ParseEtcd is Parse for a place that takes only etcd (boxes.yaml's
// state.url): a file path is an error too.
func ParseEtcd(s string) (Where, error) {
	w, err := Parse(s)
	if err == nil && !w.Etcd {
		return w, &Error{Value: safe(s), What: "is not an etcd URL",
			Hint: "write " + Form + " (the default bbolt file needs no state section)"}
	}
	return w, err
}

// LooksLikeURL reports whether s is meant as a URL rather than a file: it
// starts with a scheme and a colon ("etcd:", "http:", "ETCD:"), holds
// "://", or starts with etcd or etcds (any case) and two slashes.
func LooksLikeURL(s string) bool {
	if scheme.MatchString(s) || strings.Contains(s, "://") {
		return true
	}
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "etcd//") || strings.HasPrefix(l, "etcds//")
}

func parseEtcd(s string) (Where, error) {
	var w Where
	rest, ok := strings.CutPrefix(s, "etcd://")
	if !ok {
		if rest, ok = strings.CutPrefix(s, "etcds://"); ok {
			w.TLS = true
		}
	}
	if !ok {
		return w, &Error{Value: safe(s), What: "is not an etcd URL: " + lowerScheme(s),
			Hint: "write " + Form + " (etcds:// for TLS); a file whose name holds a colon: ./NAME"}
	}
	hosts, path, _ := strings.Cut(rest, "/")
	if strings.Contains(hosts, "@") {
		return w, &Error{Value: "etcd://…", What: "a user or password in the URL would show in ps and in messages",
			Hint: "give them with --etcd-user and BOXSWAP_ETCD_PASSWORD or --etcd-password-file"}
	}
	path = strings.Trim(path, "/")
	if path == "" || strings.ContainsAny(path, "?#") || strings.Contains(path, "//") {
		return w, &Error{Value: safe(s), What: "has no prefix after the hosts, or one with ?, # or //",
			Hint: fmt.Sprintf("give the state's prefix after the hosts, e.g. etcd://%s/boxswap/site-a", safe(hosts))}
	}
	for _, h := range strings.Split(hosts, ",") {
		if host, port, err := net.SplitHostPort(h); err != nil || host == "" || port == "" {
			return w, &Error{Value: safe(s), What: fmt.Sprintf("has an endpoint that is not HOST:PORT: %q", safe(h)),
				Hint: "write each endpoint as HOST:PORT, e.g. etcd://10.0.0.5:2379,10.0.0.6:2379/boxswap/site-a"}
		}
		w.Endpoints = append(w.Endpoints, h)
	}
	w.Etcd, w.Prefix = true, "/"+path
	return w, nil
}

// lowerScheme says what was written instead of etcd://.
func lowerScheme(s string) string {
	if m := scheme.FindStringSubmatch(s); m != nil {
		switch l := strings.ToLower(m[1]); {
		case (l == "etcd" || l == "etcds") && m[1] != l:
			return "the scheme is " + m[1] + ", not " + l
		case l == "etcd" || l == "etcds":
			return m[1] + ": without //"
		default:
			return "scheme " + m[1]
		}
	}
	if strings.Contains(s, "://") {
		return "no scheme before ://"
	}
	return "no colon after " + s[:strings.IndexByte(s, '/')]
}

// safe is s without what may be a credential: userinfo before an @, a
// query.
func safe(s string) string {
	if q := strings.IndexAny(s, "?#"); q >= 0 {
		s = s[:q] + "?…"
	}
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "…" + s[i:]
		}
		return "…" + s[i:]
	}
	return s
}
