//go:build linux

package lab

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// shims are the commands a box runs as the lab binary, by argv[0].
var shims = map[string]func([]string) int{
	"systemctl": systemctl,
	"dnf":       dnf,
	"rpm":       rpmShim,
	"reboot":    func([]string) int { return rebootBox() },
	"python3":   python3,
	"pip3":      pip3,
	"docker":    docker,
}

// systemctl plays the verbs boxswap uses, with systemd's exit codes
// (is-active: 0 active, 3 otherwise; is-enabled: 1 disabled; unknown unit: 5 or 4).
func systemctl(args []string) int {
	var verb string
	var units []string
	now := false
	for _, a := range args {
		switch {
		case a == "--now":
			now = true
		case strings.HasPrefix(a, "-"):
		case verb == "":
			verb = a
		default:
			units = append(units, unitName(a))
		}
	}
	switch verb {
	case "daemon-reload", "reset-failed":
		return 0
	case "reboot":
		return rebootBox()
	case "":
		fmt.Fprintln(os.Stderr, "systemctl (lab): give a verb: start stop restart enable disable is-active is-enabled status")
		return 1
	}
	if len(units) == 0 {
		fmt.Fprintf(os.Stderr, "Too few arguments.\n")
		return 1
	}
	code := 0
	worst := func(c int) {
		if c > code {
			code = c
		}
	}
	for _, u := range units {
		switch verb {
		case "start", "restart":
			if !known(u) {
				fmt.Fprintf(os.Stderr, "Failed to start %s.service: Unit %s.service not found.\n", u, u)
				worst(5)
				continue
			}
			if verb == "restart" {
				stopUnit(u)
			}
			worst(startUnit(u, os.Stderr))
		case "stop":
			if !known(u) {
				fmt.Fprintf(os.Stderr, "Failed to stop %s.service: Unit %s.service not loaded.\n", u, u)
				worst(5)
				continue
			}
			worst(stopUnit(u))
		case "enable", "disable":
			if !known(u) || u == "sshd" {
				if u != "sshd" {
					fmt.Fprintf(os.Stderr, "Failed to %s unit: Unit file %s.service does not exist.\n", verb, u)
					worst(1)
				}
				continue
			}
			f := filepath.Join(unitsDisk, u+".enabled")
			if verb == "enable" {
				if !isEnabled(u) {
					_ = os.MkdirAll(unitsDisk, 0o755)
					if err := os.WriteFile(f, nil, 0o644); err != nil {
						fmt.Fprintf(os.Stderr, "Failed to enable unit: %v\n", err)
						worst(1)
						continue
					}
					fmt.Fprintf(os.Stderr, "Created symlink /etc/systemd/system/multi-user.target.wants/%s.service → /usr/lib/systemd/system/%s.service.\n", u, u)
				}
				if now {
					worst(startUnit(u, os.Stderr))
				}
			} else {
				if isEnabled(u) {
					_ = os.Remove(f)
					fmt.Fprintf(os.Stderr, "Removed /etc/systemd/system/multi-user.target.wants/%s.service.\n", u)
				}
				if now {
					worst(stopUnit(u))
				}
			}
		case "is-active":
			st := unitState(u)
			fmt.Println(st)
			if st != "active" {
				worst(3)
			}
		case "is-enabled":
			if !known(u) {
				fmt.Fprintf(os.Stderr, "Failed to get unit file state for %s.service: No such file or directory\n", u)
				worst(1)
				continue
			}
			if isEnabled(u) {
				fmt.Println("enabled")
			} else {
				fmt.Println("disabled")
				worst(1)
			}
		case "is-failed":
			st := unitState(u)
			fmt.Println(st)
			if st != "failed" {
				worst(1)
			}
		case "status":
			if !known(u) {
				fmt.Fprintf(os.Stderr, "Unit %s.service could not be found.\n", u)
				worst(4)
				continue
			}
			st := unitState(u)
			en := "disabled"
			if isEnabled(u) {
				en = "enabled"
			}
			running := map[string]string{"active": "active (running)", "inactive": "inactive (dead)", "failed": "failed (Result: exit-code)"}[st]
			fmt.Printf("● %s.service - %s (lab)\n   Loaded: loaded (/usr/lib/systemd/system/%s.service; %s; vendor preset: disabled)\n   Active: %s\n",
				u, u, u, en, running)
			if pid := unitPID(u); pid > 0 {
				fmt.Printf(" Main PID: %d (lab-%s)\n", pid, u)
			}
			if st != "active" {
				worst(3)
			}
		default:
			fmt.Fprintf(os.Stderr, "Unknown operation '%s'.\n", verb)
			return 1
		}
	}
	return code
}

