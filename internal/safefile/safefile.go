// Package safefile opens the files boxswap keeps beside its state (the
// state file, its lock, the attempt logs) without following a symbolic
// link and without blocking on a FIFO: boxswap runs as root on production
// data, and a link planted at one of those names must not make it write
// somewhere else.
//
// # Basics
//
// Open opens an existing file; OpenOrCreate creates it (O_EXCL, mode 0600)
// when it is missing. Both refuse, with an error wrapping ErrNotRegular, a
// symbolic link, a FIFO, a device, a socket or a directory at the name, and
// never touch what a link points to. A file opened for writing is also
// refused, with an error wrapping ErrUnsafeFile, when another name, user
// or group could change it beneath boxswap: a hard link (a second name: a
// write through this one changes the other), another owner, a mode
// writable by group or others. Mine is that check on a stat already made,
// for the state file and its lock, which are refused even for reading.
// Lstat says what is at a name without opening it. CheckDir refuses a
// folder anybody may write in.
//
// # Caveats
//
// Only the last element of a path is protected: the folders on the way to
// it are the operator's choice (--state /srv/boxswap/boxswap.db may go
// through a linked /srv). A folder that others can write is refused by
// CheckDir, since anyone there could swap the files under boxswap.
package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrNotRegular is returned when a name holds something other than a
// regular file: a symbolic link, a FIFO, a device, a socket, a directory.
var ErrNotRegular = errors.New("not a regular file")

// ErrUnsafeDir is returned by CheckDir for a folder others may write in.
var ErrUnsafeDir = errors.New("folder writable by others")

// Mode is the permission of the files boxswap creates.
const Mode = 0o600

// NotRegularError says what was found at a path; it is ErrNotRegular.
type NotRegularError struct {
	Path string
	What string // "a symbolic link", "a FIFO", ...
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is %s, not a regular file; boxswap does not read or write through it", e.Path, e.What)
}

func (e *NotRegularError) Is(target error) bool { return target == ErrNotRegular }

// Kind names a non-regular file mode for an operator: "a FIFO".
func Kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

// Lstat returns what is at path without following a link: (nil, nil) when
// nothing is, a *NotRegularError when it is not a regular file.
func Lstat(path string) (fs.FileInfo, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return fi, &NotRegularError{Path: path, What: Kind(fi.Mode())}
	}
	return fi, nil
}

// Open opens the existing file at path with flag (O_RDONLY, O_RDWR, with
// O_APPEND...), never following a link nor waiting on a FIFO. A missing
// file gives an error wrapping fs.ErrNotExist.
func Open(path string, flag int) (*os.File, error) {
	fd, err := unix.Open(path, flag&^os.O_CREATE|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openError(path, err)
	}
	return regular(path, fd, flag)
}

// OpenOrCreate opens the file at path as Open does, creating it (O_EXCL,
// mode perm, 0600 when zero) when it is missing. created says which.
func OpenOrCreate(path string, flag int, perm os.FileMode) (f *os.File, created bool, err error) {
	if perm == 0 {
		perm = Mode
	}
	for range 100 {
		f, err := Open(path, flag)
		if !errors.Is(err, fs.ErrNotExist) {
			return f, false, err
		}
		fd, err := unix.Open(path, flag|os.O_CREATE|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
		if errors.Is(err, unix.EEXIST) {
			continue // created meanwhile: open that one
		}
		if err != nil {
			return nil, false, openError(path, err)
		}
		f, err = regular(path, fd, flag)
		return f, err == nil, err
	}
	return nil, false, fmt.Errorf("open %s: it keeps appearing and vanishing", path)
}

func regular(path string, fd, flag int) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		_ = unix.Close(fd)
		fi, _ := os.Lstat(path)
		what := "a special file"
		if fi != nil {
			what = Kind(fi.Mode())
		}
		return nil, &NotRegularError{Path: path, What: what}
	}
	// Blocking reads and writes again: O_NONBLOCK was only for the open.
	if flag&(os.O_WRONLY|os.O_RDWR) != 0 {
		if err := mine(path, &st); err != nil {
			_ = unix.Close(fd)
			return nil, err
		}
	}
	_ = unix.SetNonblock(fd, false)
	return os.NewFile(uintptr(fd), path), nil
}

func openError(path string, err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EMLINK) {
		// O_NOFOLLOW met a link at the last element.
		return &NotRegularError{Path: path, What: "a symbolic link"}
	}
	if errors.Is(err, unix.EISDIR) {
		return &NotRegularError{Path: path, What: "a directory"}
	}
	if errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOTSUP) {
		// A FIFO with no reader (opened for writing), a socket, a device
		// with no driver: not a regular file, whatever else it is.
		what := "a special file"
		if fi, lerr := os.Lstat(path); lerr == nil {
			what = Kind(fi.Mode())
		}
		return &NotRegularError{Path: path, What: what}
	}
	return &fs.PathError{Op: "open", Path: path, Err: err}
}

// MkdirPrivate makes the folder path (mode 0700) when it is missing and
// checks that it is a folder, not a link to one.
func MkdirPrivate(path string) error {
	err := os.Mkdir(path, 0o700)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &NotRegularError{Path: path, What: Kind(fi.Mode())}
	}
	return nil
}

// OpenIn opens or creates (O_EXCL, 0600) the file name inside the folder
// dir, relative to a descriptor of dir opened without following a link, so
// that neither the folder nor the file can be a link.
func OpenIn(dir, name string, flag int) (*os.File, error) {
	dfd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0)
	if err != nil {
		return nil, openError(dir, err)
	}
	defer unix.Close(dfd)
	path := filepath.Join(dir, name)
	for range 100 {
		fd, err := unix.Openat(dfd, name, flag&^os.O_CREATE|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			fd, err = unix.Openat(dfd, name, flag|os.O_CREATE|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, Mode)
			if errors.Is(err, unix.EEXIST) {
				continue
			}
		}
		if err != nil {
			return nil, openError(path, err)
		}
		return regular(path, fd, flag)
	}
	return nil, fmt.Errorf("open %s: it keeps appearing and vanishing", path)
}

// CheckDir refuses (ErrUnsafeDir) a folder that users other than its owner
// may write in without the sticky bit: any of them could replace the state
// or its lock. A world-writable folder with the sticky bit (/tmp) is
// allowed but returns warning, a sentence for the operator.
func CheckDir(dir string) (warning string, err error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return "", err
	}
	m := fi.Mode()
	if m.Perm()&0o002 == 0 {
		return "", nil
	}
	if m&fs.ModeSticky == 0 {
		return "", fmt.Errorf("%w: %s is writable by every user (mode %v), who could replace the state file or its lock; run chmod o-w %s, or keep the state in a folder only you can write",
			ErrUnsafeDir, dir, m.Perm(), dir)
	}
	return fmt.Sprintf("the state is in %s, which every user may write in (sticky, like /tmp); keep it in a folder only you can write", dir), nil
}
