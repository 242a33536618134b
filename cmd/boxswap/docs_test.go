package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"boxswap/fsm"
	"boxswap/internal/golden"
)

const docsDir = "../../docs"

// current compares a generated doc with its checked-in copy.
func current(t *testing.T, file, generated string) {
	t.Helper()
	golden.Check(t, filepath.Join(docsDir, file), generated, "run go test ./cmd/boxswap -run Docs -update and commit it")
}

func TestDocsManPageIsCurrent(t *testing.T) {
	page := manPage(newRootCommand(&globalOptions{}))
	for _, verb := range []string{"where", "next", "resume", "rollback", "plan", "status", "sizes", "log", "check", "graph", "completion"} {
		if !strings.Contains(page, `.SS "boxswap `+verb) {
			t.Errorf("the man page has no section for %s", verb)
		}
	}
	if strings.Contains(page, "gen\\-man") {
		t.Error("the man page lists the hidden gen-man")
	}
	current(t, "man/boxswap.1", page)
}

// The diagram is checked in twice: raw for tools, and in phases.md, where
// GitHub renders it.
func TestDocsPhaseDiagramIsCurrent(t *testing.T) {
	current(t, "phases.mmd", fsm.Graph())
	md, err := os.ReadFile(filepath.Join(docsDir, "phases.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "```mermaid\n"+fsm.Graph()+"```\n") {
		t.Errorf("docs/phases.md does not hold boxswap graph's diagram in a mermaid block; paste the output of boxswap graph there")
	}
}

// Every exit code of the help is in the troubleshooting guide's table.
func TestDocsExitCodes(t *testing.T) {
	guide, err := os.ReadFile(filepath.Join(docsDir, "troubleshooting.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{"| 0 ", "| 1 ", "| 2 ", "| 3 ", "| 4 ", "| 5 ", "| 6 ", "| 7 ", "| 8 ", "| 130 "} {
		if !strings.Contains(string(guide), code) {
			t.Errorf("docs/troubleshooting.md has no row for exit code %s|", code)
		}
	}
}