// rebootBox asks the box's init to reboot, after checking that PID 1 is
// the lab's init, so the shim can never reboot this machine.
func rebootBox() int {
	raw, err := os.ReadFile("/proc/1/cmdline")
	if err != nil || !strings.Contains(string(raw), "\x00"+childMarker+"\x00init\x00") {
		fmt.Fprintln(os.Stderr, "reboot (lab): PID 1 is not a lab box's init: refusing")
		return 1
	}
	if err := syscall.Kill(1, syscall.SIGUSR1); err != nil {
		fmt.Fprintf(os.Stderr, "reboot (lab): %v\n", err)
		return 1
	}
	return 0
}

func stateFile(name string) string { return filepath.Join(stateDir, name) }

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// rpms reads the installed-package record: name → version.
func rpms() ([]string, map[string]string) {
	var names []string
	m := map[string]string{}
	for _, l := range strings.Split(readString(stateFile("rpms"), ""), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			if _, ok := m[f[0]]; !ok {
				names = append(names, f[0])
			}
			m[f[0]] = f[1]
		}
	}
	return names, m
}

func rpmNEVRA(name, version string) string {
	return fmt.Sprintf("%s-%s-1.fc%d.noarch", name, version, readInt(stateFile("release"), Release))
}

// rpmShim answers rpm -q and rpm -qa from the record dnf keeps.
func rpmShim(args []string) int {
	var q, all bool
	var pkgs []string
	for _, a := range args {
		switch a {
		case "-q", "--query":
			q = true
		case "-qa":
			q, all = true, true
		case "-a", "--all":
			all = true
		default:
			if !strings.HasPrefix(a, "-") {
				pkgs = append(pkgs, a)
			}
		}
	}
	if !q {
		fmt.Fprintln(os.Stderr, "rpm (lab): only -q and -qa")
		return 1
	}
	names, m := rpms()
	if all {
		for _, n := range names {
			fmt.Println(rpmNEVRA(n, m[n]))
		}
		return 0
	}
	code := 0
	for _, p := range pkgs {
		if v, ok := m[p]; ok {
			fmt.Println(rpmNEVRA(p, v))
		} else {
			fmt.Printf("package %s is not installed\n", p)
			code = 1
		}
	}
	return code
}

// confirm plays dnf's prompt: without -y it reads the answer on stdin,
// and aborts on anything but y, as dnf does on a closed stdin.
func confirm(yes bool) bool {
	if yes {
		return true
	}
	fmt.Print("Is this ok [y/N]: ")
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a == "y" || a == "yes" {
		return true
	}
	fmt.Println("Operation aborted.")
	return false
}

