package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"boxswap/state"
	"boxswap/steps"
	"boxswap/test/lab/lab"
)

// chattyCmd prints n bytes of 80-column lines, like dnf or rsync -v.
func chattyCmd(n int64) string {
	return "yes 'Downloading Packages: python3-numpy-1.13.3-4.fc29.x86_64.rpm 4.2 MB/s | 4.5 MB 00:01 ok' | head -c " + strconv.FormatInt(n, 10)
}

// childChatty runs one step whose remote command prints -bytes bytes,
// through the engine as next does (terminal output on stdout, the full log
// beside the state).
func childChatty(ctx context.Context, fs *flag.FlagSet, args []string) error {
	cfg := fs.String("config", "", "boxes.yaml")
	st := fs.String("state", "", "state file (fresh)")
	n := fs.Int64("bytes", 1<<30, "bytes of output")
	fs.Parse(args)
	e, closeAll, err := engine(*cfg, *st, os.Stdout)
	if err != nil {
		return err
	}
	defer closeAll()
	e.Plan = planOf([]steps.Step{steps.Command("bench/chatty", lab.Thurst, "print a lot", chattyCmd(*n), "", "")})
	_, err = e.Next(ctx)
	return err
}

func memory(ctx context.Context, fs *flag.FlagSet, args []string) error {
	dir := fs.String("dir", "/tmp/bench/mem", "lab directory (recreated)")
	n := fs.Int64("bytes", 1<<30, "bytes of remote output")
	fs.Parse(args)
	l, err := upLab(ctx, *dir, lab.Options{})
	if err != nil {
		return err
	}
	defer l.Down()
	fmt.Println("machine:", machine())
	db := filepath.Join(*dir, "chatty.db")
	term := filepath.Join(*dir, "terminal.out")
	f, err := os.Create(term)
	if err != nil {
		return err
	}
	defer f.Close()
	d, rss, err := timed(ctx, f, self(), "child-chatty", "-config", l.Config(), "-state", db, "-bytes", strconv.FormatInt(*n, 10))
	if err != nil {
		return err
	}
	logs, _ := filepath.Glob(db + ".logs/*.log")
	var logSize int64
	for _, p := range logs {
		if fi, err := os.Stat(p); err == nil {
			logSize += fi.Size()
		}
	}
	ti, _ := f.Stat()
	fmt.Printf("one step printing %d bytes on thurst: %s, peak RSS of the boxswap process %d KiB (%.1f MiB)\n",
		*n, sec(d), rss, float64(rss)/1024)
	fmt.Printf("log file(s) beside the state: %d bytes; terminal output: %d bytes\n", logSize, ti.Size())
	if a, err := state.Open(db).Last(); err == nil && a != nil && len(a.Steps) == 1 {
		fmt.Printf("state: step %s %s, %d tail lines kept\n", a.Steps[0].ID, a.Steps[0].Status, len(a.Steps[0].Tail))
	}
	for _, p := range logs {
		os.Remove(p) // a gigabyte each
	}
	os.Remove(term)
	_ = io.Discard
	return nil
}
