package boxes

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"boxswap/internal/safefile"
)

// keys are the signers one dial offers: the agent's first, then the
// identity files'. What could not be used is kept to explain a refusal.
type keys struct {
	signers   []ssh.Signer
	agentConn net.Conn
	notes     []string // what was tried or skipped, for error messages
	encrypted []string // identity files that need a passphrase
	agentUsed bool
}

func (k *keys) close() {
	if k.agentConn != nil {
		k.agentConn.Close()
	}
}

func (k *keys) summary() string {
	if k == nil || len(k.notes) == 0 {
		return "no keys"
	}
	return strings.Join(k.notes, "; ")
}

// loadKeys gathers signers for ep. The agent socket is sock ("" means no
// agent). It fails only when no key at all can be offered.
func loadKeys(sock string, ep Endpoint) (*keys, error) {
	k := &keys{}
	seen := map[string]bool{}
	if sock != "" {
		c, err := net.Dial("unix", sock)
		if err != nil {
			k.notes = append(k.notes, fmt.Sprintf("ssh-agent at %s: %v", sock, err))
		} else {
			signers, err := agent.NewClient(c).Signers()
			if err != nil {
				c.Close()
				k.notes = append(k.notes, fmt.Sprintf("ssh-agent at %s: %v", sock, err))
			} else {
				k.agentConn, k.agentUsed = c, true
				k.notes = append(k.notes, fmt.Sprintf("ssh-agent (%d keys)", len(signers)))
				for _, s := range signers {
					seen[string(s.PublicKey().Marshal())] = true
				}
				k.signers = append(k.signers, signers...)
			}
		}
	}
	for _, path := range ep.Identities {
		b, err := safefile.ReadInput(path, SmallInput)
		if errors.Is(err, fs.ErrNotExist) {
			k.notes = append(k.notes, path+" (not found)")
			continue
		}
		if err != nil {
			k.notes = append(k.notes, fmt.Sprintf("%s (%v)", path, err))
			continue
		}
		s, err := ssh.ParsePrivateKey(b)
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			k.encrypted = append(k.encrypted, path)
			k.notes = append(k.notes, path+" (needs a passphrase)")
			continue
		}
		if err != nil {
			k.notes = append(k.notes, fmt.Sprintf("%s (not a private key: %v)", path, err))
			continue
		}
		k.notes = append(k.notes, path)
		if !seen[string(s.PublicKey().Marshal())] {
			seen[string(s.PublicKey().Marshal())] = true
			k.signers = append(k.signers, s)
		}
	}
	if len(k.signers) > 0 {
		return k, nil
	}
	k.close()
	switch {
	case len(k.encrypted) > 0 && !k.agentUsed:
		return nil, fmt.Errorf("no usable key for %s: %s is protected by a passphrase and no ssh-agent answers (SSH_AUTH_SOCK %s): start one and load the key (eval \"$(ssh-agent)\" && ssh-add %s), then run boxswap from that shell",
			ep, strings.Join(k.encrypted, ", "), agentState(sock), Quote(k.encrypted[0]))
	case len(k.encrypted) > 0:
		return nil, fmt.Errorf("no usable key for %s: %s: load the key into the agent (ssh-add %s)",
			ep, k.summary(), Quote(k.encrypted[0]))
	default:
		return nil, fmt.Errorf("no usable key for %s (tried: %s): set ssh.identity in boxes.yaml or load a key into ssh-agent", ep, k.summary())
	}
}

func agentState(sock string) string {
	if sock == "" {
		return "is unset"
	}
	return "is " + sock
}
