package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"boxswap/state"
	"boxswap/steps"
	"boxswap/test/lab/lab"
)

const nSteps = 200

// checkCmd is the i-th of the 200 check-only commands and its box: a
// folder test, a unit state, a settings line, alternating boxes.
func checkCmd(i int) (box, cmd string) {
	box, unit := lab.Thurst, "nbhosting-addr"
	if i%2 == 1 {
		box, unit = lab.Thermals, "nbhosting-dev-addr"
	}
	switch i % 3 {
	case 0:
		cmd = "test -d /nbhosting/students"
	case 1:
		cmd = "systemctl is-active " + unit
	default:
		cmd = "grep -q '^server_name = ' /root/nbhosting/django/nbh_main/sitesettings.py"
	}
	return box, cmd
}

// checkSteps are the 200 commands as boxswap steps: Command steps whose
// check is the command (exit 0: done); their run fails, so a check that
// did not pass shows.
func checkSteps() []steps.Step {
	var s []steps.Step
	for i := range nSteps {
		box, cmd := checkCmd(i)
		s = append(s, steps.Command(fmt.Sprintf("bench/check/%03d", i), box, "check: "+cmd, "false", cmd, ""))
	}
	return s
}

// childChecks runs the 200 check steps through the engine on a fresh state.
func childChecks(ctx context.Context, fs *flag.FlagSet, args []string) error {
	cfg := fs.String("config", "", "boxes.yaml")
	st := fs.String("state", "", "state file (fresh)")
	fs.Parse(args)
	e, closeAll, err := engine(*cfg, *st, os.Stdout)
	if err != nil {
		return err
	}
	defer closeAll()
	e.Plan = planOf(checkSteps())
	_, err = e.Next(ctx)
	return err
}

// childFloor is the floor: one x/crypto/ssh connection per box, the 200
// commands as sequential exec round trips, their stdout kept.
func childFloor(_ context.Context, fs *flag.FlagSet, args []string) error {
	dir := fs.String("dir", "", "lab dir")
	fs.Parse(args)
	l, err := lab.Open(*dir)
	if err != nil {
		return err
	}
	clients := map[string]*ssh.Client{}
	for _, b := range lab.BoxNames {
		c, err := l.Dial(b)
		if err != nil {
			return err
		}
		defer c.Close()
		clients[b] = c
	}
	for i := range nSteps {
		box, cmd := checkCmd(i)
		s, err := clients[box].NewSession()
		if err != nil {
			return err
		}
		var out bytes.Buffer
		s.Stdout, s.Stderr = &out, &out
		err = s.Run(cmd)
		s.Close()
		if err != nil {
			return fmt.Errorf("%s: %s: %w: %s", box, cmd, err, out.String())
		}
	}
	return nil
}

// childStore times the state writes the engine makes for 200 steps
// (running, then done), without any remote command.
func storeWrites(path string) (time.Duration, error) {
	st := state.Open(path)
	a := &state.Attempt{Event: "upgrade-dev", From: "start", To: "dev-upgraded", Command: "bench"}
	for i := range nSteps {
		a.Steps = append(a.Steps, state.StepRecord{ID: fmt.Sprintf("bench/check/%03d", i), Text: "check"})
	}
	t0 := time.Now()
	id, err := st.Begin(a)
	if err != nil {
		return 0, err
	}
	for _, r := range a.Steps {
		for _, status := range []state.StepStatus{state.StepRunning, state.StepDone} {
			if err := st.UpdateStep(id, r.ID, func(s *state.StepRecord) error { s.Status = status; return nil }); err != nil {
				return 0, err
			}
		}
	}
	return time.Since(t0), nil
}

