package boxes

// One reader per boxes.yaml section: each reads its keys, checks each value
// on its own and applies the defaults. validate.go compares values.

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"boxswap/internal/safefile"
)

func (l *loader) newer(root *yaml.Node) bool {
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value != "version" || v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" {
			continue
		}
		var n int64
		if err := v.Decode(&n); err != nil || n > Version {
			l.add(v.Line, "upgrade boxswap", "version %s: this file was written for a newer boxswap (this one reads version %d)", clip(v.Value), Version)
			return true
		}
	}
	return false
}

// version checks the format version; newer ones are caught by newer.
func (l *loader) version(m *mapping) {
	v, ok := l.integer(m, "version", fmt.Sprintf("add version: %d at the top", Version))
	if ok && v < Version {
		l.add(l.line("version"), fmt.Sprintf("write version: %d", Version), "version %d is not a boxes.yaml version", v)
	}
}

func (l *loader) boxes(top *mapping) []Box {
	items := l.seq(top, "boxes", "add boxes: a list of the two boxes (name, host, function)", "write boxes as a list of two mappings, each with name, host and function")
	var out []Box
	for i, it := range items {
		path := fmt.Sprintf("boxes[%d]", i)
		l.pos[path] = it.Line
		m := l.mapping(it, path, "name", "host", "port", "user", "function")
		if m.node == nil {
			if it.Kind != yaml.MappingNode && it.Kind != yaml.AliasNode && it.ShortTag() == "!!null" {
				l.add(it.Line, "give each box name, host and function", "%s: box is empty", path)
			}
			continue
		}
		b := Box{Line: it.Line, Port: 22, User: "root"}
		if v, ok := l.str(m, "name", "add name: the box's short name, like thurst", checkBoxName); ok {
			b.Name = v
		}
		if v, ok := l.str(m, "host", "add host: the box's own DNS name or address", checkHost); ok {
			b.Host = v
		}
		if n := l.scalar(m, "port", "", "write a whole number without quotes", "!!int"); n != nil {
			// Port's own reading, as yaml.v3 would decode it: decimal.
			if v, err := ParsePort(n.Value); err != nil {
				l.add(n.Line, "write a TCP port between 1 and 65535 in decimal, usually 22", "%s: %v", m.path, err)
			} else {
				b.Port = v
			}
		}
		if v, ok := l.str(m, "user", "", checkUser); ok && v != "" {
			b.User = v
		}
		if v, ok := l.str(m, "function", "add function: production or development", checkFunction); ok {
			b.Function = v
		}
		out = append(out, b)
		l.boxPaths = append(l.boxPaths, path)
	}
	switch {
	case len(items) > 2:
		l.add(items[2].Line, "keep the two boxes of the pair: one production, one development",
			"boxes: %d boxes declared; boxswap drives exactly two", len(items))
	case len(items) < 2 && top.get("boxes") != nil && top.get("boxes").Kind == yaml.SequenceNode:
		l.add(l.line("boxes"), "declare the two boxes of the pair: one production, one development",
			"boxes: %d declared; boxswap drives exactly two", len(items))
	}
	return out
}

func (l *loader) functions(top *mapping) map[string]Function {
	out := map[string]Function{}
	if top.get("functions") == nil {
		l.missing(top, "functions", "add functions: with production and development, each with alias, address_unit and settings")
		return out
	}
	fm := l.mapping(top.vals["functions"], "functions", Production, Development)
	if fm.node == nil {
		return out
	}
	for _, name := range []string{Production, Development} {
		if fm.get(name) == nil {
			l.missing(fm, name, "add functions."+name+": with alias, address_unit and settings")
			continue
		}
		m := l.mapping(fm.vals[name], fm.at(name), "alias", "address_unit", "address", "interface", "settings")
		if m.node == nil {
			continue
		}
		var f Function
		if v, ok := l.str(m, "alias", "add alias: the DNS name of the "+name+" address", checkHost); ok {
			f.Alias = v
		}
		if v, ok := l.str(m, "address_unit", "add address_unit: the systemd unit holding the "+name+" address", checkUnit); ok {
			f.AddressUnit = v
		}
		f.Address, _ = l.str(m, "address", "", checkAddress)
		f.Interface, _ = l.str(m, "interface", "", checkInterface)
		need := "add settings: the settings_file lines that differ for " + name + ", like server_name, ssl_certificate and ssl_certificate_key"
		if m.get("settings") == nil {
			l.missing(m, "settings", need)
		} else {
			f.Settings = l.settings(m, "settings", need)
		}
		out[name] = f
	}
	l.sameSettings(fm, out)
	return out
}

