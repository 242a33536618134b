//go:build linux

package lab

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Paths inside a box (relative to its root where used before chroot).
const (
	provisionedPath = "var/lib/lab/provisioned"
	labBinary       = "usr/local/lab/bin/lab"
	boxConfigPath   = "/var/lib/lab/box.json"
	stateDir        = "/var/lib/lab"
)

// shimNames are the commands the lab binary plays inside a box.
var shimNames = []string{"systemctl", "dnf", "rpm", "reboot", "python3", "pip3", "docker"}

// hiddenDirs are this machine's folders a box must not see: the box gets
// its own, empty at first (opaque in the overlay, so hiding /root costs
// nothing however big this machine's /root is).
var hiddenDirs = []string{"root", "nbhosting", "var/lib/lab", "usr/local/sbin", "usr/local/lab", "var/log/lab"}

// hide makes hiddenDirs opaque in a not yet mounted upper dir.
func hide(upper string) error {
	for _, rel := range hiddenDirs {
		d := filepath.Join(upper, rel)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := syscall.Setxattr(d, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			return fmt.Errorf("make %s opaque: %w", d, err)
		}
	}
	return nil
}

// provision writes a box's content through its mounted overlay at root,
// once: what lives on the real boxes' disks and must persist.
func provision(root string, s *boxSpec) error {
	p := func(rel string) string { return filepath.Join(root, rel) }
	write := func(rel, data string, mode os.FileMode) error {
		if err := os.MkdirAll(filepath.Dir(p(rel)), 0o755); err != nil {
			return err
		}
		// Replace symlinks (Debian's /etc/os-release) rather than follow them.
		_ = os.Remove(p(rel))
		return os.WriteFile(p(rel), []byte(data), mode)
	}
	if err := os.Chmod(p("root"), 0o700); err != nil {
		return err
	}
	fn := s.Function
	set := functionSettings[fn]
	files := []struct {
		rel, data string
		mode      os.FileMode
	}{
		{"etc/os-release", osRelease(Release), 0o644},
		{"etc/hostname", s.Name + "\n", 0o644},
		{"etc/hosts", fmt.Sprintf("127.0.0.1 localhost\n%s thurst\n%s thermals\n%s nbhosting.lab\n%s nbhosting-dev.lab\n",
			ThurstHost, ThermalsHost, ProductionAddr, DevelopmentAddr), 0o644},
		{"root/.bashrc", "# .bashrc (lab box)\nexport PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n", 0o644},
		{"root/.profile", "# .profile (lab box)\n[ -f ~/.bashrc ] && . ~/.bashrc\n", 0o644},
		{"root/.ssh/id_ed25519", s.UserKey, 0o600},
		{"root/.ssh/id_ed25519.pub", s.UserPub + "\n", 0o644},
		{"root/.ssh/authorized_keys", strings.Join(s.AuthorizedKeys, "\n") + "\n", 0o600},
		{"root/.ssh/known_hosts", strings.Join(s.KnownHosts, "\n") + "\n", 0o644},
		{"root/.ssh/config", fmt.Sprintf("Host %s\n  HostName %s\n  Port %d\nHost *\n  BatchMode yes\n  StrictHostKeyChecking yes\n",
			s.Peer, s.PeerHost, s.Port), 0o600},
		{"root/nbhosting/install.sh", installSh, 0o755},
		{"root/nbhosting/.gitignore", "install.log\n*.pyc\ndjango/nbh_main/sitesettings.py\n", 0o644},
		{"root/nbhosting/README.md", "# nbhosting (lab checkout)\n", 0o644},
		{"root/nbhosting/django/nbh_main/__init__.py", "", 0o644},
		{"root/nbhosting/django/nbh_main/sitesettings.py", sitesettings(s.Name, set), 0o644},
		{"root/nbhosting/django/nbh_main/settings.py", "from nbh_main.sitesettings import *  # noqa\n", 0o644},
		{"var/lib/lab/release", strconv.Itoa(Release) + "\n", 0o644},
		{"var/lib/lab/python-version", "3.6.8\n", 0o644},
		{"var/lib/lab/rpms", "fedora-release 27\npython3 3.6.8\ndnf 2.7.5\nopenssh-server 7.6p1\nrsync 3.1.3\ngit 2.14.3\ndocker 1.13.1\n", 0o644},
		{"var/lib/lab/pip/3.6.txt", "Django==1.11.9\nnbhosting-utils==0.3\nrequests==2.18.4\n", 0o644},
		{"var/lib/lab/docker/containers", dockerContainers(s.Name), 0o644},
		{"var/lib/lab/docker/images", dockerImages(s.Name), 0o644},
		{labBinary, "", 0o755},
	}
	cfg, _ := json.Marshal(boxConfig{Name: s.Name, HTTPPort: s.HTTPPort})
	files = append(files, struct {
		rel, data string
		mode      os.FileMode
	}{strings.TrimPrefix(boxConfigPath, "/"), string(cfg) + "\n", 0o644})
	units := []string{"nbh-uwsgi", "nbh-monitor", "docker", unitOf(fn)}
	for _, u := range units {
		files = append(files, struct {
			rel, data string
			mode      os.FileMode
		}{"var/lib/lab/units/" + u + ".enabled", "", 0o644})
	}
	for _, f := range files {
		if err := write(f.rel, f.data, f.mode); err != nil {
			return err
		}
	}
	for _, name := range shimNames {
		_ = os.Remove(p("usr/local/sbin/" + name))
		if err := os.Symlink("/"+labBinary, p("usr/local/sbin/"+name)); err != nil {
			return err
		}
	}
	if err := genData(root, s); err != nil {
		return err
	}
	if err := gitInit(root); err != nil {
		return err
	}
	return os.WriteFile(p(provisionedPath), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644)
}

