package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"boxswap/internal/safefile"
	"boxswap/internal/text"
)

// Lock gives up on a held lock after lockTries tries lockDelay apart: a
// `where` that tests the lock holds it shared for an instant, and that must
// not refuse an operator, but a held lock is refused well under a second.
const (
	lockTries = 8
	lockDelay = 10 * time.Millisecond
)

// Lockfile is a held operator lock. Keep it until the work is done, then
// Unlock it; if the process dies the kernel releases it.
type Lockfile struct {
	// Path is the lock file, <state>.lock.
	Path string
	// Holder is what was written in the lock file.
	Holder Holder
	// Reclaimed is the holder recorded in a lock file left by a process
	// that died without unlocking, or nil.
	Reclaimed *Holder
	// Warning, when set, is something about the state's folder the
	// operator should fix (it is writable by others, with the sticky bit).
	Warning string

	f *os.File
}

// LockedError is returned by Lock when a live process holds the lock. It is
// ErrLocked.
type LockedError struct {
	Holder Holder // zero when the holder had not written its name yet
	Path   string // the lock file
	// OtherHost: the holder ran on another host, where this one cannot
	// tell whether it still runs; it is never reclaimed automatically.
	OtherHost bool
}

func (e *LockedError) Error() string {
	h := e.Holder
	if h.PID == 0 {
		return fmt.Sprintf("state is locked by another boxswap (%s); wait for it", e.Path)
	}
	cmd := ""
	if h.Command != "" {
		cmd = " (" + text.Printable(h.Command) + ")"
	}
	// The names come from the lock file: printed escaped.
	user, host := text.Printable(h.User), text.Printable(h.Host)
	if e.OtherHost {
		return fmt.Sprintf("state is locked by %s@%s pid %d%s since %s, on another host: this host cannot tell whether it still runs (%s)",
			user, host, h.PID, cmd, since(h.Since), e.Path)
	}
	return fmt.Sprintf("state is locked by %s@%s pid %d%s since %s; wait for it (%s)",
		user, host, h.PID, cmd, since(h.Since), e.Path)
}

func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// since is a time as an operator reads it: the clock time today, with the
// date otherwise.
func since(t time.Time) string {
	if t.IsZero() {
		return "an unknown time"
	}
	t = t.Local()
	if t.Format(time.DateOnly) == time.Now().Format(time.DateOnly) {
		return t.Format(time.TimeOnly)
	}
	return t.Format("2006-01-02 15:04:05")
}

// LockPath is the lock file of the state file statePath.
func LockPath(statePath string) string { return statePath + ".lock" }

// CurrentHolder describes this process as a lock holder.
func CurrentHolder(command string) Holder {
	h := Holder{PID: os.Getpid(), Command: command, Since: time.Now()}
	h.User, h.Host = splitMe(Me())
	return h
}

func splitMe(me string) (user, host string) {
	for i := len(me) - 1; i >= 0; i-- {
		if me[i] == '@' {
			return me[:i], me[i+1:]
		}
	}
	return me, ""
}

// Lock takes the operator lock of the state file statePath without waiting:
// when a live process holds it, it returns a *LockedError naming the holder.
// A lock file left by a dead process is taken over and its holder returned
// in Lockfile.Reclaimed.
func Lock(statePath string, h Holder) (*Lockfile, error) { return lock(statePath, h, nil) }

// lock is Lock; opened, when set, runs between each open of the lock file
// and its flock (a test releases the lock in that window).
func lock(statePath string, h Holder, opened func()) (*Lockfile, error) {
	path := LockPath(statePath)
	if h.Since.IsZero() {
		h.Since = time.Now()
	}
	// The lock of something that is not a state file protects nothing, and
	// would leave a file beside a device.
	if fi, err := safefile.Lstat(statePath); errors.Is(err, safefile.ErrNotRegular) {
		return nil, &notFileError{path: statePath, cause: err}
	} else if fi != nil {
		if err := safefile.Mine(statePath, fi); err != nil {
			return nil, fmt.Errorf("state %w", err)
		}
	}
	// Anyone who may write in the folder could swap the state or the lock.
	warning, err := safefile.CheckDir(filepath.Dir(path))
	if errors.Is(err, safefile.ErrUnsafeDir) {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	} else if err != nil {
		return nil, lockFileError(path, err)
	}
	busy := 0
	for range 100 {
		l, err := tryLock(path, h, opened)
		var le *LockedError
		switch {
		case errors.As(err, &le) && !le.OtherHost:
			if busy++; busy < lockTries {
				time.Sleep(lockDelay)
				continue
			}
			return nil, le
		case errors.Is(err, errReplaced):
			continue
		case err != nil:
			return nil, err
		}
		l.Warning = warning
		return l, nil
	}
	return nil, fmt.Errorf("lock %s: the lock file keeps being replaced; is another boxswap looping on it?", path)
}

// errReplaced: the lock file was removed between its open and its flock.
var errReplaced = errors.New("lock file replaced")