// dnf plays upgrade, install and the system-upgrade plugin.
func dnf(args []string) int {
	yes := false
	releasever := 0
	var words []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-y" || a == "--assumeyes":
			yes = true
		case strings.HasPrefix(a, "--releasever="):
			releasever, _ = strconv.Atoi(strings.TrimPrefix(a, "--releasever="))
		case a == "--releasever" && i+1 < len(args):
			i++
			releasever, _ = strconv.Atoi(args[i])
		case strings.HasPrefix(a, "-"):
		default:
			words = append(words, a)
		}
	}
	if len(words) == 0 {
		fmt.Fprintln(os.Stderr, "usage: dnf [options] COMMAND")
		return 1
	}
	cur := readInt(stateFile("release"), Release)
	logCmd := func() {
		_ = appendLine(stateFile("dnf.log"), time.Now().UTC().Format(time.RFC3339)+" dnf "+strings.Join(args, " "))
	}
	_, installed := rpms()
	switch words[0] {
	case "upgrade", "update":
		fmt.Printf("Fedora %d - x86_64 - Updates\nDependencies resolved.\n", cur)
		if !confirm(yes) {
			return 1
		}
		logCmd()
		fmt.Println("Complete!")
		return 0
	case "install":
		var todo []string
		for _, p := range words[1:] {
			if _, ok := installed[p]; ok {
				fmt.Printf("Package %s is already installed.\n", rpmNEVRA(p, installed[p]))
			} else {
				todo = append(todo, p)
			}
		}
		if len(words) == 1 {
			fmt.Fprintln(os.Stderr, "Error: Need to pass a list of pkgs to install")
			return 1
		}
		if len(todo) == 0 {
			fmt.Println("Dependencies resolved.\nNothing to do.\nComplete!")
			return 0
		}
		fmt.Printf("Installing: %s\n", strings.Join(todo, " "))
		if !confirm(yes) {
			return 1
		}
		for _, p := range todo {
			if err := appendLine(stateFile("rpms"), p+" 1.0"); err != nil {
				fmt.Fprintf(os.Stderr, "Error: %v\n", err)
				return 1
			}
		}
		logCmd()
		fmt.Println("Complete!")
		return 0
	case "system-upgrade":
		if _, ok := installed["dnf-plugin-system-upgrade"]; !ok {
			fmt.Fprintln(os.Stderr, "No such command: system-upgrade. Please use /usr/bin/dnf --help\n"+
				"It could be a DNF plugin command, try: \"dnf install 'dnf-command(system-upgrade)'\"")
			return 1
		}
		sub := ""
		if len(words) > 1 {
			sub = words[1]
		}
		switch sub {
		case "download":
			if releasever <= cur {
				fmt.Fprintln(os.Stderr, "Error: Need a --releasever greater than the current system version.")
				return 1
			}
			fmt.Printf("Before you continue ensure that your system is fully upgraded by running \"dnf --refresh upgrade\".\n"+
				"Fedora %d - x86_64\nDependencies resolved.\n", releasever)
			if !confirm(yes) {
				return 1
			}
			if err := os.WriteFile(stateFile("staged"), []byte(strconv.Itoa(releasever)+"\n"), 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "Error: %v\n", err)
				return 1
			}
			logCmd()
			fmt.Println("Download complete! Use 'dnf system-upgrade reboot' to start the upgrade.")
			return 0
		case "reboot":
			if _, err := os.Stat(stateFile("staged")); err != nil {
				fmt.Fprintln(os.Stderr, "Error: system is not ready for upgrade")
				return 1
			}
			logCmd()
			return rebootBox()
		case "log":
			fmt.Print(readString(stateFile("upgrade.log"), ""))
			return 0
		case "clean":
			_ = os.Remove(stateFile("staged"))
			logCmd()
			fmt.Println("Cleaning up downloaded data...")
			return 0
		}
		fmt.Fprintf(os.Stderr, "Error: unknown system-upgrade action %q\n", sub)
		return 1
	case "list":
		names, m := rpms()
		fmt.Println("Installed Packages")
		for _, n := range names {
			fmt.Printf("%s.noarch %s-1.fc%d @fedora\n", n, m[n], cur)
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "No such command: %s. Please use /usr/bin/dnf --help\n", words[0])
	return 1
}

func pythonVersion() string {
	return strings.TrimSpace(readString(stateFile("python-version"), "3.6.8"))
}

// pipFile is the record of pip-installed packages of the current python3
// minor: an upgrade that bumps python3 leaves them behind, as on Fedora.
func pipFile() string {
	v := pythonVersion()
	if i := strings.LastIndexByte(v, '.'); i > 0 {
		v = v[:i]
	}
	return stateFile("pip/" + v + ".txt")
}