func stepsBench(ctx context.Context, fs *flag.FlagSet, args []string) error {
	dir := fs.String("dir", "/tmp/bench/steps", "lab directory (recreated)")
	runs := fs.Int("runs", 5, "runs of each variant, interleaved")
	noAnsible := fs.Bool("no-ansible", false, "skip ansible-playbook")
	noSSH := fs.Bool("no-ssh", false, "skip ssh per step (a minute a run)")
	fs.Parse(args)
	l, err := upLab(ctx, *dir, lab.Options{Port: 0, HTTPPort: 0})
	if err != nil {
		return err
	}
	defer l.Down()
	fmt.Println("machine:", machine())

	// (b) ssh per step, as a script.
	var sh strings.Builder
	sh.WriteString("set -e\n")
	for i := range nSteps {
		box, cmd := checkCmd(i)
		sh.WriteString("ssh " + strings.Join(quoteArgs(sshArgs(l, box)), " ") + " " + shq(cmd) + " >/dev/null\n")
	}
	script := filepath.Join(*dir, "ssh-per-step.sh")
	if err := os.WriteFile(script, []byte(sh.String()), 0o755); err != nil {
		return err
	}
	// (c) Ansible: the same 200 commands, pipelining on, no fact gathering.
	ansible, ansibleOK := "", false
	if !*noAnsible {
		if p, err := exec.LookPath("ansible-playbook"); err == nil {
			ansible, ansibleOK = p, true
			if err := writeAnsible(l, *dir); err != nil {
				return err
			}
		} else {
			fmt.Println("ansible-playbook not found (apt-get install -y ansible): skipped")
		}
	}

	type variant struct {
		name string
		run  func(i int) (time.Duration, error)
	}
	vs := []variant{
		{"boxswap (engine, 200 check steps)", func(i int) (time.Duration, error) {
			d, _, err := timed(ctx, io.Discard, self(), "child-checks", "-config", l.Config(),
				"-state", filepath.Join(*dir, fmt.Sprintf("checks-%d.db", i)))
			return d, err
		}},
		{"ssh host cmd per step (OpenSSH)", func(int) (time.Duration, error) {
			d, _, err := timed(ctx, io.Discard, "/bin/sh", script)
			return d, err
		}},
		{"floor (x/crypto/ssh, 1 connection per box)", func(int) (time.Duration, error) {
			d, _, err := timed(ctx, io.Discard, self(), "child-floor", "-dir", l.Dir)
			return d, err
		}},
	}
	if *noSSH {
		vs = append(vs[:1], vs[2:]...)
	}
	if ansibleOK {
		vs = append(vs, variant{"ansible-playbook (pipelining)", func(i int) (time.Duration, error) {
			cp := filepath.Join(*dir, fmt.Sprintf("ansible-cp-%d", i))
			c := exec.CommandContext(ctx, ansible, "-i", filepath.Join(*dir, "inventory.ini"), filepath.Join(*dir, "playbook.yml"))
			c.Dir = *dir
			c.Env = append(os.Environ(), "ANSIBLE_CONFIG="+filepath.Join(*dir, "ansible.cfg"), "ANSIBLE_SSH_CONTROL_PATH_DIR="+cp)
			var out bytes.Buffer
			c.Stdout, c.Stderr = &out, &out
			t0 := time.Now()
			err := c.Run()
			if err != nil {
				return 0, fmt.Errorf("ansible-playbook: %w\n%s", err, tail(out.String(), 30))
			}
			return time.Since(t0), nil
		}})
	}
	times := make([][]time.Duration, len(vs))
	for i := range *runs {
		for j, v := range vs {
			d, err := v.run(i)
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			times[j] = append(times[j], d)
			fmt.Printf("run %d: %-45s %s\n", i+1, v.name, ms(d))
		}
	}
	var storeTimes []time.Duration
	for i := range *runs {
		d, err := storeWrites(filepath.Join(*dir, fmt.Sprintf("store-%d.db", i)))
		if err != nil {
			return err
		}
		storeTimes = append(storeTimes, d)
	}
	fmt.Printf("\n200 check-only steps over both lab boxes, whole process, median of %d:\n", *runs)
	bx := median(times[0])
	for j, v := range vs {
		m := median(times[j])
		fmt.Printf("  %-45s %10s  (%.2fx boxswap)\n", v.name, ms(m), float64(m)/float64(bx))
	}
	fmt.Printf("  of which boxswap's state writes (Begin + 400 UpdateStep, no network): %s\n", ms(median(storeTimes)))
	return nil
}

func writeAnsible(l *lab.Lab, dir string) error {
	var inv strings.Builder
	inv.WriteString("[lab]\n")
	for _, b := range lab.BoxNames {
		i := l.Info.Boxes[b]
		fmt.Fprintf(&inv, "%s ansible_host=%s ansible_port=%d ansible_user=root ansible_ssh_private_key_file=%s ansible_python_interpreter=/usr/bin/python3\n",
			b, i.Host, i.Port, l.Info.Identity)
	}
	cfg := fmt.Sprintf(`[defaults]
gathering = explicit
host_key_checking = True
retry_files_enabled = False
interpreter_python = /usr/bin/python3
[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes
`, l.Info.KnownHosts)
	var pb strings.Builder
	for _, box := range lab.BoxNames {
		fmt.Fprintf(&pb, "- hosts: %s\n  gather_facts: false\n  tasks:\n", box)
		for i := range nSteps {
			b, cmd := checkCmd(i)
			if b != box {
				continue
			}
			fmt.Fprintf(&pb, "    - name: check %03d\n      ansible.builtin.command: %s\n      changed_when: false\n", i, yamlq(cmd))
		}
	}
	for name, body := range map[string]string{"inventory.ini": inv.String(), "ansible.cfg": cfg, "playbook.yml": pb.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func quoteArgs(a []string) []string {
	q := make([]string, len(a))
	for i, s := range a {
		q[i] = shq(s)
	}
	return q
}

func yamlq(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

var errSkip = errors.New("skipped")
