//go:build linux

package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Up provisions (on first use of dir) and boots both boxes under dir, and
// returns once both answer SSH. On error it takes down what it started.
func Up(ctx context.Context, dir string, opts Options) (*Lab, error) {
	if opts.Kind == KindSystemd {
		return sdUp(ctx, dir, opts)
	}
	if err := Supported(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if old, err := Open(dir); err == nil {
		for _, b := range BoxNames {
			if pid := old.readPID(b, "supervisor"); pid > 0 && old.alive(pid, "supervise") {
				return nil, fmt.Errorf("lab: %s is already up (supervisor pid %d): take it down first with: lab down -dir %s", dir, pid, dir)
			}
		}
	}
	opts = opts.withDefaults()
	l := &Lab{Dir: dir, opts: opts}
	specs, err := l.prepare()
	if err != nil {
		return nil, err
	}
	for _, b := range BoxNames {
		_ = os.Remove(filepath.Join(l.boxDir(b), "crashed"))
		_ = os.Remove(filepath.Join(l.boxDir(b), "failed"))
		if err := l.startSupervisor(b); err != nil {
			_ = l.Down()
			return nil, err
		}
	}
	for _, b := range BoxNames {
		if _, err := l.waitBoot(ctx, b, ""); err != nil {
			_ = l.Down()
			return nil, err
		}
	}
	_ = specs
	return l, nil
}

// Supported says why this process cannot run a lab, or nil.
func Supported() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		return ErrNoSSHD
	}
	return nil
}

