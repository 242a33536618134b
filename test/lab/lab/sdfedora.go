//go:build linux

package lab

import "fmt"

// ensureFedora builds the Fedora path's base: filled in with the
// lab's rpm repositories and system-upgrade plugin.
func ensureFedora(opts Options, build func(string, []byte, ...string) (string, error)) (image, error) {
	return image{}, fmt.Errorf("lab: -os fedora: not built yet")
}
