package main

import (
	"errors"
	"sync"

	"github.com/spf13/cobra"

	"boxswap/boxes"
)

// addStopBefore gives next and resume their --stop-before flag.
func addStopBefore(cmd *cobra.Command, to *string) {
	cmd.Flags().StringVar(to, "stop-before", "", "stop before this step `ID` (e.g. redirect/stop-writers/thurst, the start of the cut-over); resume goes on")
}

// askBoxes runs ask for every box of cfg at once and returns the answers
// in boxes.yaml's order with their errors joined: status, sizes and check
// ask both boxes the same way, and a box that fails never hides the other.
func askBoxes[T any](cfg *boxes.Config, ask func(b boxes.Box) T, failure func(T) error) ([]T, error) {
	out := make([]T, len(cfg.Boxes))
	var wg sync.WaitGroup
	for i, b := range cfg.Boxes {
		wg.Go(func() { out[i] = ask(b) })
	}
	wg.Wait()
	var errs []error
	for _, a := range out {
		errs = append(errs, failure(a))
	}
	return out, errors.Join(errs...)
}

// report ends a verb that reports on the boxes: the text on a terminal,
// or under --json the report with err inside it (one JSON document), then
// err for the exit code. out must point to the report, so that what setErr
// sets is what is printed.
func (g *globalOptions) report(err error, text func(), out any, setErr func(*jsonError)) error {
	if !g.JSON {
		text()
		return err
	}
	setErr(newJSONError(err))
	if perr := g.printJSON(out); perr != nil {
		return perr
	}
	return reported(err)
}