// prepare writes the binary, keys, specs and the client files, reusing the
// specs (keys, ports) of a lab that ran in dir before.
func (l *Lab) prepare() (map[string]*boxSpec, error) {
	exe := l.opts.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("lab: find own binary: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(l.Dir, "bin"), 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if err := copyFile(exe, filepath.Join(l.Dir, "bin", "lab"), 0o755); err != nil {
		return nil, fmt.Errorf("lab: copy lab binary: %w", err)
	}

	specs := map[string]*boxSpec{}
	for _, b := range BoxNames {
		var s boxSpec
		if raw, err := os.ReadFile(filepath.Join(l.boxDir(b), "box.json")); err == nil && json.Unmarshal(raw, &s) == nil && s.Name == b {
			specs[b] = &s
		}
	}
	var op keyPair
	if len(specs) == 2 {
		raw, err := os.ReadFile(filepath.Join(l.Dir, "id_ed25519"))
		pub, err2 := os.ReadFile(filepath.Join(l.Dir, "id_ed25519.pub"))
		if err != nil || err2 != nil {
			return nil, fmt.Errorf("lab: %s has boxes but no id_ed25519: remove %s to start afresh", l.Dir, l.Dir)
		}
		op = keyPair{Private: string(raw), Public: strings.TrimSpace(string(pub))}
		if l.opts.Port != 0 && l.opts.Port != specs[Thurst].Port || l.opts.HTTPPort != 0 && l.opts.HTTPPort != specs[Thurst].HTTPPort {
			return nil, fmt.Errorf("lab: %s was made with port %d and http port %d: use those or remove %s", l.Dir, specs[Thurst].Port, specs[Thurst].HTTPPort, l.Dir)
		}
	} else {
		var err error
		if op, err = newEd25519("operator@lab"); err != nil {
			return nil, err
		}
		port, hport := l.opts.Port, l.opts.HTTPPort
		if port == 0 {
			if port, err = freePort(ThurstHost, ThermalsHost); err != nil {
				return nil, err
			}
		}
		if hport == 0 {
			if hport, err = freePort(ProductionAddr, DevelopmentAddr); err != nil {
				return nil, err
			}
		}
		type keys struct{ ed, ec, user keyPair }
		k := map[string]keys{}
		for _, b := range BoxNames {
			var kk keys
			if kk.ed, err = newEd25519("root@" + b); err != nil {
				return nil, err
			}
			if kk.ec, err = newECDSA("root@" + b); err != nil {
				return nil, err
			}
			if kk.user, err = newEd25519("root@" + b); err != nil {
				return nil, err
			}
			k[b] = kk
		}
		hosts := map[string]string{Thurst: ThurstHost, Thermals: ThermalsHost}
		funcs := map[string]string{Thurst: "production", Thermals: "development"}
		for _, b := range BoxNames {
			peer := Thermals
			if b == Thermals {
				peer = Thurst
			}
			specs[b] = &boxSpec{
				Name: b, Host: hosts[b], Port: port, Function: funcs[b],
				Peer: peer, PeerHost: hosts[peer], HTTPPort: hport,
				Files: l.opts.Files, FileSize: l.opts.FileSize,
				HostKeys: map[string]string{
					"ssh_host_ed25519_key": k[b].ed.Private,
					"ssh_host_ecdsa_key":   k[b].ec.Private,
				},
				UserKey:        k[b].user.Private,
				UserPub:        k[b].user.Public,
				AuthorizedKeys: []string{op.Public, k[peer].user.Public},
				KnownHosts: []string{
					knownHost(hosts[peer], port, k[peer].ed.Public),
					knownHost(hosts[peer], port, k[peer].ec.Public),
				},
			}
		}
		for _, b := range BoxNames {
			if err := os.MkdirAll(l.boxDir(b), 0o700); err != nil {
				return nil, fmt.Errorf("lab: %w", err)
			}
			raw, _ := json.MarshalIndent(specs[b], "", "  ")
			if err := writeFile(filepath.Join(l.boxDir(b), "box.json"), raw, 0o600); err != nil {
				return nil, err
			}
		}
	}

	port, hport := specs[Thurst].Port, specs[Thurst].HTTPPort
	var known []string
	for _, b := range BoxNames {
		for _, name := range []string{"ssh_host_ed25519_key", "ssh_host_ecdsa_key"} {
			pub, err := publicOf(specs[b].HostKeys[name])
			if err != nil {
				return nil, err
			}
			known = append(known, knownHost(specs[b].Host, port, pub))
		}
	}
	l.Info = Info{
		Boxes: map[string]BoxInfo{
			Thurst:   {Host: ThurstHost, Port: port, Disk: filepath.Join(l.boxDir(Thurst), "upper")},
			Thermals: {Host: ThermalsHost, Port: port, Disk: filepath.Join(l.boxDir(Thermals), "upper")},
		},
		ProductionURL:  fmt.Sprintf("http://%s:%d/", ProductionAddr, hport),
		DevelopmentURL: fmt.Sprintf("http://%s:%d/", DevelopmentAddr, hport),
		Identity:       filepath.Join(l.Dir, "id_ed25519"),
		KnownHosts:     filepath.Join(l.Dir, "known_hosts"),
	}
	info, _ := json.MarshalIndent(l.Info, "", "  ")
	st, _ := json.MarshalIndent(labState{BootTimeout: l.opts.BootTimeout, RebootDelay: l.opts.RebootDelay, HTTPPort: hport}, "", "  ")
	for _, f := range []struct {
		name string
		data string
		mode os.FileMode
	}{
		{"id_ed25519", op.Private, 0o600},
		{"id_ed25519.pub", op.Public + "\n", 0o644},
		{"known_hosts", strings.Join(known, "\n") + "\n", 0o644},
		{"boxes.yaml", boxesYAML(port), 0o644},
		{"state.json", string(st) + "\n", 0o644},
		{"lab.json", string(info) + "\n", 0o644},
	} {
		if err := writeFile(filepath.Join(l.Dir, f.name), []byte(f.data), f.mode); err != nil {
			return nil, err
		}
	}
	return specs, nil
}

// freePort finds a TCP port free on every one of hosts.
func freePort(hosts ...string) (int, error) {
	for i := 0; i < 50; i++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(hosts[0], "0"))
		if err != nil {
			return 0, fmt.Errorf("lab: pick a port on %s: %w", hosts[0], err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ok := true
		var held []net.Listener
		for _, h := range hosts[1:] {
			l2, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l2)
		}
		ln.Close()
		for _, h := range held {
			h.Close()
		}
		if ok {
			return port, nil
		}
	}
	return 0, fmt.Errorf("lab: no port free on all of %v", hosts)
}

