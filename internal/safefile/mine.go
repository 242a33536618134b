package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrUnsafeFile is returned for a file boxswap writes that something other
// than this name and this user could change beneath it: a hard link
// (another name of the same file: writing through one writes the other),
// a file owned by another user, or one writable by group or others. The
// error is an *UnsafeFileError, whose Hint says what to run.
var ErrUnsafeFile = errors.New("file others could change")

// UnsafeFileError says which file, what is wrong with it and what to do.
type UnsafeFileError struct {
	Path string
	// Linked: the file has other names (the hint may then say to remove
	// this one, for a file boxswap makes anew).
	Linked bool
	What   string // "has 2 names (a hard link)", ...
	Hint   string // the command that fixes it
}

func (e *UnsafeFileError) Error() string { return e.Path + " " + e.What }

func (e *UnsafeFileError) Is(target error) bool { return target == ErrUnsafeFile }

// Mine refuses, with an *UnsafeFileError, the regular file at path whose
// Lstat is fi when it has more than one name, is owned by another user
// than this process's, or may be written by group or others. Root is held
// to it too: a file another user owns is one that user can change while
// root trusts it.
func Mine(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return mine(path, &unix.Stat_t{Nlink: st.Nlink, Uid: st.Uid, Mode: st.Mode})
}

func mine(path string, st *unix.Stat_t) error {
	switch me := os.Geteuid(); {
	case st.Nlink > 1:
		return &UnsafeFileError{Path: path, Linked: true,
			What: fmt.Sprintf("has %d names (a hard link): boxswap writes it in place, and so would write its other names", st.Nlink),
			Hint: fmt.Sprintf("make it a file of its own, in %s: cp -p %s %[2]s.new && mv %[2]s.new %[2]s (find -samefile lists its other names)",
				filepath.Dir(path), filepath.Base(path))}
	case int(st.Uid) != me:
		return &UnsafeFileError{Path: path,
			What: fmt.Sprintf("is owned by %s, not by you, %s: that user could change it beneath boxswap", who(int(st.Uid)), who(me)),
			Hint: "if it is yours, chown " + name(me) + " " + path + "; otherwise give --state a state of your own"}
	case st.Mode&0o022 != 0:
		return &UnsafeFileError{Path: path,
			What: fmt.Sprintf("is writable by group or others (mode %v): they could change it beneath boxswap", fs.FileMode(st.Mode&0o777)),
			Hint: "chmod go-w " + path + " (boxswap creates its files 0600)"}
	}
	return nil
}

// who names a user ID: "ann (uid 1000)", or "uid 1000".
func who(uid int) string {
	if n := name(uid); n != strconv.Itoa(uid) {
		return fmt.Sprintf("%s (uid %d)", n, uid)
	}
	return fmt.Sprintf("uid %d", uid)
}

// name is a user ID's name, or the ID as digits.
func name(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
		return u.Username
	}
	return strconv.Itoa(uid)
}

// Renewable is err with the hint a file boxswap makes anew (a lock, a log)
// wants when it is a hard link: remove this name.
func Renewable(err error) error {
	var ue *UnsafeFileError
	if errors.As(err, &ue) && ue.Linked {
		ue.Hint = "remove this name: rm " + ue.Path + " (the file keeps its other names); boxswap makes a new one"
	}
	return err
}