// tryLock makes one try at the lock file at path: a *LockedError when it is
// held, errReplaced when it was replaced meanwhile (try again).
func tryLock(path string, h Holder, opened func()) (*Lockfile, error) {
	f, _, err := safefile.OpenOrCreate(path, os.O_RDWR, fileMode)
	if err != nil {
		return nil, lockFileError(path, err)
	}
	if opened != nil {
		opened()
	}
	err = flock(f, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		held, rerr := readHolder(f)
		_ = f.Close()
		le := &LockedError{Path: path}
		if rerr == nil && held != nil {
			le.Holder = *held
		}
		return nil, le
	}
	if err != nil {
		_ = f.Close()
		return nil, lockFileError(path, err)
	}
	// An Unlock removes the file before closing it: if it did so between
	// our open and our flock, we hold a lock on a file nobody else will
	// look at. Start again on the one at path.
	if !isFileAt(f, path) {
		_ = f.Close()
		return nil, errReplaced
	}
	l := &Lockfile{Path: path, Holder: h, f: f}
	if old, err := readHolder(f); err == nil && old != nil {
		// A flock says nothing about a process on another host (the
		// state on a shared folder): its pid means nothing here.
		if old.Host != "" && h.Host != "" && old.Host != h.Host {
			_ = f.Close()
			return nil, &LockedError{Holder: *old, Path: path, OtherHost: true}
		}
		l.Reclaimed = old
	}
	if err := writeHolder(f, h); err != nil {
		_ = os.Remove(path)
		_ = f.Close()
		return nil, lockFileError(path, fmt.Errorf("write holder: %w", err))
	}
	return l, nil
}

// Unlock releases the lock and removes the lock file. It is safe to call
// twice.
func (l *Lockfile) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	// Remove first, so nobody reads our name from a lock we no longer hold.
	rmErr := os.Remove(l.Path)
	if errors.Is(rmErr, fs.ErrNotExist) {
		rmErr = nil
	}
	closeErr := l.f.Close()
	l.f = nil
	if err := errors.Join(rmErr, closeErr); err != nil {
		return fmt.Errorf("unlock %s: %w", l.Path, err)
	}
	return nil
}

// ForceUnlock removes the lock file of statePath left by a holder this host
// cannot check (one on another host), and returns that holder (nil when
// there was no lock file). A lock held by a live process on this host is
// not removed: it returns a *LockedError. The caller records who removed
// it and why.
func ForceUnlock(statePath string) (*Holder, error) {
	path := LockPath(statePath)
	f, err := safefile.Open(path, os.O_RDWR)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, lockFileError(path, err)
	}
	defer f.Close()
	held, _ := readHolder(f)
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); errors.Is(err, unix.EWOULDBLOCK) {
		le := &LockedError{Path: path}
		if held != nil {
			le.Holder = *held
		}
		return nil, le
	} else if err != nil {
		return nil, lockFileError(path, err)
	}
	if !isFileAt(f, path) {
		return held, nil // unlocked and removed meanwhile
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, lockFileError(path, err)
	}
	if held == nil {
		held = &Holder{}
	}
	return held, nil
}

// ReadLock tells who holds the operator lock of statePath and whether that
// holder is alive. No lock file gives (nil, false, nil); a lock file left by
// a dead process gives its holder and false.
func ReadLock(statePath string) (*Holder, bool, error) {
	path := LockPath(statePath)
	f, err := safefile.Open(path, os.O_RDONLY)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, lockFileError(path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, false, lockFileError(path, err)
	} else if err := safefile.Mine(path, fi); err != nil {
		return nil, false, lockFileError(path, err)
	}
	switch err := flock(f, unix.LOCK_SH|unix.LOCK_NB); {
	case err == nil:
		// Nobody holds it, and nobody can write the file while we share it.
		h, herr := readHolder(f)
		_ = flock(f, unix.LOCK_UN)
		if herr != nil {
			return nil, false, nil // garbage left behind: Lock overwrites it
		}
		return h, false, nil
	case !errors.Is(err, unix.EWOULDBLOCK):
		return nil, false, lockFileError(path, err)
	}
	// A holder writes its name just after taking the lock; give it a moment.
	for range lockTries {
		if h, err := readHolder(f); err == nil && h != nil {
			return h, true, nil
		}
		time.Sleep(lockDelay)
	}
	return nil, true, nil
}

// lockFileError wraps a failure to open the lock file: something other than
// a regular file there is ErrNotAFile (exit 8), a refused permission says so.
func lockFileError(path string, err error) error {
	if errors.Is(err, safefile.ErrNotRegular) {
		return &notFileError{path: path, cause: err, lock: true}
	}
	if errors.Is(err, safefile.ErrUnsafeFile) {
		return fmt.Errorf("lock %w", safefile.Renewable(err))
	}
	return fmt.Errorf("lock %s: %w: %w", path, ErrUnusable, err)
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func isFileAt(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Stat(path)
	return err == nil && os.SameFile(fi, pi)
}

// readHolder reads the holder in the lock file; nil when the file is empty.
func readHolder(f *os.File) (*Holder, error) {
	data, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<16))
	if err != nil || len(data) == 0 {
		return nil, err
	}
	var h Holder
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

func writeHolder(f *os.File, h Holder) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(append(data, '\n'), 0); err != nil {
		return err
	}
	return f.Sync()
}