// python3 answers --version from the box's release and runs the real
// python3 for anything else (python3 -m pip goes to pip3).
func python3(args []string) int {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-V") {
		fmt.Println("Python " + pythonVersion())
		return 0
	}
	if len(args) >= 2 && args[0] == "-m" && (args[1] == "pip" || args[1] == "pip3") {
		return pip3(args[2:])
	}
	err := syscall.Exec("/usr/bin/python3", append([]string{"python3"}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "python3 (lab): %v\n", err)
	return 127
}

// pip3 keeps freeze and install in a record.
func pip3(args []string) int {
	var words, reqs []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case (a == "-r" || a == "--requirement") && i+1 < len(args):
			i++
			reqs = append(reqs, args[i])
		case strings.HasPrefix(a, "-"):
		default:
			words = append(words, a)
		}
	}
	if len(words) == 0 {
		fmt.Fprintln(os.Stderr, "usage: pip3 freeze|list|install|uninstall")
		return 1
	}
	read := func() (names []string, m map[string]string) {
		m = map[string]string{}
		for _, l := range strings.Split(readString(pipFile(), ""), "\n") {
			n, v, ok := strings.Cut(strings.TrimSpace(l), "==")
			if !ok {
				continue
			}
			if _, seen := m[n]; !seen {
				names = append(names, n)
			}
			m[n] = v
		}
		slices.SortFunc(names, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
		return names, m
	}
	save := func(names []string, m map[string]string) error {
		var b strings.Builder
		for _, n := range names {
			fmt.Fprintf(&b, "%s==%s\n", n, m[n])
		}
		_ = os.MkdirAll(filepath.Dir(pipFile()), 0o755)
		return os.WriteFile(pipFile(), []byte(b.String()), 0o644)
	}
	names, m := read()
	switch words[0] {
	case "freeze":
		for _, n := range names {
			fmt.Printf("%s==%s\n", n, m[n])
		}
		return 0
	case "list":
		if slices.Contains(args, "--format=json") {
			// As pip 9+ with -v: where each package lives (pip's own,
			// under /usr/local, as on Fedora).
			type pkg struct {
				Name      string `json:"name"`
				Version   string `json:"version"`
				Location  string `json:"location"`
				Installer string `json:"installer"`
			}
			out := []pkg{}
			v := pythonVersion()
			if i := strings.LastIndexByte(v, '.'); i > 0 {
				v = v[:i]
			}
			for _, n := range names {
				out = append(out, pkg{n, m[n], "/usr/local/lib/python" + v + "/site-packages", "pip"})
			}
			b, _ := json.Marshal(out)
			fmt.Println(string(b))
			return 0
		}
		for _, n := range names {
			fmt.Printf("%s (%s)\n", n, m[n])
		}
		return 0
	case "install":
		specs := words[1:]
		for _, r := range reqs {
			raw, err := os.ReadFile(r)
			if err != nil {
				fmt.Fprintf(os.Stderr, "Could not open requirements file: %v\n", err)
				return 1
			}
			for _, l := range strings.Split(string(raw), "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
					specs = append(specs, l)
				}
			}
		}
		for _, s := range specs {
			n, v, ok := strings.Cut(s, "==")
			if !ok {
				v = "1.0"
			}
			if _, seen := m[n]; !seen {
				names = append(names, n)
			}
			m[n] = v
			fmt.Printf("Successfully installed %s-%s\n", n, v)
		}
		if err := save(names, m); err != nil {
			fmt.Fprintf(os.Stderr, "pip3 (lab): %v\n", err)
			return 1
		}
		return 0
	case "uninstall":
		for _, s := range words[1:] {
			names = slices.DeleteFunc(names, func(n string) bool { return n == s })
			delete(m, s)
		}
		if err := save(names, m); err != nil {
			fmt.Fprintf(os.Stderr, "pip3 (lab): %v\n", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "ERROR: unknown command \"%s\"\n", words[0])
	return 1
}

// docker plays ps, images, rm and rmi on a recorded list, and needs the
// docker unit running, as the real client needs its daemon.
func docker(args []string) int {
	var words []string
	all, quiet, force := false, false, false
	for _, a := range args {
		if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") {
			all = all || strings.Contains(a, "a")
			quiet = quiet || strings.Contains(a, "q")
			force = force || strings.Contains(a, "f")
			continue
		}
		switch a {
		case "--all":
			all = true
		case "--quiet":
			quiet = true
		case "--force":
			force = true
		default:
			words = append(words, a)
		}
	}
	if len(words) == 0 {
		fmt.Fprintln(os.Stderr, "usage: docker ps|images|rm|rmi")
		return 1
	}
	if unitState("docker") != "active" {
		fmt.Fprintln(os.Stderr, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
		return 1
	}
	table := func(name string) [][]string {
		var rows [][]string
		for _, l := range strings.Split(readString(stateFile("docker/"+name), ""), "\n") {
			if f := strings.Fields(l); len(f) >= 3 {
				rows = append(rows, f)
			}
		}
		return rows
	}
	save := func(name string, rows [][]string) error {
		var b strings.Builder
		for _, r := range rows {
			b.WriteString(strings.Join(r, " ") + "\n")
		}
		return os.WriteFile(stateFile("docker/"+name), []byte(b.String()), 0o644)
	}
	containers, images := table("containers"), table("images")
	switch words[0] {
	case "ps":
		if !quiet {
			fmt.Printf("%-14s %-26s %-10s %s\n", "CONTAINER ID", "IMAGE", "STATUS", "NAMES")
		}
		for _, c := range containers {
			if c[3] != "Up" && !all {
				continue
			}
			if quiet {
				fmt.Println(c[0])
			} else {
				fmt.Printf("%-14s %-26s %-10s %s\n", c[0], c[1], c[3], c[2])
			}
		}
		return 0
	case "images":
		if !quiet {
			fmt.Printf("%-20s %-10s %-14s %s\n", "REPOSITORY", "TAG", "IMAGE ID", "SIZE")
		}
		for _, im := range images {
			if quiet {
				fmt.Println(im[1])
				continue
			}
			repo, tag, _ := strings.Cut(im[0], ":")
			fmt.Printf("%-20s %-10s %-14s %s\n", repo, tag, im[1], im[2])
		}
		return 0
	case "rm":
		code := 0
		for _, id := range words[1:] {
			i := slices.IndexFunc(containers, func(c []string) bool { return c[0] == id || c[2] == id })
			switch {
			case i < 0:
				fmt.Fprintf(os.Stderr, "Error: No such container: %s\n", id)
				code = 1
			case containers[i][3] == "Up" && !force:
				fmt.Fprintf(os.Stderr, "Error response from daemon: You cannot remove a running container %s. Stop the container before attempting removal or force remove\n", containers[i][0])
				code = 1
			default:
				containers = slices.Delete(containers, i, i+1)
				fmt.Println(id)
			}
		}
		if err := save("containers", containers); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return code
	case "rmi":
		code := 0
		for _, id := range words[1:] {
			i := slices.IndexFunc(images, func(im []string) bool { return im[1] == id || im[0] == id })
			if i < 0 {
				fmt.Fprintf(os.Stderr, "Error: No such image: %s\n", id)
				code = 1
				continue
			}
			if c := slices.IndexFunc(containers, func(c []string) bool { return c[1] == images[i][0] }); c >= 0 && !force {
				fmt.Fprintf(os.Stderr, "Error response from daemon: conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s\n",
					images[i][0], containers[c][0], images[i][1])
				code = 1
				continue
			}
			fmt.Printf("Untagged: %s\nDeleted: sha256:%s\n", images[i][0], images[i][1])
			images = slices.Delete(images, i, i+1)
		}
		if err := save("images", images); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return code
	}
	fmt.Fprintf(os.Stderr, "docker (lab): unsupported command %q\n", words[0])
	return 1
}
