// Package golden compares what the code produces with a checked-in file,
// or rewrites the file when the tests run with -update. It is for tests
// only: golden files, generated docs.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files and generated docs from the code")

// Updating reports whether the tests run with -update.
func Updating() bool { return *update }

// Check fails t when file's content is not got; with -update it writes got
// to file instead. hint tells how to regenerate it.
func Check(t testing.TB, file, got, hint string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v; %s", err, hint)
	}
	if got != string(want) {
		t.Errorf("%s is not what the code produces; %s\n--- got\n%s\n--- want\n%s", file, hint, got, want)
	}
}