func unitOf(function string) string {
	if function == "production" {
		return "nbhosting-addr"
	}
	return "nbhosting-dev-addr"
}

func sitesettings(box string, set [3]string) string {
	return fmt.Sprintf(`# -*- coding: utf-8 -*-
# nbhosting site settings (lab box %s)
# the three lines below differ between production and development

server_name = "%s"
ssl_certificate = "%s"
ssl_certificate_key = "%s"

nbhroot = "/nbhosting"
DEBUG = False
ALLOWED_HOSTS = ["*"]
SECRET_KEY = "lab-not-secret"
# server_name_dev = "not a setting line: keep me"
`, box, set[0], set[1], set[2])
}

// installSh is the checkout's install.sh: it records that it ran and what
// the settings said, in install.log (ignored by git) and /var/lib/lab/install.state.
var installSh = `#!/bin/sh
# nbhosting installer (lab): records that it ran and what the settings said.
set -e
# The tests' gate (lab.GateShell): an armed gate holds install.sh here
# until the test lets it go (the app's code stays as committed).
` + GateShell("install") + `
cd "$(dirname "$0")"
settings=django/nbh_main/sitesettings.py
get() { sed -n "s/^$1 = \"\(.*\)\"\$/\1/p" "$settings"; }
sn=$(get server_name); crt=$(get ssl_certificate); key=$(get ssl_certificate_key)
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $(hostname) server_name=$sn ssl_certificate=$crt ssl_certificate_key=$key" >> install.log
mkdir -p /var/lib/lab
printf 'server_name=%s\nssl_certificate=%s\nssl_certificate_key=%s\n' "$sn" "$crt" "$key" > /var/lib/lab/install.state
echo "nbhosting installed for $sn"
`

