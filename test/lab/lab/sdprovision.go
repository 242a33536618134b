//go:build linux

package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// sdProvisioned marks a box's overlay as provisioned; a lab brought up
// again on the same directory keeps the boxes' disks as they were.
const sdProvisioned = "var/lib/lab/provisioned"

// sdProvision writes what makes the base rootfs one of the pair into the
// box's overlay (mounted at root): names, SSH keys, the address units, the
// app behind nginx, install.sh and the git checkout, the user data.
func sdProvision(root string, s *boxSpec, spec osSpec, dir string) error {
	if _, err := os.Stat(filepath.Join(root, sdProvisioned)); err == nil {
		return nil
	}
	tls, err := ensureTLS(dir)
	if err != nil {
		return err
	}
	files := map[string]string{
		strings.TrimPrefix(BoxCAFile, "/"):   tls.ca,
		strings.TrimPrefix(boxCertFile, "/"): tls.cert,
		strings.TrimPrefix(boxKeyFile, "/"):  tls.key,
		"etc/hostname":                       s.Name + "\n",
		"etc/hosts": fmt.Sprintf("127.0.0.1 localhost\n127.0.1.1 %s\n%s %s\n%s %s\n%s nbhosting.lab\n%s nbhosting-dev.lab\n",
			s.Name, sdThurst, Thurst, sdThermals, Thermals, sdProduction, sdDevelopment),
		"root/.ssh/authorized_keys":                      strings.Join(s.AuthorizedKeys, "\n") + "\n",
		"root/.ssh/id_ed25519":                           s.UserKey,
		"root/.ssh/id_ed25519.pub":                       s.UserPub + "\n",
		"root/.ssh/known_hosts":                          strings.Join(s.KnownHosts, "\n") + "\n",
		"etc/ssh/sshd_config.d/lab.conf":                 "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\nMaxStartups 100:30:200\nMaxSessions 100\n",
		"etc/systemd/system/nbhosting-addr.service":      addrUnit("production", sdProduction),
		"etc/systemd/system/nbhosting-dev-addr.service":  addrUnit("development", sdDevelopment),
		"etc/systemd/system/nbh-uwsgi.service":           appUnit,
		"etc/systemd/system/nbh-monitor.service":         monitorUnit,
		"usr/local/lib/nbh/app.py":                       appPy,
		"usr/local/lib/nbh/monitor.py":                   monitorPy,
		"etc/nginx/sites-available/default":              nginxSite,
		"etc/nbhosting/function":                         s.Function + "\n",
		"root/nbhosting/install.sh":                      sdInstallSh,
		"root/nbhosting/.gitignore":                      "install.log\ndjango/nbh_main/sitesettings.py\n",
		"root/nbhosting/django/nbh_main/sitesettings.py": sitesettings(s.Name, functionSettings[s.Function]),
	}
	for rel, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(rel, "root/.ssh/id_") && !strings.HasSuffix(rel, ".pub") || strings.HasPrefix(rel, "etc/ssh/ssh_host_") || "/"+rel == boxKeyFile {
			mode = 0o600
		}
		if strings.HasSuffix(rel, ".sh") {
			mode = 0o755
		}
		if err := writeBoxFile(root, rel, content, mode); err != nil {
			return err
		}
	}
	for name, key := range s.HostKeys {
		pub, err := publicOf(key)
		if err != nil {
			return err
		}
		if err := writeBoxFile(root, "etc/ssh/"+name, key, 0o600); err != nil {
			return err
		}
		if err := writeBoxFile(root, "etc/ssh/"+name+".pub", pub+" root@"+s.Name+"\n", 0o644); err != nil {
			return err
		}
	}
	// Enabled units: the app on both boxes, the function's address unit on
	// its holder.
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		return err
	}
	for _, u := range []string{"nbh-uwsgi", "nbh-monitor", unitOf(s.Function)} {
		link := filepath.Join(wants, u+".service")
		_ = os.Remove(link)
		if err := os.Symlink("/etc/systemd/system/"+u+".service", link); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(root, "root/.ssh"), 0o700); err != nil {
		return err
	}
	if err := genData(root, s); err != nil {
		return err
	}
	if err := gitInit(root); err != nil {
		return err
	}
	if err := shareUpstream(root, dir); err != nil {
		return err
	}
	return writeBoxFile(root, sdProvisioned, "provisioned\n", 0o644)
}

