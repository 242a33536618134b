//go:build !linux

package lab

import (
	"context"
	"fmt"
	"os"
)

var shims = map[string]func([]string) int{}

const boxConfigPath = "/var/lib/lab/box.json"

func runInternal(string, []string) int {
	fmt.Fprintln(os.Stderr, ErrNotLinux)
	return 1
}

// Supported says why this process cannot run a lab.
func Supported() error { return ErrNotLinux }

// Up fails: the lab needs Linux.
func Up(context.Context, string, Options) (*Lab, error) { return nil, ErrNotLinux }

// Down fails: the lab needs Linux.
func (l *Lab) Down() error { return ErrNotLinux }

// Reboot fails: the lab needs Linux.
func (l *Lab) Reboot(string) error { return ErrNotLinux }

// Crash fails: the lab needs Linux.
func (l *Lab) Crash(string) error { return ErrNotLinux }

// Start fails: the lab needs Linux.
func (l *Lab) Start(string) error { return ErrNotLinux }

// Cut fails: the lab needs Linux.
func (l *Lab) Cut(string) (int, error) { return 0, ErrNotLinux }
