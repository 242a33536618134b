#!/bin/bash
# boottest.sh BASE — the real two-boot dnf system-upgrade in one
# systemd-nspawn box (systemd as PID 1).
#
# Run as root after selftest.sh (it reuses $WORK/repos; default WORK is
# /var/tmp/boxswap-fedora-selftest). BASE is a Debian 12 rootfs with dnf and
# rpm ($WORK/base when selftest.sh built it). A copy of BASE is prepared
# (prepare-box.sh) as $WORK/bootbox, lab.repo pointed at the repositories
# bind-mounted read-only by nspawn at /var/tmp/repos (file://), then:
#   boot 1: dnf upgrade --refresh, install the plugin,
#           system-upgrade download --releasever=29, system-upgrade reboot
#           -> nspawn exits 133 (a reboot)
#   boot 2: /system-update -> system-update.target -> dnf-system-upgrade.service
#           runs the upgrade and reboots -> nspawn exits 133
#   boot 3: os-release says 29, rpm -q fedora-release is 29,
#           dnf-system-upgrade.service succeeded in boot 2,
#           `dnf system-upgrade log` lists boot 2; poweroff -> exit 0.
# Each boot holds /run/boxswap-lab.lock (flock) so it never overlaps the
# lab; the box has no network at all (--private-network); nothing is
# mounted on the machine; only the processes started here are stopped.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=${WORK:-/var/tmp/boxswap-fedora-selftest}
lock=/run/boxswap-lab.lock
[ $# -eq 1 ] || { echo "usage: $0 BASE" >&2; exit 2; }
base=$(cd "$1" && pwd)
[ "$(id -u)" = 0 ] || { echo "$0: run as root" >&2; exit 1; }
[ -f "$work/repos/.done" ] || { echo "$0: run selftest.sh first (no $work/repos)" >&2; exit 1; }

fail() { echo "boottest: FAIL: $*" >&2; exit 1; }
step() { echo "boottest: --- $*"; }

box=$work/bootbox
rm -rf "$box"
cp -a "$base" "$box"
"$here/prepare-box.sh" "$box" "$work/repos"
sed -i 's|^baseurl=.*|baseurl=file:///var/tmp/repos/$releasever/|' "$box/etc/yum.repos.d/lab.repo"

flock_pid= pid1=
cleanup() { # stop the box this script booted, if it still runs: poweroff, then SIGTERM, then SIGKILL to nspawn
	[ -n "$flock_pid" ] && kill -0 "$flock_pid" 2>/dev/null || return 0
	local ns sig
	ns=$(pgrep -P "$flock_pid" -x systemd-nspawn || true)
	if [ -n "$pid1" ]; then timeout 20 nsenter -t "$pid1" -a systemctl poweroff 2>/dev/null || true; fi
	for sig in TERM KILL; do
		for _ in $(seq 60); do kill -0 "$flock_pid" 2>/dev/null || break 2; sleep 0.5; done
		if [ -n "$ns" ]; then kill -s "$sig" "$ns" 2>/dev/null || true
		else kill -s "$sig" "$flock_pid" 2>/dev/null || true; fi # still waiting for the lock
	done
	wait "$flock_pid" 2>/dev/null || true
}
trap cleanup EXIT

boot() { # N: boot in the background, wait until systemd is up (or the box is gone)
	local n=$1 ns=
	echo "boottest: boot $n (waiting for $lock)"
	flock -w 1800 "$lock" systemd-nspawn -D "$box" --register=no --keep-unit \
		--private-network --console=passive \
		--bind-ro="$work/repos":/var/tmp/repos -b >"$work/boot$n.log" 2>&1 &
	flock_pid=$!
	pid1=
	for _ in $(seq 3600); do
		kill -0 "$flock_pid" 2>/dev/null || return 0
		ns=$(pgrep -P "$flock_pid" -x systemd-nspawn || true)
		# PID 1 is nspawn's child once it has exec'd systemd (before, an
		# intermediate child of nspawn's own)
		[ -n "$ns" ] && pid1=$(pgrep -P "$ns" -x systemd || true)
		[ -n "$pid1" ] && break
		sleep 0.5
	done
	[ -n "$pid1" ] || fail "boot $n: no PID 1"
	timeout 120 nsenter -t "$pid1" -a systemctl is-system-running --wait >/dev/null || true
}
inbox() { timeout 300 nsenter -t "$pid1" -a env -i PATH=/usr/sbin:/usr/bin HOME=/root LANG=C.UTF-8 "$@"; }
ended() { # N WANT: wait for nspawn to end, check its exit status
	local rc=0
	for _ in $(seq 240); do kill -0 "$flock_pid" 2>/dev/null || break; sleep 0.5; done
	kill -0 "$flock_pid" 2>/dev/null && fail "boot $1: still running"
	wait "$flock_pid" || rc=$?
	flock_pid=
	echo "boottest: boot $1 ended with exit status $rc"
	[ "$rc" = "$2" ] || fail "boot $1: nspawn exit $rc, want $2 (see $work/boot$1.log)"
}

t0=$SECONDS
boot 1
bootid1=$(inbox cat /proc/sys/kernel/random/boot_id)
step "boot 1 ($bootid1): download"
inbox dnf -y upgrade --refresh
inbox dnf -y install dnf-plugin-system-upgrade
inbox dnf -y system-upgrade download --releasever=29
step "boot 1: dnf system-upgrade reboot"
inbox dnf system-upgrade reboot || true # the reboot may cut it short
ended 1 133

t=$SECONDS
boot 2 # system-update.target: the upgrade runs, then reboots
ended 2 133
echo "boottest: upgrade boot took $((SECONDS - t)) s"

boot 3
[ -n "$pid1" ] || fail "boot 3 ended at once (see $work/boot3.log)"
step "boot 3: checks"
inbox grep -qx 'VERSION_ID=29' /etc/os-release || fail "os-release: $(inbox grep VERSION_ID /etc/os-release)"
[ "$(inbox rpm -q fedora-release)" = fedora-release-29-1.noarch ] || fail "rpm -q fedora-release"
! inbox test -e /system-update || fail "/system-update still there"
inbox journalctl --no-pager -b -1 -u dnf-system-upgrade.service -u dnf-system-upgrade-cleanup.service | tail -n 6
if inbox journalctl --no-pager -b -1 -u dnf-system-upgrade.service | grep -q "Failed with result"; then
	fail "dnf-system-upgrade.service failed in boot 2"
fi
out=$(inbox dnf system-upgrade log)
echo "$out"
grep -q '^1 / .* 27→29$' <<<"$out" || fail "system-upgrade log lists no 27→29 boot"
inbox systemctl poweroff || true
ended 3 0
echo "boottest: PASS in $((SECONDS - t0)) s"