// settings reads a function's settings lines in order: Python names with
// text, true/false or whole-number values.
func (l *loader) settings(fm *mapping, key, need string) Settings {
	m := l.mapping(fm.vals[key], fm.at(key))
	if m.node == nil {
		return nil
	}
	out := Settings{}
	for i := 0; i+1 < len(m.node.Content); i += 2 {
		k := m.node.Content[i]
		if m.vals[k.Value] != m.node.Content[i+1] {
			continue // not a plain key, or a duplicate: reported
		}
		l.settingKeys[m.path] = append(l.settingKeys[m.path], Setting{Key: k.Value, Line: k.Line})
		if msg, hint := checkPythonName(k.Value); msg != "" {
			l.add(k.Line, hint, "%s: key %q %s", m.path, clip(k.Value), msg)
			continue
		}
		if v, ok := l.settingValue(m, k.Value); ok {
			out = append(out, Setting{Key: k.Value, Value: v, Line: k.Line})
		}
	}
	if len(out) == 0 && len(m.vals) == 0 {
		l.missing(fm, key, need)
	}
	return out
}

// settingValue reads one settings value: text (one line), true or false,
// or a whole number.
func (l *loader) settingValue(m *mapping, key string) (any, bool) {
	n := l.node(m.vals[key], m.at(key))
	if n == nil {
		return nil, false
	}
	hint := `write text (quoted if it looks like a number: "29"), true or false, or a whole number`
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str":
			return n.Value, l.check(n, m.at(key), n.Value, checkSetting)
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err == nil {
				return b, true
			}
		case "!!int":
			var v int64
			if err := n.Decode(&v); err == nil {
				return v, true
			}
			l.add(n.Line, "write a smaller whole number", "%s: %s is out of range", m.at(key), clip(n.Value))
			return nil, false
		}
	}
	l.add(n.Line, hint, "%s: must be text, true or false, or a whole number, not %s", m.at(key), kindName(n))
	return nil, false
}

// sameSettings checks that both functions set the same keys: a switch
// rewrites each line, in both directions.
func (l *loader) sameSettings(fm *mapping, fs map[string]Function) {
	// The keys as written, bad values included: those are reported once.
	keys := func(fn string) Settings { return l.settingKeys[join(fm.at(fn), "settings")] }
	if fs[Production].Settings == nil || fs[Development].Settings == nil {
		return
	}
	for _, pair := range [][2]string{{Production, Development}, {Development, Production}} {
		has, lacks := keys(pair[0]), keys(pair[1])
		for _, kv := range has {
			if msg, _ := checkPythonName(kv.Key); msg != "" {
				continue // reported
			}
			if _, ok := lacks.Get(kv.Key); !ok {
				path := join(fm.at(pair[1]), "settings")
				l.add(l.line(path), fmt.Sprintf("set %s for %s too: each function sets the same lines, so that a switch rewrites every one of them", kv.Key, pair[1]),
					"%s: missing %s (functions.%s.settings sets it on line %d)", path, kv.Key, pair[0], kv.Line)
			}
		}
	}
}

func (l *loader) app(top *mapping) App {
	var a App
	if top.get("app") == nil {
		l.missing(top, "app", "add app: with checkout, settings_file and install")
		return a
	}
	m := l.mapping(top.vals["app"], "app", "checkout", "settings_file", "install", "services", "containers", "check")
	if m.node == nil {
		return a
	}
	a.Checkout, _ = l.str(m, "checkout", "add checkout: the nbhosting git checkout, like /root/nbhosting", checkRemotePath)
	a.SettingsFile, _ = l.str(m, "settings_file", "add settings_file: the sitesettings.py path", checkRemotePath)
	a.Install, _ = l.str(m, "install", "add install: the command that installs the app, like cd /root/nbhosting && ./install.sh", checkCommand)
	a.Services, a.Writers = l.services(m)
	a.Containers = ContainersNone
	if v, ok := l.str(m, "containers", "", checkContainers); ok && v != "" {
		a.Containers = v
	}
	a.Check = l.appCheck(m)
	return a
}

