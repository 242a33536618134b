//go:build linux

package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The systemd kind: each box is a systemd-nspawn container with systemd as
// PID 1, booted from a cached Debian rootfs under a copy-on-write overlay,
// in a network namespace of its own bridged to the lab's.
const (
	// BridgeAddr is the operator's address on the lab bridge; MirrorAddr
	// serves the package repositories and the pip wheelhouse.
	BridgeAddr = "198.18.0.1"
	MirrorAddr = "198.18.0.2"
	// UsersAddr is where the users' probes come from: on the bridge like
	// the operator, but not on the operator's path, so a cut of that path
	// (Cut) is not seen as the site down.
	UsersAddr  = "198.18.0.3"
	sdThurst   = "198.18.0.11"
	sdThermals = "198.18.0.12"
	// sdProduction and sdDevelopment are the functions' addresses: IP
	// aliases the address units add to the holder's host0.
	sdProduction  = "198.18.0.100"
	sdDevelopment = "198.18.0.101"
	sdPrefix      = "/24"

	// DefaultCache holds the base rootfs and repositories, built once.
	DefaultCache = "/var/cache/boxswap-lab"
)

// images holds the scripts that build the systemd kind's bases.
//
//go:embed images
var images embed.FS

var sdHosts = map[string]string{Thurst: sdThurst, Thermals: sdThermals}

// osSpec is what differs between the lab's two OS paths.
type osSpec struct {
	from, to    int
	develBranch string
	yaml        string // the upgrade section of boxes.yaml
}

var osSpecs = map[string]osSpec{
	OSDebian: {from: 12, to: 13, develBranch: "trixie", yaml: `upgrade:
  method: apt
  from: 12
  to: 13
  suites: {12: bookworm, 13: trixie}
  reboot_timeout: 5m
  devel_branch: trixie
  min_free_disk: 1MiB
`},
	OSFedora: {from: 27, to: 29, develBranch: "f29", yaml: `upgrade:
  from: 27
  to: 29
  options: [--allowerasing]
  reboot_timeout: 5m
  devel_branch: f29
  min_free_disk: 1MiB
`},
}

// netnsName returns the name of the lab's namespace ("" for the lab
// itself, else a box's), unique per lab directory.
func netnsName(dir, box string) string {
	sum := sha256.Sum256([]byte(dir))
	n := "bxl-" + hex.EncodeToString(sum[:4])
	if box != "" {
		n += "-" + box
	}
	return n
}

func (l *Lab) real() bool { return l != nil && l.Info.Kind == KindSystemd }

func sdSupported(opts Options) error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return fmt.Errorf("lab: no network namespaces on this kernel (/proc/self/ns/net): the systemd lab needs them")
	}
	need := map[string]string{"systemd-nspawn": "systemd-container", "mmdebstrap": "mmdebstrap", "ip": "iproute2",
		"nsenter": "util-linux", "apt-ftparchive": "apt-utils", "ss": "iproute2"}
	if opts.OS == OSFedora {
		for k, v := range map[string]string{"rpmbuild": "rpm", "createrepo_c": "createrepo-c", "dnf": "dnf"} {
			need[k] = v
		}
	}
	var miss []string
	for bin, pkg := range need {
		if _, err := exec.LookPath(bin); err != nil {
			miss = append(miss, pkg)
		}
	}
	if len(miss) > 0 {
		return fmt.Errorf("lab: missing %s: install with: apt-get install -y %s", strings.Join(miss, ", "), strings.Join(miss, " "))
	}
	return nil
}