func dockerContainers(box string) string {
	// ID IMAGE NAME STATUS (Up|Exited)
	if box == Thurst {
		return "3f4e1a2b9c01 nbhosting/scipy:2018-01 python-mooc-alice Up\n" +
			"8a7b6c5d4e02 nbhosting/scipy:2018-01 python-mooc-bob Up\n" +
			"1c2d3e4f5a03 nbhosting/scipy:2017-09 bioinfo-carol Exited\n"
	}
	return "9e8d7c6b5a11 nbhosting/scipy:2018-03 python-mooc-dev Up\n" +
		"2b3c4d5e6f12 nbhosting/scipy:2018-03 test-course-dev Exited\n"
}

func dockerImages(box string) string {
	// REPOSITORY:TAG ID SIZE
	if box == Thurst {
		return "nbhosting/scipy:2018-01 a1b2c3d4e5f6 4.1GB\nnbhosting/scipy:2017-09 b2c3d4e5f6a7 3.9GB\n"
	}
	return "nbhosting/scipy:2018-03 c3d4e5f6a7b8 4.3GB\nnbhosting/scipy:2018-01 a1b2c3d4e5f6 4.1GB\n"
}

// genData fills /nbhosting/{students,raw} with s.Files deterministic files
// each, different per box.
func genData(root string, s *boxSpec) error {
	h := fnv.New64a()
	h.Write([]byte(s.Name))
	rng := rand.New(rand.NewPCG(h.Sum64(), 27))
	courses := []string{"python-mooc", "bioinfo", "flotpython3"}
	words := []string{"cell", "import", "numpy", "print", "def", "return", "value", "plot", "data", "exercise"}
	fill := func(path string) error {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		var b strings.Builder
		b.WriteString(`{"cells": "` + s.Name + "\n")
		for b.Len() < s.FileSize {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		return os.WriteFile(path, []byte(b.String()[:max(s.FileSize, 1)]), 0o644)
	}
	for i := 0; i < s.Files; i++ {
		student := fmt.Sprintf("%s-%04d", map[string]string{Thurst: "s", Thermals: "dev"}[s.Name], rng.IntN(max(s.Files/4, 1)))
		course := courses[rng.IntN(len(courses))]
		if err := fill(filepath.Join(root, "nbhosting/students", student, course, fmt.Sprintf("w%d-nb%03d.ipynb", i%7+1, i))); err != nil {
			return err
		}
		if err := fill(filepath.Join(root, "nbhosting/raw", course, fmt.Sprintf("%s-%05d.json", s.Name, i))); err != nil {
			return err
		}
	}
	return nil
}

// labBranches are the branches upstream has besides master: one per
// target release of the lab's cycles.
var labBranches = []string{"f29", "f31", "trixie"}

// labGitDate dates the lab's first commit: the same files with the same
// date make the same commit on both boxes and upstream.
const labGitDate = "2026-01-01T00:00:00Z"

// localUpstream is where a box's checkout is first cloned from (inside the
// box); an sd lab points origin at the shared upstream instead (sdOrigin).
const localUpstream = "/var/lib/lab/upstream.git"

// gitInit makes /root/nbhosting a clone of an upstream, with the real git
// run in the box's root: the files become the first commit (sitesettings.py
// is ignored, as on real sites), a bare upstream holds it on master and one
// branch per target release, and the checkout is a clone of it on master.
func gitInit(root string) error {
	// A provisioning cut short leaves a half-made repository: start afresh.
	for _, d := range []string{"root/nbhosting/.git", strings.TrimPrefix(localUpstream, "/")} {
		if err := os.RemoveAll(filepath.Join(root, d)); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"init", "-q", "-b", "master"},
		{"add", "-A"},
		{"commit", "-q", "-m", "nbhosting lab checkout"},
		{"clone", "-q", "--bare", ".", localUpstream},
	}
	for _, b := range labBranches {
		steps = append(steps, []string{"-C", localUpstream, "branch", b})
	}
	steps = append(steps,
		[]string{"remote", "add", "origin", localUpstream},
		[]string{"fetch", "-q", "origin"},
		[]string{"branch", "-q", "--set-upstream-to=origin/master"},
	)
	return boxGit(root, steps...)
}