func (l *loader) data(top *mapping) Data {
	d := Data{MaxDelete: 1000, MinSourceFraction: DefaultMinSourceFraction, RoomMargin: DefaultRoomMargin}
	if top.get("data") == nil {
		l.missing(top, "data", "add data: with root and folders")
		return d
	}
	m := l.mapping(top.vals["data"], "data", "root", "folders", "files", "backup_suffix", "max_delete",
		"exclude", "min_source_fraction", "room_margin")
	if m.node == nil {
		return d
	}
	d.Root, _ = l.str(m, "root", "add root: the folder holding the user data, like /nbhosting", checkRemotePath)
	d.Folders = l.strList(m, "folders", "add folders: the data folders to move, like [students, raw]", "[students, raw]", checkFolder)
	d.Files = l.strList(m, "files", "", "[db.sqlite3]", checkDataFile)
	d.Exclude = l.strList(m, "exclude", "", `["*.tmp", ".ipynb_checkpoints/"]`, checkExclude)
	d.BackupSuffix, _ = l.str(m, "backup_suffix", "", checkSuffix)
	if v, ok := l.integer(m, "max_delete", ""); ok {
		if v < 0 {
			l.add(l.line(m.at("max_delete")), "write 0 to refuse any deletion, or a positive limit", "data.max_delete: %d is negative", v)
		} else {
			d.MaxDelete = v
		}
	}
	if v, ok := l.fraction(m, "min_source_fraction"); ok {
		d.MinSourceFraction = v
	}
	if v, ok := l.byteSize(m, "room_margin"); ok {
		d.RoomMargin = v
	}
	return d
}

func (l *loader) upgrade(top *mapping) Upgrade {
	u := Upgrade{Method: MethodDnf, RebootTimeout: 60 * time.Minute, MinFreeDisk: 5 << 30}
	if top.get("upgrade") == nil {
		l.missing(top, "upgrade", "add upgrade: with from and to, the current and target releases")
		return u
	}
	m := l.mapping(top.vals["upgrade"], "upgrade", "method", "from", "to", "suites", "keep_sources", "reboot_timeout", "devel_branch", "devel_ref", "min_free_disk",
		"options", "pip", "python", "pip_command")
	if m.node == nil {
		return u
	}
	if v, ok := l.str(m, "method", "", checkMethod); ok && v != "" {
		u.Method = v
	} else if !ok && m.get("method") != nil {
		u.Method = "" // refused, and reported: nothing depends on it
	}
	for _, kv := range []struct {
		key string
		dst *int
	}{{"from", &u.From}, {"to", &u.To}} {
		if v, ok := l.integer(m, kv.key, "add "+kv.key+": a release number, like 29 for Fedora or 13 for Debian"); ok {
			if v <= 0 {
				l.add(l.line(m.at(kv.key)), "write a release number, like 29 for Fedora or 13 for Debian", "upgrade.%s: release %d is not positive", kv.key, v)
			} else {
				*kv.dst = v
			}
		}
	}
	u.Suites = l.suites(m)
	u.KeepSources = l.strList(m, "keep_sources", "", "[nodesource.sources, docker.list]", checkSourceFile)
	if v, ok := l.duration(m, "reboot_timeout", "60m"); ok {
		if v == 0 {
			l.add(l.line(m.at("reboot_timeout")), "write how long a reboot into the new release may take, like 60m", "upgrade.reboot_timeout: must be above zero")
		} else {
			u.RebootTimeout = v
		}
	}
	u.DevelBranch, _ = l.str(m, "devel_branch", "", checkBranch)
	if u.DevelBranch == "" && u.To > 0 {
		u.DevelBranch = "f" + strconv.Itoa(u.To)
		if s := u.Suites[u.To]; u.Method == MethodApt && s != "" {
			u.DevelBranch = s
		}
	}
	u.DevelRef, _ = l.str(m, "devel_ref", "", checkRef)
	if v, ok := l.byteSize(m, "min_free_disk"); ok {
		u.MinFreeDisk = v
	}
	u.Options = l.strList(m, "options", "", "[--allowerasing]", checkOption)
	u.Pip = PipReinstall
	if v, ok := l.str(m, "pip", "", checkPip); ok && v != "" {
		u.Pip = v
	}
	u.Python, _ = l.str(m, "python", "", checkCommand)
	u.PipCommand, _ = l.str(m, "pip_command", "", checkCommand)
	return u
}

