package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"boxswap/boxes"
	"boxswap/state"
	"boxswap/test/lab/lab"
)

// buildState writes a state holding n transitions (five events a cycle,
// 15 steps each with an output tail), as the engine writes them.
func buildState(path string, n int) error {
	st := state.Open(path)
	events := []struct {
		ev       boxes.Event
		from, to state.Phase
	}{
		{"upgrade-dev", "start", "dev-upgraded"}, {"redirect", "dev-upgraded", "redirected"},
		{"upgrade-prod", "redirected", "prod-upgraded"}, {"switch-back", "prod-upgraded", "switched-back"},
		{"epilogue", "switched-back", "done"},
	}
	for i := range n {
		e := events[i%len(events)]
		cycle := i/len(events) + 1
		if i%len(events) == 0 {
			from := 27 + 2*(cycle-1)
			if err := st.Init(state.Meta{Phase: "start", Cycle: cycle, From: from, To: from + 2}); err != nil {
				return err
			}
		}
		a := &state.Attempt{Cycle: cycle, Event: e.ev, From: e.from, To: e.to, Command: "next"}
		for j := range 15 {
			a.Steps = append(a.Steps, state.StepRecord{ID: fmt.Sprintf("%s/step-%02d", e.ev, j), Box: lab.Thurst,
				Text: "a step of the bench state", Commands: []string{"systemctl is-active -- nbhosting-addr"}})
		}
		id, err := st.Begin(a)
		if err != nil {
			return err
		}
		for _, r := range a.Steps {
			zero := 0
			if err := st.UpdateStep(id, r.ID, func(s *state.StepRecord) error {
				s.Status, s.Attempts, s.Started, s.Ended, s.Exit = state.StepDone, 1, time.Now(), time.Now(), &zero
				s.Tail = []string{"thurst: active", "thurst: a line of output"}
				return nil
			}); err != nil {
				return err
			}
		}
		if err := st.SetPhase(id, e.to); err != nil {
			return err
		}
	}
	return nil
}

func reads(ctx context.Context, fs *flag.FlagSet, args []string) error {
	bin := fs.String("boxswap", "", "the boxswap binary (go build -o ... ./cmd/boxswap)")
	dir := fs.String("dir", "/tmp/bench/reads", "work directory (recreated)")
	runs := fs.Int("runs", 30, "runs of each command")
	cfgFlag := fs.String("config", "boxes.yaml", "a boxes.yaml (its hosts are never dialed)")
	fs.Parse(args)
	if *bin == "" {
		return fmt.Errorf("-boxswap is required")
	}
	_ = os.RemoveAll(*dir)
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	db := filepath.Join(*dir, "boxswap.db")
	if err := buildState(db, 100); err != nil {
		return err
	}
	cfg, _ := filepath.Abs(*cfgFlag)
	fmt.Println("machine:", machine())
	fmt.Printf("state: %s, 100 transitions; config %s (its hosts are never dialed)\n", db, cfg)
	// Proof of "never touches the network": the same commands in a fresh,
	// empty network namespace (no interface up, so any dial fails).
	for _, verb := range []string{"where", "log"} {
		out, err := exec.CommandContext(ctx, "unshare", "-n", *bin, "-c", cfg, "--state", db, verb).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s without a network: %w\n%s", verb, err, out)
		}
		fmt.Printf("%s in an empty network namespace: ok (%d bytes of output)\n", verb, len(out))
	}
	for _, verb := range [][]string{{"where"}, {"log"}, {"where", "--json"}, {"log", "--json"}} {
		var ds []time.Duration
		for range *runs {
			d, _, err := timed(ctx, io.Discard, *bin, append([]string{"-c", cfg, "--state", db}, verb...)...)
			if err != nil {
				return err
			}
			ds = append(ds, d)
		}
		fmt.Printf("boxswap %-12s median %s (min %s, max %s, %d runs)\n", fmt.Sprint(verb), ms(median(ds)), ms(minOf(ds)), ms(maxOf(ds)), *runs)
	}
	return nil
}

func minOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func maxOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
