package boxes

import (
	"fmt"
	"time"
)

// Function names: a box holds at most one of them at a time.
const (
	Production  = "production"
	Development = "development"
)

// Config is a loaded and validated boxes.yaml. Paths in it (SSH files) are
// absolute: Load expands ~ and resolves them against the file's folder.
type Config struct {
	// File is the path boxes.yaml was loaded from; errors name it.
	File string `yaml:"-"`
	// Source is the text it was loaded from, recorded with each transition
	// so that its steps are undone as they were planned.
	Source    string              `yaml:"-"`
	Version   int                 `yaml:"version"`
	Boxes     []Box               `yaml:"boxes"`
	Functions map[string]Function `yaml:"functions"` // keys: production, development
	App       App                 `yaml:"app"`
	Data      Data                `yaml:"data"`
	Upgrade   Upgrade             `yaml:"upgrade"`
	Cleanup   Cleanup             `yaml:"cleanup"`
	SSH       SSH                 `yaml:"ssh"`
	// Hooks by event name (upgrade-dev, redirect, upgrade-prod, switch-back, epilogue).
	Hooks map[Event]Hooks `yaml:"hooks"`
	// Notify lists the webhooks told of each transition's start, end,
	// failure and gate; none by default.
	Notify []Webhook `yaml:"notify"`
	// State, when its URL is set, keeps the state on etcd instead of the
	// bbolt file beside boxes.yaml.
	State State `yaml:"state"`
}

// NotifyKind is a kind of notification a webhook may ask for
// (Webhook.Events); fsm's Notice kinds are these.
type NotifyKind string

// Notification kinds.
const (
	NotifyStart   NotifyKind = "start"
	NotifyEnd     NotifyKind = "end"
	NotifyFailure NotifyKind = "failure"
	NotifyGate    NotifyKind = "gate"
)

// NotifyEvents lists the notification kinds, in the order they are
// documented.
var NotifyEvents = []NotifyKind{NotifyStart, NotifyEnd, NotifyFailure, NotifyGate}

// Event names a transition of the machine, as hooks name it; fsm's events
// are these.
type Event string

// The transitions' events.
const (
	EventUpgradeDev  Event = "upgrade-dev"
	EventRedirect    Event = "redirect"
	EventUpgradeProd Event = "upgrade-prod"
	EventSwitchBack  Event = "switch-back"
	EventEpilogue    Event = "epilogue"
)

// Events lists the transitions' events in cycle order.
var Events = []Event{EventUpgradeDev, EventRedirect, EventUpgradeProd, EventSwitchBack, EventEpilogue}

// Webhook is an HTTP(S) endpoint that receives a JSON notice by POST. A
// failing webhook never stops an upgrade. Its URL is a secret (a chat's
// webhook URL is its password): it is given in boxes.yaml (url, without
// credentials or secret parameters, then recorded as scheme and host
// only), or through the environment (url_env) or a file (url_file), read
// when a notice is sent (Target). Messages name it by Name.
type Webhook struct {
	URL     string        `yaml:"url"`      // http:// or https://
	URLEnv  string        `yaml:"url_env"`  // a variable holding the URL
	URLFile string        `yaml:"url_file"` // a file holding it, first line
	Events  []NotifyKind  `yaml:"events"`   // default: all of NotifyEvents
	Timeout time.Duration `yaml:"timeout"`  // default 5s
	Line    int           `yaml:"-"`
}

// Wants reports whether the webhook asked for notices of kind.
func (w Webhook) Wants(kind NotifyKind) bool {
	for _, e := range w.Events {
		if e == kind {
			return true
		}
	}
	return false
}

// Box is one server of the pair, reached by its own name (never the alias).
type Box struct {
	Name     string `yaml:"name"`
	Host     string `yaml:"host"`
	Port     Port   `yaml:"port"` // default 22; decimal (Port)
	User     string `yaml:"user"` // default root
	Function string `yaml:"function"`
	// Line is where the box is declared in File, for error messages.
	Line int `yaml:"-"`
}

// Function is what a box serves by holding an address.
type Function struct {
	// Alias is the DNS name of the function's address; it moves with the
	// address, so no box may be reached through it.
	Alias       string `yaml:"alias"`
	AddressUnit string `yaml:"address_unit"`
	// Address is the IP address the unit adds (optional): when set, each
	// move verifies it on the boxes (see steps.ReleaseAddress and
	// steps.VerifyAddress). Interface is where it lives; "" finds it.
	Address   string `yaml:"address"`
	Interface string `yaml:"interface"`
	// Settings are the settings_file lines for this function, in the
	// order boxes.yaml gives them: any Python names with typed values.
	Settings Settings `yaml:"settings"`
}