// suites reads upgrade.suites, a mapping of release numbers to suite
// names. A refused name is kept as "", so that validate does not report
// its release missing too.
func (l *loader) suites(m *mapping) map[int]string {
	const example = "suites: {12: bookworm, 13: trixie}"
	n := l.node(m.get("suites"), m.at("suites"))
	if n == nil {
		if m.vals["suites"] != nil && m.vals["suites"].Kind != yaml.AliasNode {
			return map[int]string{} // written empty: validate says what is missing
		}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		l.add(n.Line, "write "+example, "upgrade.suites: must be a mapping of release numbers to suite names, not %s", kindName(n))
		return nil
	}
	out := map[int]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var r int64
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!int" || k.Decode(&r) != nil || r <= 0 || int64(int(r)) != r {
			l.add(k.Line, "key each suite by its release number: "+example, "upgrade.suites: key %s is not a release number", kindName(k))
			continue
		}
		path := fmt.Sprintf("upgrade.suites.%d", r)
		if _, dup := out[int(r)]; dup {
			l.add(k.Line, fmt.Sprintf("keep one of them; the first is on line %d", l.line(path)), "upgrade.suites: release %d is named twice", r)
			continue
		}
		l.pos[path] = k.Line
		out[int(r)] = ""
		if v = l.node(v, path); v == nil {
			continue
		}
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
			l.add(v.Line, "write the suite's name: "+example, "%s: must be a suite name, not %s", path, kindName(v))
			continue
		}
		l.pos[path] = v.Line
		if l.check(v, path, v.Value, checkSuite) {
			out[int(r)] = v.Value
		}
	}
	return out
}

func (l *loader) cleanup(top *mapping) Cleanup {
	var c Cleanup
	m := l.mapping(top.vals["cleanup"], "cleanup", "containers")
	c.Containers, _ = l.boolean(m, "containers")
	return c
}

func (l *loader) ssh(top *mapping) SSH {
	s := SSH{ConnectTimeout: 15 * time.Second, Keepalive: 15 * time.Second}
	m := l.mapping(top.vals["ssh"], "ssh", "known_hosts", "identity", "config", "connect_timeout", "keepalive")
	for _, kv := range []struct {
		key, def string
		dst      *string
		in       safefile.Input
	}{
		{"known_hosts", "~/.ssh/known_hosts", &s.KnownHosts, KnownHostsInput},
		{"identity", "", &s.Identity, SmallInput},
		{"config", "", &s.Config, SmallInput},
	} {
		v, ok := l.str(m, kv.key, "", checkLocalPath)
		if !ok && m.get(kv.key) != nil {
			continue // refused, and reported
		}
		if v == "" {
			v = kv.def
		}
		if v == "" {
			continue
		}
		p, err := l.localPath(v)
		if err != nil {
			l.add(l.line(m.at(kv.key)), "write an absolute path", "ssh.%s: %v", kv.key, err)
			continue
		}
		l.localFile(m, kv.key, v, p, kv.in)
		*kv.dst = p
	}
	if v, ok := l.duration(m, "connect_timeout", "15s"); ok {
		if v == 0 {
			l.add(l.line(m.at("connect_timeout")), "write how long to wait for a box to answer, like 15s", "ssh.connect_timeout: must be above zero")
		} else {
			s.ConnectTimeout = v
		}
	}
	if v, ok := l.duration(m, "keepalive", "15s"); ok {
		s.Keepalive = v
	}
	return s
}

