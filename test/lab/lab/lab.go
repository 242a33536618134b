package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Box names and their fixed loopback addresses.
const (
	Thurst   = "thurst"
	Thermals = "thermals"

	ThurstHost   = "127.0.0.11"
	ThermalsHost = "127.0.0.12"
	// ProductionAddr and DevelopmentAddr are the functions' addresses, held
	// by whichever box runs the matching address unit.
	ProductionAddr  = "127.0.1.1"
	DevelopmentAddr = "127.0.1.2"

	// Release is the Fedora release the boxes start on.
	Release = 27
)

// BoxNames lists the lab's boxes, production first.
var BoxNames = []string{Thurst, Thermals}

// ErrNotRoot is returned by Up when the lab cannot be built because the
// process is not root; ErrNotLinux where the OS has no namespaces.
var (
	ErrNotRoot  = errors.New("lab: needs root (namespaces, overlayfs and chroot): run it as root, e.g. with sudo")
	ErrNotLinux = errors.New("lab: needs Linux (namespaces and overlayfs)")
	ErrNoSSHD   = errors.New("lab: no /usr/sbin/sshd: install it with apt-get install -y openssh-server rsync")
)

// Options shape a lab. The zero value is usable.
type Options struct {
	// Port is the sshd port of both boxes; 0 picks a free one.
	Port int
	// HTTPPort is the port of the function addresses; 0 picks a free one.
	HTTPPort int
	// Files is how many files each data folder (students, raw) gets per box;
	// 0 means 100. FileSize is their size in bytes; 0 means 1024.
	Files    int
	FileSize int
	// RebootDelay is how long a rebooting box stays down; 0 means 1s.
	RebootDelay time.Duration
	// BootTimeout bounds how long Up, Start and Reboot wait for sshd; 0 means 60s.
	BootTimeout time.Duration
	// Exe is the binary that runs the boxes (it must call Child first); ""
	// means this process's own executable. It is copied to DIR/bin/lab.
	Exe string
	// Kind is KindSystemd (real boxes: systemd-nspawn, network namespaces,
	// a real release upgrade) or KindNS ("": the fast namespace lab).
	Kind string
	// OS is the systemd kind's upgrade path: OSDebian (12 to 13 with apt,
	// the default) or OSFedora (27 to 29 with dnf system-upgrade).
	OS string
	// Cache holds the systemd kind's base rootfs and repositories, built
	// once; "" means DefaultCache.
	Cache string
}

// Lab kinds and OS paths.
const (
	KindNS      = "ns"
	KindSystemd = "systemd"
	OSDebian    = "debian"
	OSFedora    = "fedora"
)

func (o Options) withDefaults() Options {
	if o.Files == 0 {
		o.Files = 100
	}
	if o.FileSize == 0 {
		o.FileSize = 1024
	}
	if o.RebootDelay == 0 {
		o.RebootDelay = time.Second
	}
	if o.BootTimeout == 0 {
		o.BootTimeout = 60 * time.Second
	}
	return o
}

// Info is DIR/lab.json: how a client reaches the lab.
type Info struct {
	Boxes          map[string]BoxInfo `json:"boxes"`
	ProductionURL  string             `json:"production_url"`
	DevelopmentURL string             `json:"development_url"`
	Identity       string             `json:"identity"`
	KnownHosts     string             `json:"known_hosts"`

	// The systemd kind: Kind is "systemd" (absent on the namespace
	// kind), OS its upgrade path from release From to To, Netns the
	// namespace the operator's side runs in (ip netns exec NETNS …), the
	// functions' addresses as bare IPs, Image the base rootfs.
	Kind               string `json:"kind,omitempty"`
	OS                 string `json:"os,omitempty"`
	Netns              string `json:"netns,omitempty"`
	ProductionAddress  string `json:"production_address,omitempty"`
	DevelopmentAddress string `json:"development_address,omitempty"`
	From               int    `json:"from,omitempty"`
	To                 int    `json:"to,omitempty"`
	Image              string `json:"image,omitempty"`
}

// BoxInfo is one box in lab.json. Disk is the box's overlay upper dir: its
// writes, readable from this machine.
type BoxInfo struct {
	Host string `json:"host"`
	Port int    `json:"port"`
	Disk string `json:"disk"`
	// Netns is the box's own network namespace (systemd kind).
	Netns string `json:"netns,omitempty"`
}

// Lab is a running lab under Dir.
type Lab struct {
	Dir  string
	Info Info
	opts Options
}

// Config returns the path of the lab's boxes.yaml.
func (l *Lab) Config() string { return filepath.Join(l.Dir, "boxes.yaml") }

func (l *Lab) boxDir(box string) string { return filepath.Join(l.Dir, box) }

func checkBox(box string) error {
	for _, b := range BoxNames {
		if b == box {
			return nil
		}
	}
	return fmt.Errorf("lab: no box %q: the boxes are thurst and thermals", box)
}

// Open attaches to the lab under dir that Up started, from any process.
func Open(dir string) (*Lab, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "lab.json"))
	if err != nil {
		return nil, fmt.Errorf("lab: open %s: %w (is there a lab? start one with: lab up -dir %s)", dir, err, dir)
	}
	l := &Lab{Dir: dir}
	if err := json.Unmarshal(b, &l.Info); err != nil {
		return nil, fmt.Errorf("lab: %s/lab.json: %w", dir, err)
	}
	var st labState
	if b, err := os.ReadFile(filepath.Join(dir, "state.json")); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	l.opts = Options{BootTimeout: st.BootTimeout, RebootDelay: st.RebootDelay}.withDefaults()
	return l, nil
}

// labState is what Open needs beyond lab.json.
type labState struct {
	BootTimeout time.Duration `json:"boot_timeout"`
	RebootDelay time.Duration `json:"reboot_delay"`
	HTTPPort    int           `json:"http_port"`
}