// sdUp brings up the systemd kind (see Up).
func sdUp(ctx context.Context, dir string, opts Options) (*Lab, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if opts.OS == "" {
		opts.OS = OSDebian
	}
	spec, ok := osSpecs[opts.OS]
	if !ok {
		return nil, fmt.Errorf("lab: -os %q: give debian or fedora", opts.OS)
	}
	if opts.Cache == "" {
		opts.Cache = DefaultCache
	}
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 120 * time.Second
	}
	if err := sdSupported(opts); err != nil {
		return nil, err
	}
	if old, err := Open(dir); err == nil && len(old.Procs()) > 0 {
		return nil, fmt.Errorf("lab: %s is already up: take it down first with: lab down -dir %s", dir, dir)
	}
	img, err := ensureImage(ctx, opts)
	if err != nil {
		return nil, err
	}
	l := &Lab{Dir: dir, opts: opts.withDefaults()}
	l.opts.BootTimeout = opts.BootTimeout
	l.Info = Info{
		Kind: KindSystemd, OS: opts.OS, Netns: netnsName(dir, ""), From: spec.from, To: spec.to,
		ProductionAddress: sdProduction, DevelopmentAddress: sdDevelopment,
		ProductionURL: "http://" + sdProduction + "/", DevelopmentURL: "http://" + sdDevelopment + "/",
		Identity: filepath.Join(dir, "id_ed25519"), KnownHosts: filepath.Join(dir, "known_hosts"),
		Image: img.rootfs, Boxes: map[string]BoxInfo{},
	}
	for _, b := range BoxNames {
		l.Info.Boxes[b] = BoxInfo{Host: sdHosts[b], Port: 22, Disk: filepath.Join(l.boxDir(b), "root"),
			Netns: netnsName(dir, b)}
	}
	fail := func(err error) (*Lab, error) {
		_ = l.Down()
		return nil, err
	}
	if err := l.sdPrepare(img, spec); err != nil {
		return fail(err)
	}
	if err := l.netUp(); err != nil {
		return fail(err)
	}
	if err := l.startRole("", "sd-serve", img.serve+",/git/="+filepath.Join(l.Dir, "git")); err != nil {
		return fail(err)
	}
	for _, b := range BoxNames {
		_ = os.Remove(filepath.Join(l.boxDir(b), "crashed"))
		_ = os.Remove(filepath.Join(l.boxDir(b), "failed"))
		if err := l.startRole(b, "sd-supervise", b); err != nil {
			return fail(err)
		}
	}
	for _, b := range BoxNames {
		if _, err := l.sdWaitBoot(ctx, b, ""); err != nil {
			return fail(err)
		}
	}
	return l, nil
}

// image is a built base: the rootfs every box overlays and what the
// mirror serves (URL path → folder).
type image struct {
	rootfs string
	serve  string // "path=dir,path=dir"
}

