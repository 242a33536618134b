package boxes

import (
	"errors"

	"boxswap/internal/safefile"
)

// The bounds of the files boxes.yaml (or a flag) names for boxswap to read
// on the operator's machine. A regular file, or a link to one, is read up
// to its bound; a device, a socket or a folder is refused, and so is a
// FIFO, except for a secret (a password given as <(pass show etcd)).
var (
	// KnownHostsInput bounds ssh.known_hosts: a few hundred bytes a host.
	KnownHostsInput = safefile.Input{Max: 16 << 20}
	// SmallInput bounds ssh.config, ssh.identity and the etcd TLS files.
	SmallInput = safefile.Input{Max: 1 << 20}
	// SecretInput bounds a password file; a pipe is fine.
	SecretInput = safefile.Input{Max: 64 << 10, Pipe: true}
)

// localFile refuses, at the line of key, a file named in boxes.yaml that
// boxswap would not read: it is checked here so that every verb, even one
// that never reads it, says so before anything else. A missing file is
// left to the reader (a missing ssh config is none).
func (l *loader) localFile(m *mapping, key, written, path string, in safefile.Input) {
	err := safefile.CheckInput(path, in)
	var ie *safefile.InputError
	switch {
	case err == nil:
	case errors.As(err, &ie) && in.Pipe:
		l.add(l.line(m.at(key)), "name a regular file or a pipe (a link to one is fine), at most "+safefile.Size(in.Max), "%s: %s is %s", m.at(key), clip(written), ie.What)
	case errors.As(err, &ie):
		l.add(l.line(m.at(key)), "name a regular file (a link to one is fine), at most "+safefile.Size(in.Max), "%s: %s is %s", m.at(key), clip(written), ie.What)
	default:
		l.add(l.line(m.at(key)), "check the path and its folders' permissions", "%s: %v", m.at(key), err)
	}
}
