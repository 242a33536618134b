package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A file opened for writing is refused when another name, user or group
// could change it; opened for reading (a password file an operator names),
// a second name is no harm.
func TestMineRefusesWhatOthersCouldChange(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	mine := file("mine", 0o600)
	linked := file("linked", 0o600)
	if err := os.Link(linked, filepath.Join(dir, "other-name")); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		path string
		want string // "" when accepted
	}{
		"a file of its own":      {mine, ""},
		"a hard link":            {linked, "has 2 names (a hard link)"},
		"writable by its group":  {file("group", 0o620), "writable by group or others"},
		"writable by all":        {file("all", 0o666), "writable by group or others"},
		"readable by all (fine)": {file("readable", 0o644), ""},
	}
	if os.Geteuid() == 0 {
		p := file("nobody", 0o600)
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		cases["another owner"] = struct{ path, want string }{p, "(uid 65534), not by you"}
	}
	for name, c := range cases {
		fi, err := os.Lstat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		err = Mine(c.path, fi)
		f, _, werr := OpenOrCreate(c.path, os.O_RDWR, 0)
		if werr == nil {
			f.Close()
		}
		if c.want == "" {
			if err != nil || werr != nil {
				t.Errorf("%s: Mine = %v, open for writing = %v; want both accepted", name, err, werr)
			}
			continue
		}
		var ue *UnsafeFileError
		if !errors.As(err, &ue) || !errors.Is(werr, ErrUnsafeFile) || !strings.Contains(err.Error(), c.want) || ue.Hint == "" {
			t.Errorf("%s: Mine = %v, open for writing = %v; want %q with a hint", name, err, werr, c.want)
		}
	}
	if f, err := Open(linked, os.O_RDONLY); err != nil {
		t.Errorf("a hard link opened for reading: %v", err)
	} else {
		f.Close()
	}
	fi, _ := os.Lstat(linked)
	if err := Renewable(Mine(linked, fi)); err == nil || !strings.Contains(err.(*UnsafeFileError).Hint, "rm "+linked) {
		t.Errorf("Renewable's hint: %v", err)
	}
}