// ensureImage builds the OS's base rootfs and repositories into the cache
// unless a complete build of the same scripts is there, under a lock so
// two labs never build at once.
func ensureImage(ctx context.Context, opts Options) (image, error) {
	if err := os.MkdirAll(opts.Cache, 0o755); err != nil {
		return image{}, fmt.Errorf("lab: cache %s: %w (give another with -cache)", opts.Cache, err)
	}
	lock, err := os.OpenFile(filepath.Join(opts.Cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return image{}, fmt.Errorf("lab: cache %s unreadable: %w (fix its permissions or give another with -cache)", opts.Cache, err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return image{}, fmt.Errorf("lab: lock cache %s: %w", opts.Cache, err)
	}
	// The stamp of a build is the digest of every script: a change to any
	// of them rebuilds.
	h := sha256.New()
	err = fs.WalkDir(images, "images", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := images.ReadFile(p)
		fmt.Fprintf(h, "%s %d\n", p, len(raw))
		h.Write(raw)
		return err
	})
	if err != nil {
		return image{}, fmt.Errorf("lab: %w", err)
	}
	stamp := hex.EncodeToString(h.Sum(nil)[:8])
	// Each build goes to its own folder, NAME-STAMP: a lab still running
	// on an older base keeps its lower layer until it is down.
	build := func(name, script string) (string, error) {
		out := filepath.Join(opts.Cache, name+"-"+stamp)
		if got, err := os.ReadFile(filepath.Join(out, ".stamp")); err == nil && strings.TrimSpace(string(got)) == stamp {
			return out, nil
		}
		_ = os.RemoveAll(out)
		tmp, err := os.MkdirTemp("", "boxswap-lab-images-")
		if err != nil {
			return "", fmt.Errorf("lab: %w", err)
		}
		defer os.RemoveAll(tmp)
		if err := os.CopyFS(tmp, images); err != nil {
			return "", fmt.Errorf("lab: %w", err)
		}
		fmt.Fprintf(os.Stderr, "lab: building %s (once; cached afterwards)\n", out)
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(tmp, "images", script), out)
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		cmd.Env = append(cleanEnv(), "HOME=/root")
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("lab: building %s: %w:\n%s", out, err, tailOf(log.String(), 3000))
		}
		if err := os.WriteFile(filepath.Join(out, ".stamp"), []byte(stamp+"\n"), 0o644); err != nil {
			return "", fmt.Errorf("lab: %w", err)
		}
		// The upgrade's packages are pinned (images/debian-trixie.pins):
		// what the mirror no longer had is said once, here.
		if diffs, _ := filepath.Glob(filepath.Join(out, "*.pins-diff")); len(diffs) > 0 {
			for _, d := range diffs {
				raw, _ := os.ReadFile(d)
				fmt.Fprintf(os.Stderr, "lab: %s: the mirror did not serve every pinned version; what changed (%s):\n%s", out, d, raw)
			}
		}
		pruneImages(opts.Cache, name, out)
		return out, nil
	}
	switch opts.OS {
	case OSFedora:
		out, err := build("fedora", "fedora.sh")
		if err != nil {
			return image{}, err
		}
		return image{rootfs: filepath.Join(out, "base", "rootfs"),
			serve: "/fedora/=" + filepath.Join(out, "repos") + ",/wheels/=" + filepath.Join(out, "base", "wheels")}, nil
	default:
		out, err := build("debian", "debian.sh")
		if err != nil {
			return image{}, err
		}
		return image{rootfs: filepath.Join(out, "rootfs"),
			serve: "/debian/=" + filepath.Join(out, "repo") + ",/wheels/=" + filepath.Join(out, "wheels") +
				",/thirdparty/=" + filepath.Join(out, "thirdparty")}, nil
	}
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// sdPrepare writes the keys and client files, and provisions each box's
// overlay the first time the directory is used.
func (l *Lab) sdPrepare(img image, spec osSpec) error {
	if err := os.MkdirAll(filepath.Join(l.Dir, "bin"), 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	exe := l.opts.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("lab: find own binary: %w", err)
		}
	}
	if err := copyFile(exe, filepath.Join(l.Dir, "bin", "lab"), 0o755); err != nil {
		return fmt.Errorf("lab: copy lab binary: %w", err)
	}
	op, specs, err := l.sdKeys()
	if err != nil {
		return err
	}
	var known []string
	for _, b := range BoxNames {
		s := specs[b]
		for _, k := range s.HostKeys {
			pub, err := publicOf(k)
			if err != nil {
				return err
			}
			known = append(known, knownHost(s.Host, 22, pub))
		}
	}
	for _, b := range BoxNames {
		s := specs[b]
		s.KnownHosts = known
		s.AuthorizedKeys = []string{op.Public, specs[s.Peer].UserPub}
		if err := l.mountBox(b, img.rootfs); err != nil {
			return err
		}
		if err := sdProvision(filepath.Join(l.boxDir(b), "root"), s, spec, l.Dir); err != nil {
			return fmt.Errorf("lab: provision %s: %w", b, err)
		}
	}
	if err := writeFile(filepath.Join(l.Dir, "known_hosts"), []byte(strings.Join(known, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	yaml := sdBoxesYAML(spec)
	if err := writeFile(l.Config(), []byte(yaml), 0o644); err != nil {
		return err
	}
	return l.saveInfo()
}

func (l *Lab) saveInfo() error {
	raw, err := json.MarshalIndent(l.Info, "", "  ")
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	st, _ := json.Marshal(labState{BootTimeout: l.opts.BootTimeout, RebootDelay: l.opts.RebootDelay})
	if err := writeFile(filepath.Join(l.Dir, "state.json"), st, 0o644); err != nil {
		return err
	}
	return writeFile(filepath.Join(l.Dir, "lab.json"), append(raw, '\n'), 0o644)
}

// sdKeys makes (or reads back) the operator key and each box's spec.
func (l *Lab) sdKeys() (keyPair, map[string]*boxSpec, error) {
	specs := map[string]*boxSpec{}
	for _, b := range BoxNames {
		var s boxSpec
		if raw, err := os.ReadFile(filepath.Join(l.boxDir(b), "box.json")); err == nil && json.Unmarshal(raw, &s) == nil && s.Name == b {
			specs[b] = &s
		}
	}
	if len(specs) == 2 {
		raw, err := os.ReadFile(filepath.Join(l.Dir, "id_ed25519"))
		pub, err2 := os.ReadFile(filepath.Join(l.Dir, "id_ed25519.pub"))
		if err == nil && err2 == nil {
			return keyPair{Private: string(raw), Public: strings.TrimSpace(string(pub))}, specs, nil
		}
	}
	op, err := newEd25519("operator@lab")
	if err != nil {
		return op, nil, err
	}
	fn := map[string]string{Thurst: "production", Thermals: "development"}
	peer := map[string]string{Thurst: Thermals, Thermals: Thurst}
	for _, b := range BoxNames {
		ed, err := newEd25519("root@" + b)
		if err != nil {
			return op, nil, err
		}
		ec, err := newECDSA("root@" + b)
		if err != nil {
			return op, nil, err
		}
		user, err := newEd25519("root@" + b)
		if err != nil {
			return op, nil, err
		}
		s := &boxSpec{Name: b, Host: sdHosts[b], Port: 22, Function: fn[b], Peer: peer[b], PeerHost: sdHosts[peer[b]],
			Files: l.opts.Files, FileSize: l.opts.FileSize,
			HostKeys: map[string]string{"ssh_host_ed25519_key": ed.Private, "ssh_host_ecdsa_key": ec.Private},
			UserKey:  user.Private, UserPub: user.Public}
		if err := os.MkdirAll(l.boxDir(b), 0o755); err != nil {
			return op, nil, fmt.Errorf("lab: %w", err)
		}
		raw, _ := json.MarshalIndent(s, "", "  ")
		if err := writeFile(filepath.Join(l.boxDir(b), "box.json"), raw, 0o600); err != nil {
			return op, nil, err
		}
		specs[b] = s
	}
	if err := writeFile(filepath.Join(l.Dir, "id_ed25519"), []byte(op.Private), 0o600); err != nil {
		return op, nil, err
	}
	return op, specs, writeFile(filepath.Join(l.Dir, "id_ed25519.pub"), []byte(op.Public+"\n"), 0o644)
}

// mountBox mounts box's overlay (the cached rootfs under DIR/BOX/upper)
// on DIR/BOX/root, in this machine's mount namespace; Down unmounts it.
func (l *Lab) mountBox(box, lower string) error {
	bd := l.boxDir(box)
	root := filepath.Join(bd, "root")
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.MkdirAll(filepath.Join(bd, d), 0o755); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	if mounted(root) {
		return nil
	}
	opts := "lowerdir=" + lower + ",upperdir=" + filepath.Join(bd, "upper") + ",workdir=" + filepath.Join(bd, "work")
	if err := unix.Mount("overlay", root, "overlay", 0, opts); err != nil {
		return fmt.Errorf("lab: %s: mount overlay on %s: %w", box, root, err)
	}
	return nil
}

func mounted(path string) bool {
	raw, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) > 4 && unescapeMount(f[4]) == path {
			return true
		}
	}
	return false
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// ip runs ip(8) with args (each names its namespace with -n).
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("lab: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func netnsExists(name string) bool {
	_, err := os.Stat("/run/netns/" + name)
	return err == nil
}

// netUp makes the lab's namespace with its bridge and one namespace per
// box linked to it by a veth pair. Every command names a namespace the
// lab made: nothing touches this machine's own network.
func (l *Lab) netUp() error {
	ns := l.Info.Netns
	if !netnsExists(ns) {
		cmds := [][]string{
			{"netns", "add", ns},
			{"-n", ns, "link", "set", "lo", "up"},
			{"-n", ns, "link", "add", "br0", "type", "bridge"},
			{"-n", ns, "link", "set", "br0", "up"},
			{"-n", ns, "addr", "add", BridgeAddr + sdPrefix, "dev", "br0"},
			{"-n", ns, "addr", "add", MirrorAddr + sdPrefix, "dev", "br0"},
			{"-n", ns, "addr", "add", UsersAddr + sdPrefix, "dev", "br0"},
		}
		for _, c := range cmds {
			if err := ip(c...); err != nil {
				return err
			}
		}
	}
	for _, b := range BoxNames {
		bns := l.Info.Boxes[b].Netns
		if netnsExists(bns) {
			continue
		}
		veth := "v-" + b
		cmds := [][]string{
			{"netns", "add", bns},
			{"-n", bns, "link", "set", "lo", "up"},
			{"-n", ns, "link", "add", veth, "type", "veth", "peer", "name", "host0", "netns", bns},
			{"-n", ns, "link", "set", veth, "master", "br0", "up"},
		}
		for _, c := range cmds {
			if err := ip(c...); err != nil {
				return err
			}
		}
	}
	return nil
}

// powerOn resets box's interface as a power cycle would: no address but
// its own (an alias held before a crash is gone), link up.
func (l *Lab) powerOn(box string) error {
	bns := l.Info.Boxes[box].Netns
	for _, c := range [][]string{
		{"-n", bns, "addr", "flush", "dev", "host0"},
		{"-n", bns, "addr", "add", sdHosts[box] + sdPrefix, "dev", "host0"},
		{"-n", bns, "link", "set", "host0", "up"},
	} {
		if err := ip(c...); err != nil {
			return err
		}
	}
	return nil
}

// netDown deletes the lab's namespaces (their links go with them).
func (l *Lab) netDown() error {
	var errs []error
	for _, n := range []string{l.Info.Boxes[Thurst].Netns, l.Info.Boxes[Thermals].Netns, l.Info.Netns} {
		if n != "" && netnsExists(n) {
			if err := ip("netns", "del", n); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// DialContext dials addr from the lab's network namespace (the operator's
// side); on the namespace kind, from this machine's.
func (l *Lab) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return l.dialFrom(ctx, nil, network, addr)
}

// dialFrom dials addr from the lab's network namespace, from local (nil:
// the operator's address, the route's).
func (l *Lab) dialFrom(ctx context.Context, local net.Addr, network, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: local}
	if !l.real() {
		return d.DialContext(ctx, network, addr)
	}
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		// A socket belongs to the namespace of the thread that made it.
		// The thread is never unlocked, so it dies with this goroutine
		// instead of going back to the pool in the lab's namespace.
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+l.Info.Netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- res{nil, fmt.Errorf("lab: open netns %s: %w", l.Info.Netns, err)}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			ch <- res{nil, fmt.Errorf("lab: enter netns %s: %w", l.Info.Netns, err)}
			return
		}
		c, err := d.DialContext(ctx, network, addr)
		ch <- res{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// Command returns cmd to run on the operator's side: in the lab's network
// namespace on the systemd kind.
func (l *Lab) Command(name string, args ...string) *exec.Cmd {
	if !l.real() {
		return exec.Command(name, args...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", l.Info.Netns, name}, args...)...)
}

// startRole starts one of the lab's own long-running processes (the
// mirror, a box's supervisor) detached, with its PID in DIR[/BOX]/ROLE.pid.
func (l *Lab) startRole(box, role string, args ...string) error {
	d := l.Dir
	if box != "" {
		d = l.boxDir(box)
	}
	logf, err := os.OpenFile(filepath.Join(d, role+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	defer logf.Close()
	argv := append([]string{childMarker, role, l.Dir}, args...)
	cmd := exec.Command(filepath.Join(l.Dir, "bin", "lab"), argv...)
	if role == "sd-serve" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", l.Info.Netns, filepath.Join(l.Dir, "bin", "lab")}, argv...)...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = cleanEnv()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("lab: start %s: %w", role, err)
	}
	if err := writeFile(filepath.Join(d, role+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

// pidOf reads DIR[/BOX]/ROLE.pid and returns the PID if that process is
// alive and is this lab's process of that role; else 0.
func (l *Lab) pidOf(box, role string) int {
	d := l.Dir
	if box != "" {
		d = l.boxDir(box)
	}
	raw, err := os.ReadFile(filepath.Join(d, role+".pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 1 || !l.alive(pid, role) {
		return 0
	}
	return pid
}

// nspawnPID returns the PID of box's running systemd-nspawn, checked
// against its command line, or 0.
func (l *Lab) nspawnPID(box string) int {
	raw, err := os.ReadFile(filepath.Join(l.boxDir(box), "nspawn.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 1 {
		return 0
	}
	cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cl, []byte(filepath.Join(l.boxDir(box), "root"))) || !bytes.HasSuffix(bytes.SplitN(cl, []byte{0}, 2)[0], []byte("systemd-nspawn")) {
		return 0
	}
	return pid
}

// initPID returns the PID (as this machine sees it) of box's systemd, or 0.
func (l *Lab) initPID(box string) int {
	ns := l.nspawnPID(box)
	if ns == 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", ns, ns))
	if err != nil {
		return 0
	}
	for _, f := range strings.Fields(string(raw)) {
		if pid, err := strconv.Atoi(f); err == nil {
			return pid
		}
	}
	return 0
}

// sdRun runs cmd inside box with nsenter (no SSH, so it works while the
// operator's link is cut).
func (l *Lab) sdRun(box, cmd string) (string, int, error) {
	pid := l.initPID(box)
	if pid == 0 {
		return "", -1, fmt.Errorf("lab: %s: not running", box)
	}
	c := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-a", "/bin/sh", "-c", cmd)
	c.Env = append(cleanEnv(), "HOME=/root")
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String() + errb.String(), ee.ExitCode(), nil
	}
	if err != nil {
		return out.String(), -1, fmt.Errorf("lab: %s: %s: %w", box, cmd, err)
	}
	return out.String(), 0, nil
}

// sdWaitBoot waits until box answers SSH with a boot id other than old,
// and systemd has finished starting it (running or degraded).
func (l *Lab) sdWaitBoot(ctx context.Context, box, old string) (string, error) {
	deadline := time.Now().Add(l.opts.BootTimeout)
	var last error
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("lab: %s: wait for boot: %w", box, err)
		}
		out, code, err := l.sshRun(box, "cat /proc/sys/kernel/random/boot_id; systemctl is-system-running --wait")
		f := strings.Fields(out)
		if err == nil && len(f) == 2 && f[0] != old && (code == 0 || f[1] == "degraded") {
			return f[0], nil
		}
		if err != nil {
			last = err
		} else {
			last = fmt.Errorf("answered %q, exit %d", strings.TrimSpace(out), code)
		}
		if why, err := os.ReadFile(filepath.Join(l.boxDir(box), "failed")); err == nil {
			return "", fmt.Errorf("lab: %s: failed to boot: %s; see %s", box, strings.TrimSpace(string(why)),
				filepath.Join(l.boxDir(box), "console.log"))
		}
		if l.pidOf(box, "sd-supervise") == 0 {
			return "", fmt.Errorf("lab: %s: its supervisor is gone; see %s", box, filepath.Join(l.boxDir(box), "sd-supervise.log"))
		}
		time.Sleep(250 * time.Millisecond)
	}
	return "", fmt.Errorf("lab: %s: not booted after %s (last: %v); see %s", box, l.opts.BootTimeout, last,
		filepath.Join(l.boxDir(box), "console.log"))
}

// sdCut drops the operator's path to box: the box's established
// connections to the operator are reset, and a blackhole route in the
// box's namespace makes new ones hang; the mirror and the other box stay
// reachable. It returns how many sockets it reset.
func (l *Lab) sdCut(box string) (int, error) {
	bns := l.Info.Boxes[box].Netns
	// Reset first: the resets must still reach the operator.
	out, err := exec.Command("ip", "netns", "exec", bns, "ss", "-K", "-t", "-n", "dst", BridgeAddr).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("lab: %s: ss -K: %w: %s", box, err, out)
	}
	if err := ip("-n", bns, "route", "replace", "blackhole", BridgeAddr+"/32"); err != nil {
		return 0, err
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, BridgeAddr) {
			n++
		}
	}
	return n, nil
}

// Heal ends a Cut of box.
func (l *Lab) Heal(box string) error {
	if err := checkBox(box); err != nil {
		return err
	}
	if !l.real() {
		return nil
	}
	bns := l.Info.Boxes[box].Netns
	out, err := exec.Command("ip", "-n", bns, "route", "del", "blackhole", BridgeAddr+"/32").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "No such process") {
		return fmt.Errorf("lab: %s: heal: %w: %s", box, err, out)
	}
	return nil
}

// sdDown stops the boxes (SIGKILL to their systemd: Down is no shutdown),
// the supervisors and the mirror, unmounts the overlays and deletes the
// namespaces. It works from the files under DIR alone, so it also cleans
// up after the lab itself crashed.
func (l *Lab) sdDown() error {
	var errs []error
	for _, b := range BoxNames {
		_ = writeFile(filepath.Join(l.boxDir(b), "stopping"), []byte("down\n"), 0o644)
		sup := l.pidOf(b, "sd-supervise")
		if sup > 0 {
			_ = syscall.Kill(sup, syscall.SIGTERM)
		}
		if p := l.initPID(b); p > 0 {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		if sup > 0 {
			if err := l.waitGone(b, sup, "sd-supervise", 20*time.Second); err != nil {
				_ = syscall.Kill(sup, syscall.SIGKILL)
				errs = append(errs, err)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for l.nspawnPID(b) > 0 && time.Now().Before(deadline) {
			if p := l.initPID(b); p > 0 {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if p := l.nspawnPID(b); p > 0 {
			errs = append(errs, fmt.Errorf("lab: %s: systemd-nspawn (pid %d) still running", b, p))
		}
		_ = os.Remove(filepath.Join(l.boxDir(b), "stopping"))
		_ = os.Remove(filepath.Join(l.boxDir(b), "sd-supervise.pid"))
		_ = os.Remove(filepath.Join(l.boxDir(b), "nspawn.pid"))
	}
	if p := l.pidOf("", "sd-serve"); p > 0 {
		_ = syscall.Kill(p, syscall.SIGTERM)
		if err := l.waitGone("mirror", p, "sd-serve", 5*time.Second); err != nil {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	_ = os.Remove(filepath.Join(l.Dir, "sd-serve.pid"))
	for _, b := range BoxNames {
		root := filepath.Join(l.boxDir(b), "root")
		for mounted(root) {
			if err := unix.Unmount(root, 0); err != nil {
				if err2 := unix.Unmount(root, unix.MNT_DETACH); err2 != nil {
					errs = append(errs, fmt.Errorf("lab: %s: unmount %s: %w", b, root, err))
					break
				}
			}
		}
	}
	if err := l.netDown(); err != nil {
		errs = append(errs, err)
	}
	if m := l.Mounts(); len(m) > 0 {
		errs = append(errs, fmt.Errorf("lab: mounts left under %s: %s", l.Dir, strings.Join(m, ", ")))
	}
	return errors.Join(errs...)
}

// sdProcs lists the lab's processes: mirror, supervisors, nspawn and
// every process in the boxes.
func (l *Lab) sdProcs() []int {
	var out []int
	if p := l.pidOf("", "sd-serve"); p > 0 {
		out = append(out, p)
	}
	for _, b := range BoxNames {
		if p := l.pidOf(b, "sd-supervise"); p > 0 {
			out = append(out, p)
		}
		if p := l.nspawnPID(b); p > 0 {
			out = append(out, p)
		}
		if p := l.initPID(b); p > 0 {
			out = append(out, p)
			for _, c := range l.boxProcs(p) {
				out = append(out, c.pid)
			}
		}
	}
	return out
}

// sdCrash kills box's systemd at once (every process of the box dies with
// it: no shutdown, no sync), and keeps the box down until Start. The
// machine's page cache survives: this is not a power loss at the block
// level.
func (l *Lab) sdCrash(box string) error {
	if err := writeFile(filepath.Join(l.boxDir(box), "crashed"), []byte("crashed\n"), 0o644); err != nil {
		return err
	}
	p := l.initPID(box)
	if p == 0 {
		return nil
	}
	if err := syscall.Kill(p, syscall.SIGKILL); err != nil {
		return fmt.Errorf("lab: %s: crash: %w", box, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if l.nspawnPID(box) == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("lab: %s: crash: systemd-nspawn did not end", box)
}

func (l *Lab) sdStart(box string) error {
	if l.pidOf(box, "sd-supervise") == 0 {
		return fmt.Errorf("lab: %s: the lab is down: bring it up with: lab up -dir %s", box, l.Dir)
	}
	for _, f := range []string{"crashed", "failed"} {
		if err := os.Remove(filepath.Join(l.boxDir(box), f)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("lab: %s: start: %w", box, err)
		}
	}
	_, err := l.sdWaitBoot(context.Background(), box, "")
	return err
}

func (l *Lab) sdReboot(box string) error {
	old, err := l.BootID(box)
	if err != nil {
		return err
	}
	if _, _, err := l.sdRun(box, "systemctl reboot"); err != nil {
		return err
	}
	_, err = l.sdWaitBoot(context.Background(), box, old)
	return err
}

// HTTPClient returns a client that dials as the site's users do (on real
// boxes from UsersAddr, off the operator's path), on a fresh connection
// each time: whoever holds the address now answers.
func (l *Lab) HTTPClient(timeout time.Duration) *http.Client {
	var local net.Addr
	if l.real() {
		local = &net.TCPAddr{IP: net.ParseIP(UsersAddr)}
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return l.dialFrom(ctx, local, network, addr)
	}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true, DialContext: dial}}
}

// MachineLock is the file every real-box lab run locks for its whole
// life: two labs of booted boxes on a 2-CPU machine would slow each other
// into timeouts.
const MachineLock = "/run/boxswap-lab.lock"

// LockMachine takes the machine-wide lab lock, waiting for another lab
// to end; the returned func releases it.
func LockMachine() (func(), error) {
	f, err := os.OpenFile(MachineLock, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lab: lock %s: %w", MachineLock, err)
	}
	return func() { f.Close() }, nil
}

// Holds says whether box's interface holds addr, read from the box's
// network namespace on this machine: a kernel fact, not the box's word.
func (l *Lab) Holds(box, addr string) (bool, error) {
	if err := checkBox(box); err != nil {
		return false, err
	}
	out, err := exec.Command("ip", "-n", l.Info.Boxes[box].Netns, "-4", "-o", "addr", "show", "dev", "host0").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("lab: %s: ip addr: %w: %s", box, err, out)
	}
	return strings.Contains(string(out), " "+addr+sdPrefix+" "), nil
}

// pruneImages removes the older builds of name from the cache, but for
// keep, the keepBuilds newest others (a checkout of another commit, a
// colleague's branch, goes on using its own without rebuilding it) and any
// still under a mounted overlay (a lab that is up).
func pruneImages(cache, name, keep string) {
	old, _ := filepath.Glob(filepath.Join(cache, name+"-*"))
	raw, _ := os.ReadFile("/proc/self/mountinfo")
	stamped := func(d string) time.Time {
		st, err := os.Stat(filepath.Join(d, ".stamp"))
		if err != nil {
			return time.Time{}
		}
		return st.ModTime()
	}
	sort.Slice(old, func(i, j int) bool { return stamped(old[i]).After(stamped(old[j])) })
	kept := 0
	for _, d := range old {
		if d == keep || bytes.Contains(raw, []byte("lowerdir="+d+"/")) {
			continue
		}
		if kept < keepBuilds && !stamped(d).IsZero() {
			kept++
			continue
		}
		_ = os.RemoveAll(d)
	}
}

// keepBuilds is how many builds of a base pruneImages keeps beside the
// one in use.
const keepBuilds = 2
