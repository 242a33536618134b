package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	xssh "golang.org/x/crypto/ssh"

	"boxswap/boxes"
	"boxswap/fsm"
	"boxswap/state"
	"boxswap/steps"
	"boxswap/test/lab/lab"
)

type sshClient = xssh.Client

// prober asks the production address every interval. A probe is answered
// when the address answers HTTP and the box answering runs the app
// (nbh-uwsgi): the lab's address unit answers by itself, where the real
// nginx would answer 502 once the app is stopped, so the window a user
// feels starts when the app stops, not when the address moves.
type prober struct {
	l        *lab.Lab
	interval time.Duration
	mu       sync.Mutex
	samples  []sample
}

type sample struct {
	t  time.Time
	ok bool
}

func (p *prober) run(ctx context.Context) {
	c := p.l.HTTPClient(p.interval * 5)
	tk := time.NewTicker(p.interval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		t := time.Now()
		ok := p.probe(c)
		p.mu.Lock()
		p.samples = append(p.samples, sample{t, ok})
		p.mu.Unlock()
	}
}

func (p *prober) probe(c *http.Client) bool {
	resp, err := c.Get(p.l.Info.ProductionURL)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	f := strings.Fields(string(b))
	if resp.StatusCode != 200 || len(f) < 3 || f[2] != "production" {
		return false
	}
	// Real boxes answer through nginx, 502 once the app stops; the
	// namespace lab's address units answer by themselves.
	return p.l.Info.Kind == lab.KindSystemd || appUp(p.l, f[0])
}

// appUp says whether box runs nbh-uwsgi, read from its /run through its
// init's root (the box's own mount namespace).
func appUp(l *lab.Lab, box string) bool {
	pid, err := os.ReadFile(filepath.Join(l.Dir, box, "init.pid"))
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join("/proc", strings.TrimSpace(string(pid)), "root/run/lab/units/nbh-uwsgi.pid"))
	return err == nil
}

// gap is the longest unanswered stretch between from and to: from the
// first unanswered probe to the next answered one.
func (p *prober) gap(from, to time.Time) (time.Duration, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var longest time.Duration
	var start time.Time
	n := 0
	for _, s := range p.samples {
		if s.t.Before(from) {
			continue
		}
		if s.t.After(to) && start.IsZero() {
			break
		}
		n++
		switch {
		case !s.ok && start.IsZero():
			start = s.t
		case s.ok && !start.IsZero():
			longest = max(longest, s.t.Sub(start))
			start = time.Time{}
		}
	}
	if !start.IsZero() {
		longest = time.Duration(-1) // never answered again: shows as -0.000 s
	}
	return longest, n
}

type cut struct {
	l       *lab.Lab
	p       *prober
	dir     string
	cfg     *boxes.Config
	n       int
	log     io.Writer
	results map[string][]time.Duration
	order   []string
	// finals is, per boxswap move, its final-sync steps' time together.
	finals []time.Duration
}

func (c *cut) record(variant string, d time.Duration) {
	if _, ok := c.results[variant]; !ok {
		c.order = append(c.order, variant)
	}
	c.results[variant] = append(c.results[variant], d)
}

// change1pct appends a line to 1 % of the data files on box (100 of the
// 10,000 of each folder by default), as users would while production runs.
func (c *cut) change1pct(box string, files int) error {
	n := max(files/100, 1)
	cmd := fmt.Sprintf(`for f in students raw; do find /nbhosting/$f -type f | shuf -n %d; done | while IFS= read -r f; do echo "changed $(date +%%s%%N)" >> "$f"; done`, n)
	_, code, err := c.l.Run(box, cmd)
	if err == nil && code != 0 {
		err = fmt.Errorf("%s: change 1%%: exit %d", box, code)
	}
	return err
}

// The variants' names, as the summary and -json read their results.
const (
	boxswapVariant = "boxswap " // and the move's event
	singleVariant  = "single pass in the window (a)"
	floorVariant   = "floor: final rsync + address move by hand"
	warmVariant    = "floor, warm connections"
)