// homeDir is $HOME, or when it is not set (a cron job, systemd-run) the
// home folder the user database gives, as ssh itself does.
func homeDir() string {
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return home
	}
	if u, err := user.Current(); err == nil {
		return u.HomeDir
	}
	return ""
}

// localPath expands a leading ~/ and resolves a relative path against the
// file's folder, so a lab's boxes.yaml can say known_hosts: known_hosts.
func (l *loader) localPath(p string) (string, error) {
	if p == "~" || strings.HasPrefix(p, "~/") {
		home := homeDir()
		if home == "" {
			return "", fmt.Errorf("cannot expand ~ in %q: no home folder ($HOME is not set, and the user database has none)", clip(p))
		}
		p = filepath.Join(home, p[1:])
	} else if strings.HasPrefix(p, "~") {
		return "", fmt.Errorf("%q: only ~/ is expanded, not ~user", clip(p))
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(l.dir, p)
	}
	return filepath.Clean(p), nil
}

func (l *loader) hooks(top *mapping, boxes []Box) map[Event]Hooks {
	targets := []string{Production, Development}
	for _, b := range boxes {
		if b.Name != "" {
			targets = append(targets, b.Name)
		}
	}
	out := map[Event]Hooks{}
	hm := l.mapping(top.vals["hooks"], "hooks", words(Events)...)
	for _, e := range Events {
		ev := string(e)
		if hm.vals[ev] == nil {
			continue
		}
		em := l.mapping(hm.vals[ev], hm.at(ev), "before", "after", "at")
		var h Hooks
		names := map[string]int{}
		for _, when := range []string{"before", "after", "at"} {
			hint := "write " + when + " as a list of hooks, each with name, on and run"
			if when == "at" {
				hint = "write at as a list of hooks, each with name, on, run and point"
			}
			items := l.seq(em, when, "", hint)
			list := []Hook{}
			for i, it := range items {
				path := fmt.Sprintf("%s[%d]", em.at(when), i)
				l.pos[path] = it.Line
				if k, ok := l.hook(it, path, e, when == "at", targets, names); ok {
					list = append(list, k)
				}
			}
			switch when {
			case "before":
				h.Before = list
			case "after":
				h.After = list
			default:
				h.At = list
			}
		}
		out[e] = h
	}
	return out
}

// hook reads one hook of event; names holds the lines of the names seen in
// that event (unique across its before, after and at lists). An at hook
// has a point.
func (l *loader) hook(it *yaml.Node, path string, ev Event, at bool, targets []string, names map[string]int) (Hook, bool) {
	keys := []string{"name", "on", "run", "check", "undo"}
	if at {
		keys = append(keys, "point")
	}
	m := l.mapping(it, path, keys...)
	if m.node == nil {
		if it.Kind == yaml.ScalarNode && it.ShortTag() == "!!null" {
			l.add(it.Line, "give each hook name, on and run", "%s: hook is empty", path)
		}
		return Hook{}, false
	}
	k := Hook{Line: it.Line}
	if v, ok := l.str(m, "name", "add name: a short word naming the hook", checkHookName); ok {
		if first, dup := names[v]; dup {
			l.add(l.line(m.at("name")), fmt.Sprintf("rename one; the first is on line %d", first), "%s: two hooks named %q in %s", path, v, ev)
		} else {
			names[v] = l.line(m.at("name"))
			k.Name = v
		}
	}
	if v, ok := l.str(m, "on", "add on: production, development or a box name", checkOn); ok {
		if contains(targets, v) {
			k.On = v
		} else {
			l.add(l.line(m.at("on")), "write on: "+strings.Join(targets, ", on: "),
				"%s.on: %q is not production, development or a box name (%s)", path, v, strings.Join(targets[2:], ", "))
		}
	}
	k.Run, _ = l.str(m, "run", "add run: the command to run", checkCommand)
	k.Check, _ = l.str(m, "check", "", checkCommand)
	k.Undo, _ = l.str(m, "undo", "", checkCommand)
	if at {
		k.Point, _ = l.str(m, "point", "add point: "+strings.Join(NamedPoints, ", ")+" (redirect and switch-back), or before:STEP or after:STEP with a step ID of "+string(ev), checkPoint)
		k.PointLine = l.line(m.at("point"))
		if contains(NamedPoints, k.Point) && !slices.Contains(MoveEvents, ev) {
			l.add(k.PointLine, "use before:STEP or after:STEP with a step ID of "+string(ev)+" (boxswap plan lists them)",
				"%s.point: %s is a point of redirect and switch-back, not of %s", path, k.Point, ev)
		}
	}
	return k, true
}