func (l *Lab) startSupervisor(box string) error {
	logf, err := os.OpenFile(filepath.Join(l.boxDir(box), "supervisor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("lab: %s: %w", box, err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(l.Dir, "bin", "lab"), childMarker, "supervise", l.Dir, box,
		l.opts.RebootDelay.String())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = cleanEnv()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("lab: %s: start supervisor: %w", box, err)
	}
	if err := writeFile(filepath.Join(l.boxDir(box), "supervisor.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		return err
	}
	// The supervisor outlives us; reap it if it dies while we run.
	go func() { _ = cmd.Wait() }()
	return nil
}

// cleanEnv is the environment of lab processes: nothing of the caller's
// but a plain PATH, so boxes do not inherit a test's or a user's settings.
func cleanEnv() []string {
	return []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
}

// readPID reads DIR/BOX/NAME.pid; 0 if absent.
func (l *Lab) readPID(box, name string) int {
	raw, err := os.ReadFile(filepath.Join(l.boxDir(box), name+".pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 1 {
		return 0
	}
	return pid
}

// alive says whether pid runs and is this lab's process of the given role,
// so a recycled PID is never signalled.
func (l *Lab) alive(pid int, role string) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	if len(args) < 4 || args[1] != childMarker || args[2] != role || args[3] != l.Dir {
		return false
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie has exited already.
	if i := bytes.LastIndexByte(st, ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
		return false
	}
	return true
}

// waitBoot waits until box answers SSH with a boot id other than old, and
// returns that boot id.
func (l *Lab) waitBoot(ctx context.Context, box, old string) (string, error) {
	deadline := time.Now().Add(l.opts.BootTimeout)
	var last error
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("lab: %s: wait for boot: %w", box, err)
		}
		out, code, err := l.Run(box, "cat /proc/sys/kernel/random/boot_id")
		id := strings.TrimSpace(out)
		if err == nil && code == 0 && id != "" && id != old {
			return id, nil
		}
		if err != nil {
			last = err
		}
		if why, err := os.ReadFile(filepath.Join(l.boxDir(box), "failed")); err == nil {
			return "", fmt.Errorf("lab: %s: failed to boot: %s; see %s:\n%s", box, strings.TrimSpace(string(why)),
				filepath.Join(l.boxDir(box), "supervisor.log"), l.logTail(box))
		}
		if sup := l.readPID(box, "supervisor"); sup == 0 || !l.alive(sup, "supervise") {
			return "", fmt.Errorf("lab: %s: supervisor is gone; see %s:\n%s", box,
				filepath.Join(l.boxDir(box), "supervisor.log"), l.logTail(box))
		}
		time.Sleep(150 * time.Millisecond)
	}
	return "", fmt.Errorf("lab: %s: no SSH after %s (last: %v); see %s:\n%s", box, l.opts.BootTimeout, last,
		filepath.Join(l.boxDir(box), "supervisor.log"), l.logTail(box))
}

func (l *Lab) logTail(box string) string {
	raw, _ := os.ReadFile(filepath.Join(l.boxDir(box), "supervisor.log"))
	if len(raw) > 2000 {
		raw = raw[len(raw)-2000:]
	}
	return string(raw)
}

// ClientConfig returns the SSH client configuration of the operator:
// DIR/id_ed25519, host keys checked strictly against DIR/known_hosts.
func (l *Lab) ClientConfig() (*ssh.ClientConfig, error) {
	raw, err := os.ReadFile(l.Info.Identity)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("lab: %s: %w", l.Info.Identity, err)
	}
	hk, err := knownhosts.New(l.Info.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	return &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hk,
		Timeout:         3 * time.Second,
	}, nil
}

// Dial opens an SSH connection to box as the operator.
func (l *Lab) Dial(box string) (*ssh.Client, error) {
	if err := checkBox(box); err != nil {
		return nil, err
	}
	cfg, err := l.ClientConfig()
	if err != nil {
		return nil, err
	}
	b := l.Info.Boxes[box]
	addr := net.JoinHostPort(b.Host, strconv.Itoa(b.Port))
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	conn, err := l.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("lab: %s: ssh: %w", box, err)
	}
	_ = conn.SetDeadline(time.Now().Add(2 * cfg.Timeout))
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("lab: %s: ssh: %w", box, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), nil
}

