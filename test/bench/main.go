// Command bench measures boxswap where it counts (issue 5): the cut-over
// window, cheap check steps against plain ssh, Ansible and a bare SSH
// floor, the local reads, and memory under a flood of remote output.
// Nothing here runs in go test; see docs/performance.md for the method
// and the figures.
//
// Usage (Linux, root: the lab needs both):
//
//	go build -o /tmp/bench/bench ./test/bench
//	/tmp/bench/bench cutover -dir /tmp/bench/cut  [-files 10000 -file-size 25000 -rounds 3 -json -single=false]
//	/tmp/bench/bench steps   -dir /tmp/bench/steps [-runs 5]
//	/tmp/bench/bench reads   -boxswap /tmp/bench/boxswap [-runs 30]
//	/tmp/bench/bench memory  -dir /tmp/bench/mem [-bytes 1073741824]
//
// Each verb starts its own lab under -dir and takes it down at the end.
// Whole-process figures come from child processes of this same binary
// (verbs starting with "child-"), timed from fork to exit.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"boxswap/test/lab/lab"
)

func main() {
	if code, ok := lab.Child(); ok {
		os.Exit(code)
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench cutover|steps|reads|memory [flags]; see go doc ./test/bench")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	verb, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet("bench "+verb, flag.ExitOnError)
	var err error
	switch verb {
	case "cutover":
		err = cutover(ctx, fs, args)
	case "steps":
		err = stepsBench(ctx, fs, args)
	case "reads":
		err = reads(ctx, fs, args)
	case "memory":
		err = memory(ctx, fs, args)
	case "child-checks":
		err = childChecks(ctx, fs, args)
	case "child-floor":
		err = childFloor(ctx, fs, args)
	case "child-chatty":
		err = childChatty(ctx, fs, args)
	default:
		err = fmt.Errorf("bench: unknown verb %q", verb)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
