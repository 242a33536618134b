package boxes

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"

	"boxswap/internal/safefile"
)

var (
	// ErrUnknownHostKey is returned (wrapped, with ErrUnreachable) when a
	// box's host key is not in known_hosts. Nothing was run; the message
	// gives the key's fingerprint and how to trust it.
	ErrUnknownHostKey = errors.New("unknown host key")
	// ErrHostKeyChanged is returned (wrapped, with ErrUnreachable) when a
	// box offers a key other than the one known_hosts holds for it, or a
	// revoked one. Nothing was run.
	ErrHostKeyChanged = errors.New("host key changed")
)

// HostKeyError says which key a box offered and why it was refused. It
// matches ErrUnknownHostKey or ErrHostKeyChanged with errors.Is.
type HostKeyError struct {
	Box        string        // box name, or the jump host's alias
	Addr       string        // host:port checked in known_hosts
	Key        ssh.PublicKey // the key the server offered
	KnownHosts string        // the known_hosts file
	// Known lists the known_hosts entries ("FILE:LINE") that hold another
	// key for Addr; empty when the host is unknown.
	Known   []string
	Revoked bool // the offered key is marked @revoked
}

// Is makes errors.Is(err, ErrUnknownHostKey) and ErrHostKeyChanged work.
func (e *HostKeyError) Is(target error) bool {
	switch target {
	case ErrUnknownHostKey:
		return len(e.Known) == 0 && !e.Revoked
	case ErrHostKeyChanged:
		return len(e.Known) > 0 || e.Revoked
	}
	return false
}

// Fingerprint is the offered key's SHA256 fingerprint, as ssh-keygen -l
// prints it.
func (e *HostKeyError) Fingerprint() string { return ssh.FingerprintSHA256(e.Key) }

func (e *HostKeyError) Error() string {
	host, port := splitHostPort(e.Addr)
	kh := Quote(e.KnownHosts)
	if e.Revoked {
		return fmt.Sprintf("host key of %s (%s %s) is marked @revoked in %s: refusing to connect; find out why before touching this box",
			e.Addr, e.Key.Type(), e.Fingerprint(), kh)
	}
	if len(e.Known) == 0 {
		scan := "ssh-keyscan "
		if port != 22 {
			scan += "-p " + strconv.Itoa(port) + " "
		}
		return fmt.Sprintf("%v: %s is not in %s; it offered %s %s: check this fingerprint out of band "+
			"(on the box: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then trust it with: %s%s >> %s",
			ErrUnknownHostKey, e.Addr, kh, e.Key.Type(), e.Fingerprint(), scan, Quote(host), kh)
	}
	pattern := host
	if port != 22 {
		pattern = "[" + host + "]:" + strconv.Itoa(port)
	}
	return fmt.Sprintf("%v: %s now offers %s %s, but %s holds another key for it (%s): refusing to connect, this may be an attack; "+
		"if the box was reinstalled, verify the new fingerprint out of band, then remove the old entry (ssh-keygen -R %s -f %s) and add the new one",
		ErrHostKeyChanged, e.Addr, e.Key.Type(), e.Fingerprint(), kh, strings.Join(e.Known, ", "), Quote(pattern), kh)
}

func splitHostPort(addr string) (string, int) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 22
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return host, 22
	}
	return host, port
}

// hostKeys checks host keys against one known_hosts file.
type hostKeys struct {
	file string
	db   *knownhosts.HostKeyDB
}

// loadKnownHosts reads file; a missing file is an error, never an
// invitation to trust whatever answers.
func loadKnownHosts(file string) (*hostKeys, error) {
	if file == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("known_hosts: no file set in boxes.yaml (ssh.known_hosts) and no home folder: %w", err)
		}
		file = home + "/.ssh/known_hosts"
	}
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("known_hosts %s does not exist: create it with the boxes' keys (ssh-keyscan HOST >> %s, after checking the fingerprints out of band) or set ssh.known_hosts in boxes.yaml: %w",
			file, Quote(file), err)
	}
	// The reader below takes a name: the file is checked first, so that
	// a device or a FIFO is not read without end.
	if err := safefile.CheckInput(file, KnownHostsInput); err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	db, err := knownhosts.NewDB(file)
	if err != nil {
		return nil, fmt.Errorf("known_hosts %s: %w", file, err)
	}
	return &hostKeys{file: file, db: db}, nil
}

// algorithms are the host key algorithms known_hosts has for addr, so a
// server offering ECDSA and ed25519 is asked for the one we know. Nil when
// the host is unknown (the callback will then refuse it with its
// fingerprint).
func (h *hostKeys) algorithms(addr string) []string {
	return h.db.HostKeyAlgorithms(addr)
}

// callback checks the offered key and turns failures into *HostKeyError.
// accepted, when not nil, receives the key that passed.
func (h *hostKeys) callback(box string, accepted *ssh.PublicKey) ssh.HostKeyCallback {
	cb := h.db.HostKeyCallback()
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		if err == nil {
			if accepted != nil {
				*accepted = key
			}
			return nil
		}
		he := &HostKeyError{Box: box, Addr: hostname, Key: key, KnownHosts: h.file}
		var ke *xknownhosts.KeyError
		var re *xknownhosts.RevokedError
		switch {
		case errors.As(err, &re):
			he.Revoked = true
		case errors.As(err, &ke):
			for _, k := range ke.Want {
				he.Known = append(he.Known, k.Filename+":"+strconv.Itoa(k.Line))
			}
		default:
			return fmt.Errorf("known_hosts %s: %w", h.file, err)
		}
		return he
	}
}
