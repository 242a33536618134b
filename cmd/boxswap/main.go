package main

import (
	"context"
	"io"
	"os"
)

func main() {
	processSignals()
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command line and returns its exit code; only main exits.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globalOptions{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCommand(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	_, err := root.ExecuteContextC(ctx)
	_ = g.closeState()
	if err == nil {
		return exitOK
	}
	jsonOut := g.JSON
	if !g.started {
		// cobra refused the command line before any verb ran.
		if _, ok := err.(*usageError); !ok {
			err = withHint(&usageError{err.Error()}, "see boxswap --help")
		}
		jsonOut = jsonOut || wantsJSON(args)
	}
	return report(err, jsonOut, stdout, stderr)
}