// engineMove runs plan with the engine like "next --stop-before
// EVENT/stop-writers/SRC" (the window's start), changes 1 % of src's files, then "resume",
// measuring the resume.
func (c *cut) engineMove(ctx context.Context, variant, src string, plan []steps.Step, stopBefore string, files int) error {
	c.n++
	db := filepath.Join(c.dir, fmt.Sprintf("move-%02d.db", c.n))
	e, closeAll, err := engine(c.l.Config(), db, c.log)
	if err != nil {
		return err
	}
	defer closeAll()
	e.Plan = planOf(plan)
	e.StopBefore = stopBefore
	t0 := time.Now()
	if _, err := e.Next(ctx); !errors.Is(err, fsm.ErrStopped) {
		return fmt.Errorf("%s: next --stop-before %s: %v", variant, stopBefore, err)
	}
	pre := time.Since(t0)
	if err := c.change1pct(src, files); err != nil {
		return err
	}
	e.StopBefore = ""
	t1 := time.Now()
	att, err := e.Resume(ctx)
	t2 := time.Now()
	if err != nil {
		return fmt.Errorf("%s: resume: %w", variant, err)
	}
	time.Sleep(500 * time.Millisecond) // probes after the last step
	g, n := c.p.gap(t1, t2.Add(500*time.Millisecond))
	c.record(variant, g)
	fmt.Printf("%-40s before the window %s; resume %s; longest unanswered %s (%d probes)\n", variant, sec(pre), sec(t2.Sub(t1)), sec(g), n)
	in := false
	var final time.Duration
	for _, s := range att.Steps {
		if s.ID == stopBefore {
			in = true
		}
		if in {
			fmt.Printf("    %-44s %s\n", s.ID, ms(s.Ended.Sub(s.Started)))
		}
		if strings.Contains(s.ID, "/final-sync/") {
			final += s.Ended.Sub(s.Started)
			for k, v := range s.Facts {
				if strings.HasPrefix(k, "final-sync/") { // how it synced: the change list or a full scan
					fmt.Printf("      %s\n", v)
				}
			}
		}
	}
	if strings.HasPrefix(variant, boxswapVariant) {
		c.finals = append(c.finals, final)
	}
	return nil
}

// handFloor is the floor: the final rsyncs and the address move as an
// operator would type them, one ssh to each box (the app stop starts the
// window; the destination's app is already up). warm sends the same
// commands over SSH connections opened before the window, with rsync
// reusing a box-to-box connection opened before it too: the bound of any
// tool that must stop the app, sync and move the address.
func (c *cut) handFloor(ctx context.Context, src, dst string, files int, warm bool) error {
	svcs := strings.Join(c.cfg.App.Services, " ")
	if _, _, err := c.l.Run(dst, "systemctl start "+svcs); err != nil {
		return err
	}
	d := c.l.Info.Boxes[dst]
	ssh := fmt.Sprintf("ssh -p %d -o BatchMode=yes -o StrictHostKeyChecking=yes", d.Port)
	if warm {
		ssh += " -o ControlPath=~/.ssh/bench-floor-mux"
		m := ssh + " -o ControlMaster=yes -o ControlPersist=60 -f -N root@" + d.Host + " </dev/null >/dev/null 2>&1"
		if _, code, err := c.l.Run(src, "rm -f ~/.ssh/bench-floor-mux; "+m); err != nil || code != 0 {
			return fmt.Errorf("floor: master connection on %s: exit %d %v", src, code, err)
		}
	}
	if err := c.change1pct(src, files); err != nil {
		return err
	}
	rs := func(f string) string {
		return fmt.Sprintf(`rsync -a --delete -e "%s" /nbhosting/%s/ root@%s:/nbhosting/%s/`, ssh, f, d.Host, f)
	}
	cmds := []struct{ box, cmd string }{
		{src, "systemctl stop " + svcs + " && " + rs("students") + " && " + rs("raw") + " && systemctl stop nbhosting-addr"},
		{dst, "systemctl start nbhosting-addr"},
	}
	name := floorVariant
	var t1 time.Time
	if warm {
		name = warmVariant
		clients := map[string]*sshClient{}
		for _, b := range []string{src, dst} {
			cl, err := c.l.Dial(b)
			if err != nil {
				return err
			}
			defer cl.Close()
			clients[b] = cl
		}
		t1 = time.Now()
		for _, step := range cmds {
			s, err := clients[step.box].NewSession()
			if err != nil {
				return err
			}
			out, err := s.CombinedOutput(step.cmd)
			s.Close()
			if err != nil {
				return fmt.Errorf("floor: %s: %s: %w\n%s", step.box, step.cmd, err, out)
			}
		}
	} else {
		t1 = time.Now()
		for _, step := range cmds {
			out, err := exec.CommandContext(ctx, "ssh", append(sshArgs(c.l, step.box), step.cmd)...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("floor: %s: %s: %w\n%s", step.box, step.cmd, err, out)
			}
		}
	}
	t2 := time.Now()
	time.Sleep(500 * time.Millisecond) // probes after the last command
	g, n := c.p.gap(t1, t2.Add(500*time.Millisecond))
	c.record(name, g)
	fmt.Printf("%-40s commands %s; longest unanswered %s (%d probes)\n", name+" "+src+" -> "+dst, sec(t2.Sub(t1)), sec(g), n)
	// Outside the window: leave the units enabled as boxswap would.
	for _, fix := range []struct{ box, cmd string }{{src, "systemctl disable nbhosting-addr"}, {dst, "systemctl enable nbhosting-addr"}} {
		if _, _, err := c.l.Run(fix.box, fix.cmd); err != nil {
			return err
		}
	}
	return nil
}

