package safefile

// The files an operator names for boxswap to read (ssh.config, identity,
// known_hosts, the etcd TLS files and password file) are the operator's own:
// a link to one is fine (a symlinked ~/.ssh/config), but a device or a FIFO
// would be read without end or block forever, and a folder is a mistake.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ErrBadInput is returned by ReadInput and CheckInput for a file the
// operator named that boxswap will not read: not a regular file (nor a
// pipe, where one is allowed), larger than its bound, or a pipe that
// stayed silent. The error is an *InputError.
var ErrBadInput = errors.New("not a file boxswap reads")

// Input is how a named file may be read.
type Input struct {
	// Max is the most bytes read; a larger file is refused.
	Max int64
	// Pipe accepts a pipe or FIFO (a secret given as <(pass show x)).
	Pipe bool
	// Wait bounds how long a pipe may stay silent; PipeWait when zero.
	Wait time.Duration
}

// PipeWait is how long a pipe may take to give its secret: long enough
// for a pinentry prompt, not forever.
const PipeWait = 2 * time.Minute

// InputError says why a named file is refused; it is ErrBadInput.
type InputError struct {
	Path string
	What string // "a device", "larger than 1 MiB", ...
}

func (e *InputError) Error() string { return e.Path + " is " + e.What }

func (e *InputError) Is(target error) bool { return target == ErrBadInput }

// Size prints a bound for a person: 64 KiB, 1 MiB.
func Size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// kindOf names what a file is for InputError, or "" when it may be read.
func (in Input) kindOf(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return ""
	case m&fs.ModeNamedPipe != 0 && in.Pipe:
		return ""
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO, not a regular file"
	}
	return Kind(m) + ", not a regular file"
}

// CheckInput says, without opening it, whether path (links followed) is a
// file ReadInput would read: nil when it is, or when nothing is there
// (what a missing file means is the caller's business).
func CheckInput(path string, in Input) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if what := in.kindOf(fi.Mode()); what != "" {
		return &InputError{Path: path, What: what}
	}
	if fi.Mode().IsRegular() && fi.Size() > in.Max {
		return &InputError{Path: path, What: "larger than " + Size(in.Max)}
	}
	return nil
}

// ReadInput reads the file at path, following links, at most in.Max bytes:
// a larger file, a device, a socket or a folder is refused with an
// *InputError, and so is a FIFO or pipe unless in.Pipe, which is then read
// without blocking past in.Wait. A missing file gives an error wrapping
// fs.ErrNotExist.
func ReadInput(path string, in Input) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if what := in.kindOf(fi.Mode()); what != "" {
		return nil, &InputError{Path: path, What: what}
	}
	wait := in.Wait
	if wait == 0 {
		wait = PipeWait
	}
	if fi.Mode().IsRegular() {
		_ = unix.SetNonblock(int(f.Fd()), false)
	} else {
		// A pipe goes through the runtime's poller, so the deadline holds.
		_ = f.SetReadDeadline(time.Now().Add(wait))
	}
	data, err := io.ReadAll(io.LimitReader(f, in.Max+1))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, &InputError{Path: path, What: fmt.Sprintf("a pipe still open after %s", wait)}
	}
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > in.Max {
		return nil, &InputError{Path: path, What: "larger than " + Size(in.Max)}
	}
	return data, nil
}