// writeBoxFile writes rel under root, refusing to follow a symlink the
// rootfs may have at that place.
func writeBoxFile(root, rel, content string, mode os.FileMode) error {
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return writeFile(p, []byte(content), mode)
}

// addrUnit is a function's address unit, as the seed has it: it adds the
// address to the box's interface and announces it, and removes it on stop.
func addrUnit(fn, addr string) string {
	return fmt.Sprintf(`[Unit]
Description=nbhosting %[1]s address %[2]s
After=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/sbin/ip addr add %[2]s%[3]s dev host0
ExecStart=-/usr/bin/arping -q -U -c 1 -I host0 %[2]s
ExecStop=/sbin/ip addr del %[2]s%[3]s dev host0

[Install]
WantedBy=multi-user.target
`, fn, addr, sdPrefix)
}

const appUnit = `[Unit]
Description=nbhosting app (lab): answers behind nginx, writes under /nbhosting/students
After=network.target

[Service]
# Ready once it listens (sd_notify), as uwsgi's units are: "systemctl start"
# returns when the app answers, not when its process is forked.
Type=notify
ExecStart=/usr/bin/python3 /usr/local/lib/nbh/app.py
Restart=on-failure

[Install]
WantedBy=multi-user.target
`

// monitorUnit is one process with no child: in the lab's boxes systemd
// cannot kill a unit's control group ("Failed to kill control group ...
// Input/output error"), and a shell loop's "sleep 60" child made a stop
// wait until "State 'final-sigterm' timed out" (90 s, then 10 s with the
// sleep killed by the loop itself), inside a bench's window.
const monitorUnit = `[Unit]
Description=nbhosting monitor (lab)

[Service]
ExecStart=/usr/bin/python3 /usr/local/lib/nbh/monitor.py
TimeoutStopSec=10

[Install]
WantedBy=multi-user.target
`

const monitorPy = `# nbhosting monitor (lab): a stamp a minute, in one process.
import time

while True:
    with open("/var/log/nbh-monitor.log", "a") as f:
        f.write(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
    time.sleep(60)
`

const nginxSite = `# nbhosting (lab): the web front, proxying to the app (nbh-uwsgi), over
# HTTP and over HTTPS with a certificate for the functions' names from the
# lab's CA (app.check verifies it).
server {
	listen 80 default_server;
	listen 443 ssl default_server;
	ssl_certificate ` + boxCertFile + `;
	ssl_certificate_key ` + boxKeyFile + `;
	location / {
		proxy_pass http://127.0.0.1:8000;
		proxy_set_header Host $host;
	}
}
`

// appPy answers GET with "BOX RELEASE FUNCTION" (the release from
// os-release, the function install.sh last applied) and stores a PUT body
// under /nbhosting/students, as a student's save would.
const appPy = `import http.server, os, socket

ROOT = "/nbhosting/students"

def release():
    for line in open("/etc/os-release"):
        k, _, v = line.strip().partition("=")
        if k == "VERSION_ID":
            return v.strip('"')
    return "?"

def function():
    try:
        return open("/etc/nbhosting/function").read().strip()
    except OSError:
        return "none"

class H(http.server.BaseHTTPRequestHandler):
    def reply(self, code, body):
        b = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def do_GET(self):
        self.reply(200, "%s %s %s\n" % (socket.gethostname(), release(), function()))

    def do_PUT(self):
        rel = os.path.normpath(self.path.lstrip("/"))
        if rel.startswith("..") or rel.startswith("/"):
            return self.reply(400, "bad path\n")
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        p = os.path.join(ROOT, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p + ".tmp", "wb") as f:
            f.write(data)
        os.replace(p + ".tmp", p)
        self.reply(201, "stored %s\n" % rel)

    def log_message(self, *a):
        pass

def notify_ready():
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect(addr)
    s.sendall(b"READY=1")
    s.close()

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 8000), H)
notify_ready()
srv.serve_forever()
`