// singlePass is variant (a): the same step kinds with no pre-sync: the
// window holds the guarded sync (dry run and run), the settings switch,
// install.sh and the app start.
func singlePass(cfg *boxes.Config, src, dst boxes.Box) []steps.Step {
	id := func(s string) string { return "bench-single/" + s }
	prodUnit := cfg.Functions[boxes.Production].AddressUnit
	s := []steps.Step{
		steps.Reachable(id("preflight/reach/"+src.Name), src.Name),
		steps.Reachable(id("preflight/reach/"+dst.Name), dst.Name),
		steps.StopServices(id("stop-services/"+src.Name), src.Name, cfg.App.Services),
	}
	for _, f := range cfg.Data.Folders {
		s = append(s, steps.Sync(id("sync/"+f), steps.SyncParams{
			Src: src.Name, Dst: dst.Name, DstHost: dst.Host, DstPort: dst.Port.Int(), DstUser: dst.User,
			Root: cfg.Data.Root, Folder: f, SrcUnit: prodUnit, Function: boxes.Production, MaxDelete: cfg.Data.MaxDelete,
		}))
	}
	return append(s,
		steps.Settings(id("settings/"+dst.Name), dst.Name, cfg.App.SettingsFile, cfg.Functions[boxes.Production].Settings, cfg.App.Install),
		steps.Command(id("install/"+dst.Name), dst.Name, "install.sh", cfg.App.Install, "", ""),
		steps.StartServices(id("start-services/"+dst.Name), dst.Name, cfg.App.Services),
		steps.UnitDown(id("release-address/"+src.Name), src.Name, prodUnit),
		steps.UnitUp(id("take-address/"+dst.Name), dst.Name, prodUnit),
	)
}