// webhookURL reads where a webhook's URL is: url (no secret in plain
// sight, written as it is, so that its record can be cut to scheme and
// host), url_env or url_file; exactly one of them.
func (l *loader) webhookURL(m *mapping, w *Webhook) {
	var given []string
	for _, k := range []string{"url", "url_env", "url_file"} {
		if m.vals[k] != nil {
			given = append(given, k)
		}
	}
	switch {
	case len(given) == 0:
		l.add(m.line(l), "add url: the http:// or https:// address to POST the notices to (or url_env: VAR, url_file: FILE)", "%s: missing url", m.path)
		return
	case len(given) > 1:
		l.add(l.line(m.at(given[1])), "keep one of them", "%s: %s and %s both give the URL", m.path, given[0], given[1])
		return
	}
	switch given[0] {
	case "url":
		u, ok := l.str(m, "url", "add url: the http:// or https:// address to POST the notices to", checkWebhookURL)
		if !ok {
			return
		}
		if msg := urlSecret(u); msg != "" {
			// Not quoted back: it is a secret.
			l.add(l.line(m.at("url")), "boxes.yaml is recorded with each attempt: give the URL in url_env: VAR or url_file: FILE", "%s.url: %s (not shown)", m.path, msg)
			return
		}
		if !strings.Contains(l.text, u) {
			l.add(l.line(m.at("url")), "write the URL as it is, on one line, without escapes", "%s.url: is written with escapes or over several lines", m.path)
			return
		}
		w.URL = u
	case "url_env":
		w.URLEnv, _ = l.str(m, "url_env", "add url_env: the variable that holds the URL", func(s string) (string, string) {
			if !envName.MatchString(s) || len(s) > 255 {
				return "is not a variable name", "write the variable's name alone, like BOXSWAP_WEBHOOK"
			}
			return "", ""
		})
	case "url_file":
		v, ok := l.str(m, "url_file", "add url_file: the file that holds the URL", checkLocalPath)
		if !ok {
			return
		}
		p, err := l.localPath(v)
		if err != nil {
			l.add(l.line(m.at("url_file")), "write an absolute path", "%s.url_file: %v", m.path, err)
			return
		}
		l.localFile(m, "url_file", v, p, SecretInput)
		w.URLFile = p
	}
}

// notify reads the webhooks. An absent or empty list sends nothing.
func (l *loader) notify(top *mapping) []Webhook {
	items := l.seq(top, "notify", "", "write notify as a list of webhooks, each with url (and optionally events, timeout)")
	var out []Webhook
	for i, it := range items {
		path := fmt.Sprintf("notify[%d]", i)
		l.pos[path] = it.Line
		m := l.mapping(it, path, "url", "url_env", "url_file", "events", "timeout")
		if m.node == nil {
			if it.Kind == yaml.ScalarNode && it.ShortTag() == "!!null" {
				l.add(it.Line, "give each webhook a url", "%s: webhook is empty", path)
			}
			continue
		}
		w := Webhook{Line: it.Line, Timeout: 5 * time.Second}
		l.webhookURL(m, &w)
		for _, e := range l.strList(m, "events", "", "[start, end, failure, gate]", checkNotifyEvent) {
			w.Events = append(w.Events, NotifyKind(e))
		}
		if m.get("events") == nil {
			w.Events = append([]NotifyKind(nil), NotifyEvents...)
		}
		if v, ok := l.duration(m, "timeout", "5s"); ok {
			if v == 0 {
				l.add(l.line(m.at("timeout")), "write how long one notification may take, like 5s", "%s.timeout: must be above zero", path)
			} else {
				w.Timeout = v
			}
		}
		out = append(out, w)
	}
	return out
}