// boxGit runs git in the box's /root/nbhosting, chrooted into root.
func boxGit(root string, steps ...[]string) error {
	for _, args := range steps {
		cmd := exec.Command("/usr/bin/git", append([]string{"-c", "user.name=lab", "-c", "user.email=lab@lab"}, args...)...)
		cmd.Dir = "/root/nbhosting"
		cmd.Env = append(cleanEnv(), "HOME=/root", "GIT_AUTHOR_DATE="+labGitDate, "GIT_COMMITTER_DATE="+labGitDate)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// writeSSHD writes the box's sshd_config and host keys, on every boot so a
// lab made again keeps them in step with box.json.
func writeSSHD(root string, s *boxSpec) error {
	sshDir := filepath.Join(root, "etc/ssh")
	// Hide this machine's host keys.
	old, _ := filepath.Glob(filepath.Join(sshDir, "ssh_host_*"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	for name, key := range s.HostKeys {
		if err := os.WriteFile(filepath.Join(sshDir, name), []byte(key), 0o600); err != nil {
			return err
		}
		pub, err := publicOf(key)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(sshDir, name+".pub"), []byte(pub+" root@"+s.Name+"\n"), 0o644); err != nil {
			return err
		}
	}
	cfg := fmt.Sprintf(`# lab box %s: written at each boot by the lab's init
ListenAddress %s:%d
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PidFile /run/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
MaxStartups 100:30:200
MaxSessions 100
ClientAliveInterval 0
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
`, s.Name, s.Host, s.Port)
	return os.WriteFile(filepath.Join(sshDir, "sshd_config"), []byte(cfg), 0o644)
}

// applyStaged applies a release staged by dnf system-upgrade download, as
// the real upgrade does during the reboot: new os-release, python3 one
// minor up (its pip packages stay behind with the old one).
func applyStaged(root, box string) error {
	p := func(rel string) string { return filepath.Join(root, stateDir, rel) }
	raw, err := os.ReadFile(p("staged"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	to, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return fmt.Errorf("staged release %q: %w", raw, err)
	}
	from := readInt(p("release"), Release)
	py := strings.TrimSpace(readString(p("python-version"), "3.6.8"))
	var major, minor, patch int
	fmt.Sscanf(py, "%d.%d.%d", &major, &minor, &patch)
	newPy := fmt.Sprintf("%d.%d.%d", major, minor+1, 2)
	if err := os.Remove(filepath.Join(root, "etc/os-release")); err != nil && !os.IsNotExist(err) {
		return err
	}
	for _, f := range []struct{ path, data string }{
		{filepath.Join(root, "etc/os-release"), osRelease(to)},
		{p("release"), strconv.Itoa(to) + "\n"},
		{p("python-version"), newPy + "\n"},
	} {
		if err := os.WriteFile(f.path, []byte(f.data), 0o644); err != nil {
			return err
		}
	}
	rpms := readString(p("rpms"), "")
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(rpms), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && f[0] == "fedora-release":
			l = "fedora-release " + strconv.Itoa(to)
		case len(f) == 2 && f[0] == "python3":
			l = "python3 " + newPy
		}
		lines = append(lines, l)
	}
	if err := os.WriteFile(p("rpms"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	logLine := fmt.Sprintf("%s %s: upgraded from %d to %d (python3 %s -> %s)\n", time.Now().UTC().Format(time.RFC3339), box, from, to, py, newPy)
	f, err := os.OpenFile(p("upgrade.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(logLine); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Remove(p("staged"))
}

func readString(path, def string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return def
	}
	return string(raw)
}

func readInt(path string, def int) int {
	n, err := strconv.Atoi(strings.TrimSpace(readString(path, "")))
	if err != nil {
		return def
	}
	return n
}