// Setting is one line of the settings file a function sets: Key = Value,
// Value written as the Python literal of its type.
type Setting struct {
	Key string
	// Value is a string, a bool or an int64 (YAML text, true/false, a
	// whole number).
	Value any
	Line  int // where boxes.yaml sets it
}

// Settings are the lines of sitesettings.py that differ per function:
// nbhosting's server_name, ssl_certificate and ssl_certificate_key, and
// any others (production_box: true).
type Settings []Setting

// Get returns the value of key.
func (s Settings) Get(key string) (any, bool) {
	for _, kv := range s {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// Keys are the settings' names, in order.
func (s Settings) Keys() []string {
	keys := make([]string, len(s))
	for i, kv := range s {
		keys[i] = kv.Key
	}
	return keys
}

// SettingsKeys are the names of the settings lines both functions set, in
// production's order (Load checks that they set the same ones).
func (c *Config) SettingsKeys() []string { return c.Functions[Production].Settings.Keys() }

// App is the nbhosting checkout on each box.
type App struct {
	Checkout     string   `yaml:"checkout"`
	SettingsFile string   `yaml:"settings_file"`
	Install      string   `yaml:"install"`  // a shell command line, run as given
	Services     []string `yaml:"services"` // every app service, in order
	// Writers are the services of Services that write user data (all of
	// them unless an entry says writes: false): stopped on both boxes for
	// the final sync, started on the new box after it.
	Writers []string `yaml:"-"`
	// Containers is how the users' containers run (ContainersDocker,
	// ContainersPodman or ContainersNone): those running on the old box
	// are stopped before the final sync.
	Containers string `yaml:"containers"`
	// Check says how to know the app serves; nil: not checked.
	Check *Check `yaml:"check"`
}

// Values of app.containers.
const (
	ContainersNone   = "none"
	ContainersDocker = "docker"
	ContainersPodman = "podman"
)

// Check is app.check: a page of the production site, fetched over HTTPS
// with the production name (Host and SNI), that must answer Status (and
// hold Text) within Timeout. The certificate is verified against CA (a
// file on the boxes) or the boxes' system CAs, unless Insecure.
type Check struct {
	Path     string        `yaml:"path"`    // default /
	Status   int           `yaml:"status"`  // default 200
	Text     string        `yaml:"text"`    // optional
	Timeout  time.Duration `yaml:"timeout"` // default 30s
	CA       string        `yaml:"ca"`
	Insecure bool          `yaml:"insecure"`
	Line     int           `yaml:"-"`
}

// Data is the user data moved with production.
type Data struct {
	Root    string   `yaml:"root"`
	Folders []string `yaml:"folders"`
	// Files are single files under Root (db.sqlite3), each synced by its
	// own step and backed up in the epilogue like the folders.
	Files        []string `yaml:"files"`
	BackupSuffix string   `yaml:"backup_suffix"` // "" disables the epilogue's rename
	MaxDelete    int      `yaml:"max_delete"`    // a sync deleting more is refused
	// Exclude are rsync patterns (--exclude) left out of every sync pass
	// and of its deletion count: what is excluded is neither copied nor
	// deleted on the destination.
	Exclude []string `yaml:"exclude"`
	// MinSourceFraction is the least a sync's source may hold relative to
	// its destination before its first pass (entries of a folder, bytes of
	// a file): below it the sync is refused as a probable wrong direction.
	// 0 keeps only the empty-source guard; default DefaultMinSourceFraction.
	MinSourceFraction float64 `yaml:"min_source_fraction"`
	// RoomMargin is what must stay free on the destination's data
	// filesystem after a sync's first pass; default DefaultRoomMargin.
	RoomMargin ByteSize `yaml:"room_margin"`
}

// Defaults of the data guards.
const (
	DefaultMinSourceFraction = 0.5
	DefaultRoomMargin        = ByteSize(1 << 30)
)

// Upgrade methods (Upgrade.Method).
const (
	// MethodDnf is Fedora's offline upgrade: dnf system-upgrade download,
	// then dnf system-upgrade reboot.
	MethodDnf = "dnf-system-upgrade"
	// MethodApt is Debian's and Ubuntu's: the apt sources moved to the new
	// suite, apt-get full-upgrade, then a reboot.
	MethodApt = "apt"
)

// UpgradeMethods lists the values of upgrade.method, the default first.
var UpgradeMethods = []string{MethodDnf, MethodApt}

// Upgrade is the release change of this cycle.
type Upgrade struct {
	Method        string        `yaml:"method"` // one of UpgradeMethods; default MethodDnf
	From          int           `yaml:"from"`
	To            int           `yaml:"to"`
	RebootTimeout time.Duration `yaml:"reboot_timeout"` // default 60m
	DevelBranch   string        `yaml:"devel_branch"`   // default "f<To>" (dnf), the To suite (apt)
	// DevelRef is where upgrade-dev creates the devel branch (after a
	// fetch): a ref or commit; default "origin/<DevelBranch>".
	DevelRef    string   `yaml:"devel_ref"`
	MinFreeDisk ByteSize `yaml:"min_free_disk"` // on / and data.root; default 5GiB
	// Suites names the suite (codename) of each release for the apt
	// method; it holds From and To. Nil for dnf.
	Suites map[int]string `yaml:"suites"`
	// KeepSources are the apt source files (names in
	// /etc/apt/sources.list.d) left enabled during the upgrade although
	// they name no suite of From: third-party repositories known to serve
	// the new release. Nil for dnf.
	KeepSources []string `yaml:"keep_sources"`
	// Options are extra arguments of the package download (dnf
	// system-upgrade download) or full-upgrade (apt-get), each passed as
	// one quoted word: [--allowerasing].
	Options []string `yaml:"options"`
	// Pip is PipReinstall (default) or PipSkip: what the upgrade does with
	// the packages pip installed under /usr/local when python's minor
	// version changes.
	Pip string `yaml:"pip"`
	// Python and PipCommand are the operator's command lines for python
	// (default python3) and its pip (default "PYTHON -m pip"), run as given.
	Python     string `yaml:"python"`
	PipCommand string `yaml:"pip_command"`
}

// Values of upgrade.pip.
const (
	PipReinstall = "reinstall"
	PipSkip      = "skip"
)

// Cleanup says what the epilogue may remove.
type Cleanup struct {
	// Containers removes containers and images on a box that lost its
	// development function. Off by default.
	Containers bool `yaml:"containers"`
}

// SSH says how the operator's machine reaches the boxes.
type SSH struct {
	KnownHosts     string        `yaml:"known_hosts"`     // default ~/.ssh/known_hosts
	Identity       string        `yaml:"identity"`        // optional; the agent is tried first
	Config         string        `yaml:"config"`          // optional ~/.ssh/config
	ConnectTimeout time.Duration `yaml:"connect_timeout"` // default 15s
	Keepalive      time.Duration `yaml:"keepalive"`       // default 15s; 0 disables
}

// Hooks are operator commands run before or after a transition's own
// steps (after its approval gate), or at a point inside it.
type Hooks struct {
	Before []Hook `yaml:"before"`
	After  []Hook `yaml:"after"`
	// At hooks run at their Point.
	At []Hook `yaml:"at"`
}

// Hook is one operator command. On is production, development or a box
// name; functions are resolved where the hook runs: as they stand when the
// transition starts for a hook before its take-address step, as they
// stand at its end after it (after redirect's take, production is the
// new box).
type Hook struct {
	Name  string `yaml:"name"`
	On    string `yaml:"on"`
	Run   string `yaml:"run"`   // shell command line, run as given
	Check string `yaml:"check"` // optional: exit 0 means already done
	Undo  string `yaml:"undo"`  // optional: run by rollback
	// Point is where an At hook runs: one of NamedPoints (redirect and
	// switch-back only), or "before:STEP" / "after:STEP" with STEP a step
	// ID of the transition, with or without its "EVENT/" prefix (fsm
	// checks that it exists). Empty for Before and After hooks.
	Point     string `yaml:"point"`
	Line      int    `yaml:"-"`
	PointLine int    `yaml:"-"`
}

// The named hook points of a move (redirect, switch-back); fsm maps each
// to the steps it runs before or after.
const (
	PointBeforeWindow     = "before-window"      // before the first writer stops
	PointAfterFinalSync   = "after-final-sync"   // after the last final sync
	PointAfterTakeAddress = "after-take-address" // the new box holds the address
	PointAfterWindow      = "after-window"       // production checked on the new box
)

// NamedPoints lists the named hook points in the order a move reaches them.
var NamedPoints = []string{PointBeforeWindow, PointAfterFinalSync, PointAfterTakeAddress, PointAfterWindow}

// MoveEvents are the transitions that move production, where the named
// points are.
var MoveEvents = []Event{EventRedirect, EventSwitchBack}

// ByteSize is a size written as 10GiB, 500MB, 1024 (bytes).
type ByteSize int64

// Short names release n in one word, as operators do: f29 (dnf), trixie
// (apt, from suites), else the bare number.
func (u Upgrade) Short(n int) string {
	if s := u.Suites[n]; u.Method == MethodApt && s != "" {
		return s
	}
	if u.Method == MethodApt {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("f%d", n)
}