// Run runs cmd on box over a fresh SSH connection and returns its stdout
// and exit status; stderr is appended to the error of a failed command.
//
// On the systemd kind it runs cmd inside the box with nsenter instead, so
// it answers while the operator's link is cut; stderr then follows stdout.
func (l *Lab) Run(box, cmd string) (string, int, error) {
	if l.real() {
		if err := checkBox(box); err != nil {
			return "", -1, err
		}
		return l.sdRun(box, cmd)
	}
	return l.sshRun(box, cmd)
}

// sshRun runs cmd on box over a fresh SSH connection as the operator.
func (l *Lab) sshRun(box, cmd string) (string, int, error) {
	c, err := l.Dial(box)
	if err != nil {
		return "", -1, err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return "", -1, fmt.Errorf("lab: %s: ssh session: %w", box, err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	err = s.Run(cmd)
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		return out.String(), exit.ExitStatus(), nil
	}
	if err != nil {
		return out.String(), -1, fmt.Errorf("lab: %s: %s: %w", box, cmd, err)
	}
	return out.String(), 0, nil
}

// BootID returns box's current boot id.
func (l *Lab) BootID(box string) (string, error) {
	out, code, err := l.Run(box, "cat /proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", err
	}
	if code != 0 {
		return "", fmt.Errorf("lab: %s: read boot id: exit %d", box, code)
	}
	return strings.TrimSpace(out), nil
}

// WaitBoot waits until box answers SSH with a boot id other than old (""
// accepts any) and returns it: after a reboot asked on the box itself
// (reboot, dnf system-upgrade reboot), pass the boot id read before.
func (l *Lab) WaitBoot(ctx context.Context, box, old string) (string, error) {
	if err := checkBox(box); err != nil {
		return "", err
	}
	if l.real() {
		return l.sdWaitBoot(ctx, box, old)
	}
	return l.waitBoot(ctx, box, old)
}

// Procs lists the PIDs of every process of the lab: the supervisors, the
// boxes' inits and every process in the boxes.
func (l *Lab) Procs() []int {
	if l.real() {
		return l.sdProcs()
	}
	var out []int
	for _, b := range BoxNames {
		if sup := l.readPID(b, "supervisor"); sup > 0 && l.alive(sup, "supervise") {
			out = append(out, sup)
		}
		if init := l.readPID(b, "init"); init > 0 && l.alive(init, "init") {
			out = append(out, init)
			for _, p := range l.boxProcs(init) {
				out = append(out, p.pid)
			}
		}
	}
	return out
}

// Reboot reboots box as its reboot command would, and waits until it is
// back with a new boot id.
func (l *Lab) Reboot(box string) error {
	if err := checkBox(box); err != nil {
		return err
	}
	if l.real() {
		return l.sdReboot(box)
	}
	old, err := l.BootID(box)
	if err != nil {
		return err
	}
	pid := l.readPID(box, "init")
	if pid == 0 || !l.alive(pid, "init") {
		return fmt.Errorf("lab: %s: not running (crashed? start it with: lab start -dir %s %s)", box, l.Dir, box)
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return fmt.Errorf("lab: %s: reboot: %w", box, err)
	}
	_, err = l.waitBoot(context.Background(), box, old)
	return err
}

// Crash kills every process of box at once, as a power cut would, and
// keeps it down until Start.
func (l *Lab) Crash(box string) error {
	if err := checkBox(box); err != nil {
		return err
	}
	if l.real() {
		return l.sdCrash(box)
	}
	if err := writeFile(filepath.Join(l.boxDir(box), "crashed"), []byte("crashed\n"), 0o644); err != nil {
		return err
	}
	pid := l.readPID(box, "init")
	if pid == 0 || !l.alive(pid, "init") {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("lab: %s: crash: %w", box, err)
	}
	// Down once the supervisor has seen the crash (it removes init.pid).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if l.readPID(box, "init") != pid {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("lab: %s: crash: the box's supervisor did not see init (pid %d) die", box, pid)
}

// Start boots a crashed box and waits until it answers SSH.
func (l *Lab) Start(box string) error {
	if err := checkBox(box); err != nil {
		return err
	}
	if l.real() {
		return l.sdStart(box)
	}
	if sup := l.readPID(box, "supervisor"); sup == 0 || !l.alive(sup, "supervise") {
		return fmt.Errorf("lab: %s: the lab is down: bring it up with: lab up -dir %s", box, l.Dir)
	}
	for _, f := range []string{"crashed", "failed"} {
		if err := os.Remove(filepath.Join(l.boxDir(box), f)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("lab: %s: start: %w", box, err)
		}
	}
	_, err := l.waitBoot(context.Background(), box, "")
	return err
}

// Cut kills box's current SSH connections (the per-connection sshd
// processes, not the listener), as a network glitch would. It returns how
// many processes it killed.
//
// On the systemd kind the operator's path to the box stays down (new
// connections hang) until Heal; the box keeps its mirror and its link to
// the other box.
func (l *Lab) Cut(box string) (int, error) {
	if err := checkBox(box); err != nil {
		return 0, err
	}
	if l.real() {
		return l.sdCut(box)
	}
	init := l.readPID(box, "init")
	if init == 0 || !l.alive(init, "init") {
		return 0, fmt.Errorf("lab: %s: not running", box)
	}
	n := 0
	for _, p := range l.boxProcs(init) {
		if p.comm == "sshd" && p.ppid != init {
			if syscall.Kill(p.pid, syscall.SIGKILL) == nil {
				n++
			}
		}
	}
	return n, nil
}

type procInfo struct {
	pid, ppid int
	comm      string
}

// boxProcs lists the processes in init's PID namespace, as this machine sees them.
func (l *Lab) boxProcs(init int) []procInfo {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init))
	if err != nil {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var out []procInfo
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == init {
			continue
		}
		if n, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err != nil || n != ns {
			continue
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i, j := bytes.IndexByte(st, '('), bytes.LastIndexByte(st, ')')
		if i < 0 || j < i {
			continue
		}
		f := strings.Fields(string(st[j+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		out = append(out, procInfo{pid: pid, ppid: ppid, comm: string(st[i+1 : j])})
	}
	return out
}

func (l *Lab) waitGone(box string, pid int, role string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !l.alive(pid, role) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("lab: %s: %s (pid %d) still running after %s", box, role, pid, d)
}

// Down stops both boxes and their supervisors, by PID, and checks that no
// process and no mount of the lab is left.
func (l *Lab) Down() error {
	if l.real() {
		return l.sdDown()
	}
	var errs []error
	for _, b := range BoxNames {
		sup := l.readPID(b, "supervisor")
		if sup > 0 && l.alive(sup, "supervise") {
			_ = syscall.Kill(sup, syscall.SIGTERM)
			if l.waitGone(b, sup, "supervise", 10*time.Second) != nil {
				_ = syscall.Kill(sup, syscall.SIGKILL)
			}
		}
		if init := l.readPID(b, "init"); init > 0 && l.alive(init, "init") {
			_ = syscall.Kill(init, syscall.SIGKILL)
			if err := l.waitGone(b, init, "init", 10*time.Second); err != nil {
				errs = append(errs, err)
			}
		}
		if sup > 0 {
			if err := l.waitGone(b, sup, "supervise", 5*time.Second); err != nil {
				errs = append(errs, err)
			}
		}
		_ = os.Remove(filepath.Join(l.boxDir(b), "supervisor.pid"))
		_ = os.Remove(filepath.Join(l.boxDir(b), "init.pid"))
	}
	if m := l.Mounts(); len(m) > 0 {
		errs = append(errs, fmt.Errorf("lab: mounts left under %s: %s", l.Dir, strings.Join(m, ", ")))
	}
	return errors.Join(errs...)
}

// Mounts lists this machine's mounts under the lab's directory; after
// Down it is empty.
func (l *Lab) Mounts() []string {
	raw, _ := os.ReadFile("/proc/mounts")
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && (f[1] == l.Dir || strings.HasPrefix(f[1], l.Dir+"/")) {
			out = append(out, f[1])
		}
	}
	return out
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}