// sdInstallSh applies the settings: the function the app reports comes
// from server_name, so a move whose install.sh did not run shows.
var sdInstallSh = `#!/bin/sh
# nbhosting installer (lab): applies sitesettings.py.
set -e
# The tests' gate (lab.GateShell): an armed gate holds install.sh here
# until the test lets it go.
` + GateShell("install") + `
cd "$(dirname "$0")"
settings=django/nbh_main/sitesettings.py
get() { sed -n "s/^$1 = \"\(.*\)\"\$/\1/p" "$settings"; }
sn=$(get server_name)
case "$sn" in
nbhosting.lab) fn=production ;;
nbhosting-dev.lab) fn=development ;;
*) echo "install.sh: unknown server_name '$sn' in $settings" >&2; exit 1 ;;
esac
mkdir -p /etc/nbhosting
echo "$fn" > /etc/nbhosting/function.tmp && mv /etc/nbhosting/function.tmp /etc/nbhosting/function
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $(hostname) server_name=$sn ssl_certificate=$(get ssl_certificate) ssl_certificate_key=$(get ssl_certificate_key)" >> install.log
systemctl reload-or-restart nginx
echo "nbhosting installed for $sn ($fn)"
`

// sdBoxesYAML is the lab's boxes.yaml for the systemd kind.
func sdBoxesYAML(spec osSpec) string {
	y := labYAML("# boxswap lab (real boxes): written by \"lab up\"; see test/lab.\n"+
		"# Run boxswap from the lab's network namespace: ip netns exec NETNS boxswap …\n",
		sdThurst, sdThermals, 22, "nbh-uwsgi, nbh-monitor", spec.yaml)
	// Real boxes have real addresses and a real web front over TLS: each
	// move checks both (issue 13).
	for _, r := range []struct{ after, add string }{
		{"    address_unit: nbhosting-addr\n", "    address: " + sdProduction + "\n    interface: host0\n"},
		{"    address_unit: nbhosting-dev-addr\n", "    address: " + sdDevelopment + "\n    interface: host0\n"},
		{"  services: [nbh-uwsgi, nbh-monitor]\n", "  check:\n    path: /\n    status: 200\n    text: production\n    timeout: 10s\n    ca: " + BoxCAFile + "\n"},
	} {
		y = strings.Replace(y, r.after, r.after+r.add, 1)
	}
	return y
}

// UpstreamURL is where the boxes' checkouts fetch from: the lab's shared
// upstream, served read-only by the mirror over plain (dumb) HTTP.
const UpstreamURL = "http://" + MirrorAddr + "/git/upstream.git"

// upstreamDir is the shared upstream's bare repository, DIR/git/upstream.git
// (the mirror serves DIR/git only: DIR also holds the operator's key).
func upstreamDir(dir string) string { return filepath.Join(dir, "git", "upstream.git") }

// shareUpstream makes the lab's shared upstream once, from the first
// box's (the boxes' commits are the same: same files, same date), and
// points the box's origin at it.
func shareUpstream(root, dir string) error {
	up := upstreamDir(dir)
	if _, err := os.Stat(filepath.Join(up, "HEAD")); err != nil {
		_ = os.RemoveAll(up)
		if err := hostGit("", "clone", "-q", "--bare", filepath.Join(root, strings.TrimPrefix(localUpstream, "/")), up); err != nil {
			return err
		}
		if err := hostGit(up, "update-server-info"); err != nil {
			return err
		}
	}
	if err := boxGit(root, []string{"remote", "set-url", "origin", UpstreamURL}); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(root, strings.TrimPrefix(localUpstream, "/")))
}

// hostGit runs this machine's git (in dir when not "").
func hostGit(dir string, args ...string) error {
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	cmd := exec.Command("git", append([]string{"-c", "user.name=lab", "-c", "user.email=lab@lab", "-c", "safe.directory=*"}, args...)...)
	cmd.Env = append(cleanEnv(), "HOME=/root")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// PushUpstream commits content to file on branch of the shared upstream,
// as a developer pushing a fix, and returns the commit. Host-side git:
// the boxes see it at their next fetch.
func (l *Lab) PushUpstream(branch, file, content, message string) (string, error) {
	work, err := os.MkdirTemp("", "lab-push-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	up := upstreamDir(l.Dir)
	if err := hostGit("", "clone", "-q", "-b", branch, up, work); err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(work, file), []byte(content), 0o644); err != nil {
		return "", err
	}
	for _, args := range [][]string{{"add", "--", file}, {"commit", "-q", "-m", message}, {"push", "-q", "origin", branch}} {
		if err := hostGit(work, args...); err != nil {
			return "", err
		}
	}
	if err := hostGit(up, "update-server-info"); err != nil {
		return "", err
	}
	out, err := exec.Command("git", "-C", work, "rev-parse", "HEAD").Output()
	return strings.TrimSpace(string(out)), err
}
