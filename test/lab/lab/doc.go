// Package lab runs two boxes, thurst and thermals, on one Linux machine, so
// boxswap can rehearse a whole upgrade against real SSH, real rsync between
// boxes and real reboots. It has two kinds.
//
// # The systemd kind (real boxes, the default of the CLI)
//
// Up with Options.Kind = KindSystemd boots each box as a systemd-nspawn
// container with systemd as PID 1, from a Debian 12 rootfs built once with
// mmdebstrap into Options.Cache (the scripts under images/, embedded), under
// a copy-on-write overlay per box (DIR/BOX/upper, mounted at DIR/BOX/root).
// Each box has its own network namespace, bridged inside the lab's
// (Info.Netns), where the operator's side runs: DialContext, HTTPClient and
// Command reach the boxes from there. Address units add real IP aliases;
// nginx fronts the app; OSDebian upgrades 12 to 13 with apt from the lab's
// mirror, OSFedora 27 to 29 with Debian's dnf and rpm and a lab-built
// system-upgrade plugin. Run uses nsenter (it works while a Cut holds);
// Holds reads an address from a box's namespace. See docs/lab.md.
//
// # The namespace kind (the fast lab)
//
// Up does the following when Options.Kind is "" (KindNS in the CLI): it
// provisions (on first use of dir) and boots both boxes under a directory and
// writes what a client needs there: boxes.yaml, id_ed25519 (the operator
// key), known_hosts and lab.json. Down stops every process and drops every
// mount the lab made. Open attaches to a running lab from another process
// (the CLI's down, reboot, crash, start and cut do this).
//
// Each box is its own mount, UTS and PID namespace: an overlayfs view of
// this machine's / (the box's writes land in DIR/BOX/upper, so they survive
// its reboots), chrooted, with a fresh /proc, tmpfs /run and /tmp, a
// per-boot /proc/sys/kernel/random/boot_id and Debian's sshd on its own
// loopback address. Shims in /usr/local/sbin (first in root's PATH) play
// Fedora's systemctl, dnf, rpm, reboot, python3 --version, pip3 and docker;
// rsync, git, sed and the rest are the real ones. Starting nbhosting-addr or
// nbhosting-dev-addr really binds the function's address (127.0.1.1 and
// 127.0.1.2) and answers HTTP with "BOX fRELEASE FUNCTION".
//
// # Caveats
//
// The lab needs root and Linux. On the namespace kind the boxes share this
// machine's network namespace and use loopback addresses only; on the
// systemd kind every address and link lives in namespaces the lab made
// (every ip command names one) and Down deletes them: nothing is ever added
// to the machine's own network. Every lab process is started through the lab binary
// re-executing itself, so a program embedding the lab (a test binary, the
// CLI) must call Child first thing in main or TestMain and exit with its
// code when it reports it handled the process.
//
// A box boots its enabled units before its sshd, so once it answers SSH
// (Up, Start, Reboot and WaitBoot wait for that) its address is held again.
// A reboot asked on the box (reboot, dnf system-upgrade reboot) may end the
// SSH session before the command's exit status arrives.
//
// The mounts live in the boxes' private mount namespaces only, so they
// vanish with the boxes; processes are tracked by PID files under DIR and
// stopped by PID.
package lab
