package labtest

import (
	"bytes"
	"fmt"

	"golang.org/x/crypto/ssh"

	"boxswap/test/lab/lab"
)

// sshClient keeps one SSH connection to a box and redials when it broke.
type sshClient struct {
	l   *lab.Lab
	box string
	c   *ssh.Client
}

func (s *sshClient) run(cmd string) (string, error) {
	if s.c == nil {
		c, err := s.l.Dial(s.box)
		if err != nil {
			return "", err
		}
		s.c = c
	}
	sess, err := s.c.NewSession()
	if err != nil {
		s.close()
		return "", fmt.Errorf("%s: session: %w", s.box, err)
	}
	defer sess.Close()
	var out bytes.Buffer
	sess.Stdout = &out
	err = sess.Run(cmd)
	if _, ok := err.(*ssh.ExitError); ok {
		err = nil // is-active exits 3 for inactive: the answer is in stdout
	}
	if err != nil {
		s.close()
	}
	return out.String(), err
}

func (s *sshClient) close() {
	if s.c != nil {
		s.c.Close()
		s.c = nil
	}
}