func cutover(ctx context.Context, fs *flag.FlagSet, args []string) error {
	dir := fs.String("dir", "/tmp/bench/cut", "lab directory (recreated)")
	files := fs.Int("files", 10000, "files per data folder (students, raw) per box")
	size := fs.Int("file-size", 25000, "bytes per file")
	rounds := fs.Int("rounds", 3, "rounds of: boxswap redirect, boxswap switch-back, single pass, floor")
	hz := fs.Int("hz", 100, "probes per second")
	verbose := fs.Bool("v", false, "show the engine's output")
	keep := fs.Bool("keep", false, "leave the lab up (take it down with: go run ./test/lab down -dir DIR)")
	kind := fs.String("kind", lab.KindSystemd, "systemd (real boxes; users see nginx's 502 as down) or ns (the namespace lab)")
	inNetns := fs.Bool("in-netns", false, "internal: the lab is up at -dir and this process runs in its namespace")
	jsonOut := fs.Bool("json", false, "print one JSON object of medians (redirect_ms, switch_back_ms, final_sync_ms, floor_ms...) on stdout, the rest on stderr")
	single := fs.Bool("single", true, "measure the single-pass variant (a) too")
	fs.Parse(args)
	stdout := os.Stdout
	if *jsonOut {
		os.Stdout = os.Stderr // fmt.Printf's lines
	}
	t0 := time.Now()
	var l *lab.Lab
	var err error
	if *inNetns {
		l, err = lab.Open(*dir)
	} else {
		// No other lab shares the CPUs while this one measures.
		unlock, lerr := lab.LockMachine()
		if lerr != nil {
			return lerr
		}
		defer unlock()
		o := lab.Options{Files: *files, FileSize: *size}
		if *kind == lab.KindSystemd {
			o.Kind, o.OS = lab.KindSystemd, lab.OSFedora
		}
		l, err = upLab(ctx, *dir, o)
	}
	if err != nil {
		return err
	}
	if !*keep && !*inNetns {
		defer l.Down()
	}
	if l.Info.Kind == lab.KindSystemd && !*inNetns {
		// The engine dials the boxes from this process: measure from the
		// operator's side, the lab's namespace.
		fmt.Printf("lab up (real boxes) in %s\n", sec(time.Since(t0)))
		self, err := os.Executable()
		if err != nil {
			return err
		}
		c := l.Command(self, append([]string{"cutover", "-in-netns"}, args...)...)
		c.Stdout, c.Stderr = stdout, os.Stderr
		return c.Run()
	}
	fmt.Printf("machine: %s\nlab up with %d files of %d bytes per folder per box (%d files, %d MB per box) in %s\n",
		machine(), *files, *size, 2**files, 2*int64(*files)*int64(*size)/1e6, sec(time.Since(t0)))
	cfg, err := boxes.Load(l.Config())
	if err != nil {
		return err
	}
	c := &cut{l: l, dir: *dir, cfg: cfg, log: io.Discard, results: map[string][]time.Duration{},
		p: &prober{l: l, interval: time.Second / time.Duration(*hz)}}
	if *verbose {
		c.log = os.Stdout
	}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	go c.p.run(pctx)

	thurst, thermals := cfg.Boxes[0], cfg.Boxes[1]
	// Both boxes stay on their first release: only the moves are measured.
	meta := state.Meta{From: lab.Release, To: lab.Release}
	if l.Info.Kind == lab.KindSystemd {
		meta = state.Meta{From: l.Info.From, To: l.Info.From}
	}
	for r := range *rounds {
		fmt.Printf("round %d\n", r+1)
		for _, m := range []struct {
			event fsm.Event
			src   string
		}{{fsm.Redirect, lab.Thurst}, {fsm.SwitchBack, lab.Thermals}} {
			plan, err := fsm.Steps(cfg, meta, m.event)
			if err != nil {
				return err
			}
			if err := c.engineMove(ctx, boxswapVariant+string(m.event), m.src, plan, string(m.event)+"/stop-writers/"+m.src, *files); err != nil {
				return err
			}
		}
		if *single {
			if err := c.engineMove(ctx, singleVariant, lab.Thurst, singlePass(cfg, thurst, thermals),
				"bench-single/stop-services/"+lab.Thurst, *files); err != nil {
				return err
			}
		}
		// Production is on thermals after a single pass, on thurst
		// without: the floors start from where it is and end there.
		floors := []struct {
			src, dst string
			warm     bool
		}{{lab.Thermals, lab.Thurst, true}, {lab.Thurst, lab.Thermals, false}}
		if !*single {
			slices.Reverse(floors)
		}
		for _, f := range floors {
			if err := c.handFloor(ctx, f.src, f.dst, *files, f.warm); err != nil {
				return err
			}
		}
		if *single {
			if err := c.engineMove(ctx, singleVariant, lab.Thermals, singlePass(cfg, thermals, thurst),
				"bench-single/stop-services/"+lab.Thermals, *files); err != nil {
				return err
			}
		}
	}
	fmt.Printf("\nlongest unanswered stretch on the production address (%d Hz prober), 1 %% of %d files changed since the pre-sync:\n", *hz, 2**files)
	floor := median(c.results[floorVariant])
	warm := median(c.results[warmVariant])
	for _, v := range c.order {
		m := median(c.results[v])
		var all []string
		for _, d := range c.results[v] {
			all = append(all, sec(d))
		}
		fmt.Printf("  %-42s median %s  (%.2fx floor, %.2fx warm floor)  [%s]\n", v, sec(m),
			float64(m)/float64(floor), float64(m)/float64(warm), strings.Join(all, " "))
	}
	if *jsonOut {
		return c.printJSON(stdout, *files, *size, *rounds)
	}
	return nil
}

// printJSON prints the medians as one JSON object: the production window
// of each move as users see it (502 counted as down), the final syncs'
// part of a boxswap move, and the hand floor.
func (c *cut) printJSON(w io.Writer, files, size, rounds int) error {
	msOf := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	out := map[string]any{
		"files_per_folder": files, "file_size": size, "rounds": rounds, "kind": c.l.Info.Kind,
		"redirect_ms":    msOf(median(c.results[boxswapVariant+string(fsm.Redirect)])),
		"switch_back_ms": msOf(median(c.results[boxswapVariant+string(fsm.SwitchBack)])),
		"final_sync_ms":  msOf(median(c.finals)),
		"floor_ms":       msOf(median(c.results[floorVariant])),
		"warm_floor_ms":  msOf(median(c.results[warmVariant])),
	}
	if s := c.results[singleVariant]; len(s) > 0 {
		out["single_pass_ms"] = msOf(median(s))
	}
	return json.NewEncoder(w).Encode(out)
}
