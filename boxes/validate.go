package boxes

import (
	"fmt"

	"boxswap/internal/text"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
)

// The checks below keep every value that is not a command a plain word for
// a remote shell: Quote leaves it as it is, and it cannot start an option.
// Commands (app.install, hooks) are the operator's shell by design.

// shellSafe is the character set Quote leaves unquoted.
const shellSafe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,"

func onlyChars(s, set string) bool {
	for _, r := range s {
		if !strings.ContainsRune(set, r) {
			return false
		}
	}
	return true
}

var (
	boxNameRe    = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	userRe       = regexp.MustCompile(`^[a-z_][a-z0-9_-]*$`)
	unitRe       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9:_.@-]*$`)
	hookNameRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	pythonNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	stepIDRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
	labelRe      = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?$`)
	suiteRe      = regexp.MustCompile(`^[a-z][a-z0-9]{0,31}$`)
	// sourceRe is what apt reads in sources.list.d: its own file name
	// rule, with the two extensions it knows.
	sourceRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*\.(list|sources)$`)
)

func checkMethod(s string) (string, string) {
	if !contains(UpgradeMethods, s) {
		return "is not an upgrade method", "write method: " + strings.Join(UpgradeMethods, " or method: ")
	}
	return "", ""
}

func checkPip(s string) (string, string) {
	if s != PipReinstall && s != PipSkip {
		return "is not what to do with pip packages", "write pip: " + PipReinstall + " (the default) or pip: " + PipSkip
	}
	return "", ""
}

// checkOption accepts one word of the package manager's command line;
// it reaches the shell quoted.
func checkOption(s string) (string, string) {
	if s == "" || len(s) > 4096 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || hidden(r) }) {
		return "is not one command-line word", "write each option as its own list item, like options: [--allowerasing]"
	}
	return "", ""
}

// checkSuite accepts a codename: its -updates, -security... suites are
// found from it, and it is a plain word in the rewrite's expressions.
func checkSuite(s string) (string, string) {
	if !suiteRe.MatchString(s) {
		return "is not a suite codename", "write the release's codename alone, in lowercase, like trixie; its -updates, -security and -backports suites follow"
	}
	return "", ""
}

func checkSourceFile(s string) (string, string) {
	if len(s) > 255 || !sourceRe.MatchString(s) {
		return "is not an apt source file name", "write a file name of /etc/apt/sources.list.d ending in .list or .sources, like nodesource.sources"
	}
	return "", ""
}

func checkBoxName(s string) (string, string) {
	hint := "name the box itself with lowercase letters, digits and -, like thurst"
	if s == Production || s == Development {
		return "is a function, not a box name", hint
	}
	if len(s) > 63 || !boxNameRe.MatchString(s) {
		return "is not a box name", hint
	}
	return "", ""
}

// checkHost accepts a DNS name (or an ssh_config alias) or an IP address.
func checkHost(s string) (string, string) {
	hint := "write a DNS name or an IP address, like thurst.inria.fr"
	if strings.HasPrefix(s, "-") || !onlyChars(s, shellSafe) {
		return "is not a host name or IP address", hint
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return "", ""
	}
	name := strings.TrimSuffix(s, ".")
	if name == "" || len(name) > 253 {
		return "is not a host name or IP address", hint
	}
	if numericName(name) {
		// 127.000.000.001, 127.1, 2130706433, 0x7f.1: inet_aton reads
		// these as addresses (leading zeros as octal), Go does not.
		return "is an IPv4 address in a form that ssh and boxswap read differently", "write it as four decimal numbers without leading zeros, like 127.0.0.1"
	}
	for _, label := range strings.Split(name, ".") {
		if len(label) > 63 || !labelRe.MatchString(label) {
			return "is not a host name or IP address", hint
		}
	}
	return "", ""
}

// numericName reports a name whose last label is a number (decimal, or
// 0x hex): no DNS name ends so (top-level domains are not numeric), but
// the C resolver reads it as an IPv4 address in one of inet_aton's forms.
func numericName(name string) bool {
	last := name[strings.LastIndex(name, ".")+1:]
	if h, ok := strings.CutPrefix(strings.ToLower(last), "0x"); ok {
		last = h
		return last == "" || onlyChars(last, "0123456789abcdef")
	}
	return last != "" && onlyChars(last, "0123456789")
}

func checkUser(s string) (string, string) {
	if len(s) > 32 || !userRe.MatchString(s) {
		return "is not a user name", "write a login name like root"
	}
	return "", ""
}

func checkFunction(s string) (string, string) {
	if s != Production && s != Development {
		return "is not production or development", "write function: production or function: development"
	}
	return "", ""
}

func checkUnit(s string) (string, string) {
	if len(s) > 255 || !unitRe.MatchString(s) {
		return "is not a systemd unit name", "write a unit name like nbhosting-addr or nbh-uwsgi.service"
	}
	return "", ""
}

// checkSetting keeps a settings value on one line: it replaces one line of
// sitesettings.py. Quoting it for Python and the shell is the step's job.
func checkSetting(s string) (string, string) {
	if strings.ContainsFunc(s, hidden) {
		return "holds a newline or another control character", "write the value on one line"
	}
	if len(s) > 4096 {
		return "is longer than 4096 bytes", "write a value of one settings line"
	}
	return "", ""
}

// maxPath is PATH_MAX, for the paths on a box and on the operator's machine.
const maxPath = 4096

// checkRemotePath accepts an absolute, clean path on a box.
func checkRemotePath(s string) (string, string) {
	switch {
	case len(s) > maxPath:
		return "is longer than a path can be (4096 bytes)", "write the path of a file or folder on the box"
	case !strings.HasPrefix(s, "/"):
		return "is not an absolute path", "write a path starting with /"
	case !onlyChars(s, shellSafe):
		return "holds characters a shell would interpret", "use a path made of letters, digits and - _ . / : @ % + = ,"
	case path.Clean(s) != s:
		return "is not a clean path", "write it as " + path.Clean(s) + " (no //, /./, /.. or trailing /)"
	case s == "/":
		return "is the root folder", "write the folder itself, like /nbhosting"
	}
	return "", ""
}

// checkFolder accepts a plain name inside data.root.
func checkFolder(s string) (string, string) {
	hint := "write a folder name inside data.root, like students"
	switch {
	case s == "":
		// rsync would be given data.root itself: the whole data tree.
		return "is empty", hint
	case len(s) > 255:
		return "is longer than a file name can be (255 bytes)", hint
	case s == "." || s == ".." || strings.HasPrefix(s, "-"):
		return "is not a folder name", hint
	case strings.Contains(s, "/"):
		return "is a path, not a folder name", hint
	case !onlyChars(s, shellSafe):
		return "holds characters a shell would interpret", hint
	}
	return "", ""
}

// checkDataFile accepts a plain file name inside data.root.
func checkDataFile(s string) (string, string) {
	if msg, _ := checkFolder(s); msg != "" {
		return strings.ReplaceAll(msg, "folder name", "file name"), "write a file name inside data.root, like db.sqlite3"
	}
	return "", ""
}

// checkExclude accepts an rsync exclude pattern given to --exclude as
// one word: on one line, without the rule prefixes ("- ", "+ ") or the
// "!" that clears the list, which would change what the word means.
func checkExclude(s string) (string, string) {
	hint := `write an rsync pattern, like "*.tmp" or ".ipynb_checkpoints/"`
	switch {
	case strings.TrimSpace(s) == "":
		return "is empty", hint
	case strings.ContainsFunc(s, hidden):
		return "holds a newline or another control character", hint
	case s == "!" || strings.HasPrefix(s, "- ") || strings.HasPrefix(s, "+ "):
		return "is an rsync filter rule, not a pattern", hint
	case len(s) > 1024:
		return "is longer than 1024 bytes", hint
	}
	return "", ""
}

func checkSuffix(s string) (string, string) {
	hint := "write a suffix like .prod, or \"\" to keep no backup"
	switch {
	case len(s) > 255:
		return "is longer than a file name can be (255 bytes)", hint
	case strings.Contains(s, "/"):
		return "holds a /", hint
	case strings.Trim(s, ".") == "":
		return "is only dots", hint
	case !onlyChars(s, shellSafe):
		return "holds characters a shell would interpret", hint
	}
	return "", ""
}

// checkBranch follows git check-ref-format, within the shell-safe set.
func checkBranch(s string) (string, string) {
	hint := "write a git branch name like f29"
	if len(s) > 255 {
		return "is longer than a branch name can be (255 bytes)", hint
	}
	bad := strings.HasPrefix(s, "-") || strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") ||
		strings.HasSuffix(s, ".") || strings.HasSuffix(s, ".lock") || strings.Contains(s, "..") ||
		strings.Contains(s, "//") || strings.Contains(s, "/.") || strings.HasPrefix(s, ".") ||
		strings.Contains(s, ":") || s == "@" || !onlyChars(s, shellSafe)
	if bad {
		return "is not a git branch name", hint
	}
	return "", ""
}

// checkRef accepts a git ref or commit name (origin/f29, v1.2, a hash):
// the branch rules, which also keep it one shell-safe word.
func checkRef(s string) (string, string) {
	if why, _ := checkBranch(s); why != "" {
		return strings.Replace(why, "branch name", "ref", 1), "write a git ref like origin/f29, a tag or a commit hash"
	}
	return "", ""
}

func checkCommand(s string) (string, string) {
	if strings.ContainsRune(s, 0) {
		return "holds a NUL byte", "remove the \\0 escape"
	}
	// Newlines and tabs make multi-line scripts; other control characters
	// (ESC, bidi overrides) would rewrite the operator's terminal or hide
	// what runs when plan and log print the command.
	if strings.ContainsFunc(s, func(r rune) bool { return r != '\n' && r != '\t' && hidden(r) }) {
		return "holds a control character (an escape sequence, a bidi override)", "write the command in plain text; \\n and tabs are fine"
	}
	return "", ""
}

// hidden is text.Hidden: what would act on a terminal rather than show.
func hidden(r rune) bool { return text.Hidden(r) }

func checkLocalPath(s string) (string, string) {
	if strings.ContainsFunc(s, hidden) {
		return "holds a newline or another control character", "write the path on one line"
	}
	if len(s) > maxPath {
		return "is longer than a path can be (4096 bytes)", "write the path of a file on this machine"
	}
	return "", ""
}

func checkHookName(s string) (string, string) {
	if len(s) > 64 || !hookNameRe.MatchString(s) {
		return "is not a hook name", "write a short word of letters, digits and . _ -, like notify-users"
	}
	return "", ""
}

func checkOn(s string) (string, string) {
	if s == Production || s == Development || boxNameRe.MatchString(s) && len(s) <= 63 {
		return "", ""
	}
	return "is not production, development or a box name", "write on: production, on: development or on: a box name"
}

// sameHost compares host names as DNS does: case-insensitively, with or
// without the final dot; addresses by value, in canonical form.
func sameHost(a, b string) bool { return canonicalHost(a) == canonicalHost(b) }

// canonicalHost spells a host one way: a name in lowercase without its
// final dot; an address as netip prints it once an IPv4-mapped IPv6
// address is made IPv4 (::ffff:127.0.0.1 is 127.0.0.1, and IPv6 is
// compressed, in lowercase); localhost, ::1 and 127.0.0.1 are all this
// machine.
func canonicalHost(h string) string {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if a, err := netip.ParseAddr(h); err == nil {
		a = a.Unmap()
		if a == netip.IPv6Loopback() {
			a = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		return a.String()
	}
	switch h {
	case "localhost", "ip6-localhost":
		return "127.0.0.1"
	}
	return h
}

// sameMachine refuses two boxes that ssh would reach at the same address
// once ~/.ssh/config has had its say (HostName, Port): boxswap would move
// production onto the box it takes it from. An ssh config that cannot be
// read is left for check and the first connection to report.
func (l *loader) sameMachine(c *Config) {
	sc, err := loadSSHConfig(c.SSH.Config)
	if err != nil || len(c.Boxes) > 10 {
		return
	}
	eps := make([]Endpoint, len(c.Boxes))
	for i, b := range c.Boxes {
		if eps[i], err = resolveEndpoint(b, c.SSH.Identity, sc); err != nil {
			return
		}
	}
	for i := range eps {
		for j := range i {
			a, b := eps[j], eps[i]
			if a.Port == b.Port && sameHost(a.Host, b.Host) && !(c.Boxes[i].Port == c.Boxes[j].Port && sameHost(c.Boxes[i].Host, c.Boxes[j].Host)) {
				l.add(l.line(l.boxPaths[i]+".host"), "fix host, or HostName and Port in the ssh config",
					"%s.host: %s is %s by the ssh config, the machine of box %s",
					l.boxPaths[i], clip(c.Boxes[i].Host), clip(b.Addr()), c.Boxes[j].Name)
			}
		}
	}
}

// validate checks what no single value shows: the pair, its functions and
// hosts, the release numbers. Values already refused are empty and skipped.
func (l *loader) validate(c *Config) {
	l.validateBoxes(c)
	for i, a := range c.Boxes {
		if a.Host == "" {
			continue
		}
		for _, fn := range []string{Production, Development} {
			if f, ok := c.Functions[fn]; ok && f.Alias != "" && sameHost(a.Host, f.Alias) {
				l.add(l.line(l.boxPaths[i]+".host"),
					"reach each box by its own name: the alias's address and host key move with the function",
					"%s.host: %s is the %s alias", l.boxPaths[i], a.Host, fn)
			}
		}
	}
	p, d := c.Functions[Production], c.Functions[Development]
	if p.Alias != "" && d.Alias != "" && sameHost(p.Alias, d.Alias) {
		l.add(l.line("functions.development.alias"), "give each function its own DNS name",
			"functions: production and development have the same alias %s", d.Alias)
	}
	if p.AddressUnit != "" && p.AddressUnit == d.AddressUnit {
		l.add(l.line("functions.development.address_unit"), "give each function its own address unit, like nbhosting-addr and nbhosting-dev-addr",
			"functions: production and development have the same address_unit %s", d.AddressUnit)
	}
	if u := c.Upgrade; u.From > 0 && u.To > 0 && u.To < u.From {
		l.add(l.line("upgrade.to"), "set to: to the release you upgrade to, above from (or equal to it, to swap without a release change)",
			"upgrade.to: target release %d is below the current one %d", u.To, u.From)
	}
	l.validateMethod(c.Upgrade)
	l.validateData(c.Data)
}

// validateData checks that the folders and files to move name distinct
// paths, none of which is another's backup.
func (l *loader) validateData(d Data) {
	for i, f := range d.Files {
		if contains(d.Folders, f) {
			l.add(l.line(fmt.Sprintf("data.files[%d]", i)), "list it once, in folders or in files",
				"data.files: %s is also in data.folders", f)
		}
	}
	s := d.BackupSuffix
	if s == "" {
		return
	}
	all := append(append([]string{}, d.Folders...), d.Files...)
	for _, key := range []string{"folders", "files"} {
		list, kind := d.Folders, "folder"
		if key == "files" {
			list, kind = d.Files, "file"
		}
		for i, f := range list {
			if contains(all, f+s) {
				l.add(l.line(fmt.Sprintf("data.%s[%d]", key, i)), "rename it or change backup_suffix",
					"data.%s: %s%s is both a %s to move and the backup of %s", key, f, s, kind, f)
			}
		}
	}
}

// validateMethod checks the keys that belong to one upgrade method.
func (l *loader) validateMethod(u Upgrade) {
	switch u.Method {
	case MethodDnf:
		for _, k := range []struct {
			key string
			set bool
		}{{"suites", u.Suites != nil}, {"keep_sources", u.KeepSources != nil}} {
			if k.set {
				l.add(l.line("upgrade."+k.key), "set method: apt for a Debian or Ubuntu box, or remove "+k.key,
					"upgrade.%s: only the apt method uses %s; method is %s", k.key, k.key, MethodDnf)
			}
		}
	case MethodApt:
		if u.Suites == nil {
			if l.pos["upgrade.suites"] == 0 {
				l.add(l.line("upgrade.method"), fmt.Sprintf("add suites: {%d: <codename>, %d: <codename>}, like {12: bookworm, 13: trixie}", u.From, u.To),
					"upgrade: the apt method needs suites, the codenames of releases %d and %d", u.From, u.To)
			}
			return
		}
		for _, r := range []struct {
			key string
			n   int
		}{{"from", u.From}, {"to", u.To}} {
			if _, ok := u.Suites[r.n]; !ok && r.n > 0 {
				l.add(l.line("upgrade.suites"), fmt.Sprintf("add %d: its codename, like %d: %s", r.n, r.n, exampleSuite(r.n)),
					"upgrade.suites: no suite for release %d (upgrade.%s)", r.n, r.key)
			}
		}
		if a, b := u.Suites[u.From], u.Suites[u.To]; a != "" && a == b && u.From != u.To {
			l.add(l.line(fmt.Sprintf("upgrade.suites.%d", u.To)), "give each release its own codename",
				"upgrade.suites: releases %d and %d are both %s", u.From, u.To, a)
		}
	}
}

// exampleSuite names Debian's codename of release n for hints, or a
// placeholder.
func exampleSuite(n int) string {
	if s, ok := map[int]string{11: "bullseye", 12: "bookworm", 13: "trixie", 14: "forky"}[n]; ok {
		return s
	}
	return "<codename>"
}

func (l *loader) validateBoxes(c *Config) {
	if len(c.Boxes) > 10 {
		return // far from a pair: the count is reported, comparing them helps nobody
	}
	for i, b := range c.Boxes {
		for j := range i {
			a := c.Boxes[j]
			if a.Name != "" && a.Name == b.Name {
				l.add(l.line(l.boxPaths[i]+".name"), "give each box its own name",
					"%s.name: two boxes named %s (lines %d and %d)", l.boxPaths[i], b.Name, l.line(l.boxPaths[j]+".name"), l.line(l.boxPaths[i]+".name"))
			}
			switch {
			case a.Host == "" || b.Host == "" || a.Port != b.Port || !sameHost(a.Host, b.Host):
			case a.Host == b.Host:
				l.add(l.line(l.boxPaths[i]+".host"), "each box must be reached at its own address",
					"%s.host: boxes %s and %s both reach %s", l.boxPaths[i], a.Name, b.Name, b.Addr())
			default:
				l.add(l.line(l.boxPaths[i]+".host"), "each box must be reached at its own address",
					"%s.host: %s is %s, the host of box %s", l.boxPaths[i], clip(b.Host), clip(canonicalHost(b.Host)), a.Name)
			}
		}
	}
	for _, fn := range []string{Production, Development} {
		other := Development
		if fn == Development {
			other = Production
		}
		var holders []string
		last := 0
		for i, b := range c.Boxes {
			if b.Function == fn {
				last = l.line(l.boxPaths[i] + ".function")
				holders = append(holders, fmt.Sprintf("%s (line %d)", b.Name, last))
			}
		}
		if len(holders) > 1 {
			l.add(last, "give one box function: "+other,
				"%s boxes with function %s: %s; one must be %s", count(len(holders)), fn, strings.Join(holders, " and "), other)
		}
	}
}

func count(n int) string {
	switch n {
	case 2:
		return "two"
	case 3:
		return "three"
	}
	return fmt.Sprint(n)
}

// maxURL bounds a URL in boxes.yaml, as browsers and servers do.
const maxURL = 2048

// checkWebhookURL accepts an absolute http or https URL with a host: a
// notice must go where the operator meant, never to a file or a command.
func checkWebhookURL(s string) (string, string) {
	hint := "write an address like https://chat.example.org/hooks/boxswap"
	if strings.ContainsFunc(s, hidden) || strings.ContainsAny(s, " ") {
		return "holds spaces or control characters", hint
	}
	if len(s) > maxURL {
		return "is longer than 2048 bytes", hint
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "is not a URL", hint
	case u.Scheme != "http" && u.Scheme != "https":
		return "is not an http:// or https:// URL", hint
	case u.Host == "" || u.Hostname() == "":
		return "has no host", hint
	}
	return "", ""
}

func checkNotifyEvent(s string) (string, string) {
	if !slices.Contains(NotifyEvents, NotifyKind(s)) {
		return "is not a notification event", "write events from " + strings.Join(words(NotifyEvents), ", ")
	}
	return "", ""
}

// pythonKeywords cannot be assigned to in a settings file.
var pythonKeywords = strings.Fields("False None True and as assert async await break class continue def del elif else except " +
	"finally for from global if import in is lambda nonlocal not or pass raise return try while with yield")

// checkPythonName accepts the names a settings line may assign: ASCII
// Python identifiers (the settings step finds ^NAME = lines), not keywords.
func checkPythonName(s string) (string, string) {
	hint := "write a Python variable name as in the settings file: letters, digits and _, not starting with a digit"
	if !pythonNameRe.MatchString(s) || len(s) > 128 {
		return "is not a Python name", hint
	}
	if contains(pythonKeywords, s) {
		return "is a Python keyword", hint
	}
	return "", ""
}

// checkPoint accepts a hook point: a named point, or before:STEP or
// after:STEP with STEP a plain step ID (fsm checks that it exists).
func checkPoint(s string) (string, string) {
	hint := "write " + strings.Join(NamedPoints, ", ") + ", or before:STEP or after:STEP with a step ID that boxswap plan shows, like before:install/thermals"
	if contains(NamedPoints, s) {
		return "", ""
	}
	for _, p := range []string{"before:", "after:"} {
		if id, ok := strings.CutPrefix(s, p); ok {
			if id == "" || len(id) > 200 || !stepIDRe.MatchString(id) {
				return "does not name a step ID after " + p, hint
			}
			return "", ""
		}
	}
	return "is not a hook point", hint
}
