package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A pipe gives a secret: read whole when its writer closes it, refused
// when it stays open and silent past Wait.
func TestReadInputPipe(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		write func(f *os.File)
		want  string
		bad   bool
	}{
		{"secret", func(f *os.File) { f.WriteString("s3cret\n"); f.Close() }, "s3cret\n", false},
		{"silent", func(f *os.File) {}, "", true},
	} {
		path := filepath.Join(dir, tc.name)
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			t.Fatal(err)
		}
		opened := make(chan *os.File, 1)
		go func() {
			f, err := os.OpenFile(path, os.O_WRONLY, 0) // waits for the reader
			if err != nil {
				opened <- nil
				return
			}
			tc.write(f)
			opened <- f
		}()
		// The reader must find a writer: open one end ourselves first
		// so that the writer's open returns.
		keep, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		w := <-opened
		data, err := ReadInput(path, Input{Max: 64, Pipe: true, Wait: 50 * time.Millisecond})
		keep.Close()
		if w != nil {
			w.Close()
		}
		if tc.bad {
			if !errors.Is(err, ErrBadInput) {
				t.Errorf("%s: %q, %v; want ErrBadInput", tc.name, data, err)
			}
			continue
		}
		if err != nil || string(data) != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, data, err, tc.want)
		}
	}
}

// A regular file is read up to Max bytes; one byte more is refused.
func TestReadInputBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, make([]byte, 65), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadInput(path, Input{Max: 64}); !errors.Is(err, ErrBadInput) {
		t.Errorf("65 bytes with Max 64: %v", err)
	}
	if data, err := ReadInput(path, Input{Max: 65}); err != nil || len(data) != 65 {
		t.Errorf("65 bytes with Max 65: %d, %v", len(data), err)
	}
}
