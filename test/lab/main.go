// Command lab runs the two-box rehearsal lab of boxswap: thurst and
// thermals, real sshd boxes on this machine (Linux, root).
//
// Usage:
//
//	lab up     -dir DIR [-kind systemd|ns] [-os debian|fedora] [-cache DIR] [-files N] [-file-size BYTES]
//	lab down   -dir DIR
//	lab reboot -dir DIR BOX
//	lab crash  -dir DIR BOX   (every process of the box killed at once; down until start)
//	lab start  -dir DIR BOX
//	lab cut    -dir DIR [-for D] BOX   (drop the operator's path to the box; heal after D, or with heal)
//	lab heal   -dir DIR BOX
//	lab env    -dir DIR       (shell assignments: NETNS, PROD, DEV, FROM, TO, THURST_NETNS, THERMALS_NETNS)
//
// The default kind, systemd, boots real boxes: systemd-nspawn containers
// with systemd as PID 1 in network namespaces of their own, bridged in
// the lab's namespace (lab.json names it), where the operator's side runs.
// The ns kind is the fast namespace lab with stand-ins for systemctl, dnf
// and reboots, kept for the tests that need hundreds of runs.
//
// Examples:
//
//	sudo go run ./test/lab up -dir /tmp/lab
//	sudo ip netns exec $(jq -r .netns /tmp/lab/lab.json) ssh -i /tmp/lab/id_ed25519 \
//	    -o UserKnownHostsFile=/tmp/lab/known_hosts root@198.18.0.11 hostname
//	sudo go run ./test/lab down -dir /tmp/lab
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"boxswap/test/lab/lab"
)

func main() {
	if code, ok := lab.Child(); ok {
		os.Exit(code)
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

const usage = `usage: lab VERB -dir DIR [BOX]
verbs: up, down, reboot BOX, crash BOX, start BOX, cut BOX, heal BOX, env
boxes: thurst, thermals
needs Linux and root; run "lab VERB -h" for a verb's flags`

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	verb := args[0]
	fs := flag.NewFlagSet("lab "+verb, flag.ContinueOnError)
	dir := fs.String("dir", "", "the lab's directory (required)")
	var opts lab.Options
	cutFor := fs.Duration("for", 0, "cut: heal after this long (0: stay cut until heal)")
	if verb == "up" {
		fs.StringVar(&opts.Kind, "kind", lab.KindSystemd, "systemd (real boxes) or ns (the fast namespace lab)")
		fs.StringVar(&opts.OS, "os", lab.OSDebian, "systemd kind: debian (12 to 13, apt) or fedora (27 to 29, dnf system-upgrade)")
		fs.StringVar(&opts.Cache, "cache", lab.DefaultCache, "systemd kind: where the base rootfs and repositories are built once")
		fs.IntVar(&opts.Port, "port", 2222, "sshd port of both boxes (0: pick a free one)")
		fs.IntVar(&opts.HTTPPort, "http-port", 8080, "port of the production and development addresses (0: pick a free one)")
		fs.IntVar(&opts.Files, "files", 100, "generated files per data folder per box")
		fs.IntVar(&opts.FileSize, "file-size", 1024, "size of each generated file, in bytes")
		fs.DurationVar(&opts.RebootDelay, "reboot-delay", time.Second, "how long a rebooting box stays down")
		fs.DurationVar(&opts.BootTimeout, "boot-timeout", 60*time.Second, "how long to wait for a box's sshd")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("lab %s: -dir is required\n%s", verb, usage)
	}
	boxArg := func() (string, error) {
		if fs.NArg() != 1 {
			return "", fmt.Errorf("lab %s: give one box: thurst or thermals", verb)
		}
		return fs.Arg(0), nil
	}
	switch verb {
	case "up":
		if opts.Kind != lab.KindSystemd && opts.Kind != lab.KindNS {
			return fmt.Errorf("lab up: -kind %q: give systemd or ns", opts.Kind)
		}
		if opts.Kind == lab.KindNS {
			opts.Kind = ""
		}
		if opts.Kind == lab.KindSystemd {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			l, err := lab.Up(ctx, *dir, opts)
			if err != nil {
				return err
			}
			fmt.Printf("lab up in %s (%s, %s %d)\n  boxes.yaml: %s\n  netns: %s (run the operator's side there: ip netns exec %s …)\n"+
				"  thurst: %s  thermals: %s\n  production: %s  development: %s\n",
				l.Dir, l.Info.Kind, l.Info.OS, l.Info.From, l.Config(), l.Info.Netns, l.Info.Netns,
				l.Info.Boxes[lab.Thurst].Host, l.Info.Boxes[lab.Thermals].Host, l.Info.ProductionAddress, l.Info.DevelopmentAddress)
			return nil
		}
		if err := lab.Supported(); err != nil {
			return err
		}
		// A lab made before keeps its ports unless they are given again.
		if _, err := os.Stat(filepath.Join(*dir, lab.Thurst, "box.json")); err == nil {
			set := map[string]bool{}
			fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
			if !set["port"] {
				opts.Port = 0
			}
			if !set["http-port"] {
				opts.HTTPPort = 0
			}
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		l, err := lab.Up(ctx, *dir, opts)
		if err != nil {
			return err
		}
		b := l.Info.Boxes[lab.Thurst]
		fmt.Printf("lab up in %s\n  boxes.yaml: %s\n  thurst:   %s:%d\n  thermals: %s:%d\n  production:  %s\n  development: %s\n"+
			"  try: ssh -i %s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -p %d root@%s hostname\n",
			l.Dir, l.Config(), b.Host, b.Port, l.Info.Boxes[lab.Thermals].Host, b.Port,
			l.Info.ProductionURL, l.Info.DevelopmentURL, l.Info.Identity, l.Info.KnownHosts, b.Port, b.Host)
		return nil
	case "env":
		l, err := lab.Open(*dir)
		if err != nil {
			return err
		}
		fmt.Printf("NETNS=%s\nPROD=%s\nDEV=%s\nFROM=%d\nTO=%d\nTHURST_NETNS=%s\nTHERMALS_NETNS=%s\n",
			l.Info.Netns, l.Info.ProductionAddress, l.Info.DevelopmentAddress, l.Info.From, l.Info.To,
			l.Info.Boxes[lab.Thurst].Netns, l.Info.Boxes[lab.Thermals].Netns)
		return nil
	case "down", "reboot", "crash", "start", "cut", "heal":
	default:
		return fmt.Errorf("lab: unknown verb %q\n%s", verb, usage)
	}
	if os.Geteuid() != 0 {
		return lab.ErrNotRoot
	}
	l, err := lab.Open(*dir)
	if err != nil {
		return err
	}
	if verb == "down" {
		if err := l.Down(); err != nil {
			return err
		}
		fmt.Println("lab down: no process and no mount left")
		return nil
	}
	box, err := boxArg()
	if err != nil {
		return err
	}
	switch verb {
	case "reboot":
		return l.Reboot(box)
	case "crash":
		return l.Crash(box)
	case "start":
		return l.Start(box)
	case "cut":
		n, err := l.Cut(box)
		if err != nil {
			return err
		}
		fmt.Printf("%s: cut: %d connection(s) reset\n", box, n)
		if *cutFor > 0 {
			time.Sleep(*cutFor)
			return l.Heal(box)
		}
		return nil
	case "heal":
		return l.Heal(box)
	}
	return nil
}
