#!/bin/bash
# selftest.sh [BASE] — the Fedora lab image's upgrade path, in a chroot.
#
# Run as root on the machine. BASE is a Debian 12 rootfs with dnf and rpm
# (mmdebstrap --variant=minbase --include=systemd,systemd-sysv,dbus,python3,dnf,rpm,iproute2
# bookworm BASE MIRROR); without it one is built into $WORK/base, with the
# Debian mirror read from this machine's apt sources (or $MIRROR).
#
# In $WORK (default /var/tmp/boxswap-fedora-selftest): build-repos.sh
# $WORK/repos, a copy of BASE prepared by prepare-box.sh, the repositories
# served by python3's http.server bound to 127.0.0.1 only (lab.repo's host
# is swapped for it; the path /fedora/$releasever/ is the lab's), then, as
# boxswap does on a box:
#   dnf -y upgrade --refresh
#   dnf -y install dnf-plugin-system-upgrade
#   dnf -y system-upgrade download --releasever=29
#   dnf system-upgrade reboot --no-reboot      (/system-update appears)
#   [http server stopped: the upgrade is offline, as at boot]
#   dnf system-upgrade upgrade --no-reboot     (what dnf-system-upgrade.service runs)
# and checks os-release, rpm -q, the obsoleted package, the state file and
# the error messages. No mounts; nothing listens beyond 127.0.0.1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=${WORK:-/var/tmp/boxswap-fedora-selftest}
[ "$(id -u)" = 0 ] || { echo "$0: run as root" >&2; exit 1; }
mkdir -p "$work"
work=$(cd "$work" && pwd)
t0=$SECONDS

fail() { echo "selftest: FAIL: $*" >&2; exit 1; }
step() { echo "selftest: --- $*"; }

host_mirror() {
	local m
	m=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v -- '-security' | head -n1 || true)
	[ -n "$m" ] || m=$(awk '$1=="deb" && $0 !~ /security/ {for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)
	echo "$m"
}

base=${1:-}
if [ -z "$base" ]; then
	base=$work/base
	if [ ! -x "$base/usr/bin/dnf" ]; then
		mirror=${MIRROR:-$(host_mirror)}
		[ -n "$mirror" ] || fail "no Debian mirror in this machine's apt sources; set MIRROR or pass BASE"
		step "mmdebstrap $base from $mirror"
		rm -rf "$base"
		mmdebstrap --quiet --variant=minbase \
			--include=systemd,systemd-sysv,dbus,python3,dnf,rpm,iproute2 \
			bookworm "$base" "$mirror"
	fi
fi
[ -x "$base/usr/bin/dnf" ] && [ -x "$base/usr/bin/rpm" ] || fail "$base has no dnf/rpm"

step "build-repos.sh"
t=$SECONDS
"$here/build-repos.sh" "$work/repos"
echo "selftest: repos in $((SECONDS - t)) s"

box=$work/box
step "prepare-box.sh $box"
rm -rf "$box"
cp -a "$base" "$box"
"$here/prepare-box.sh" "$box" "$work/repos"

# http://127.0.0.1:PORT/fedora/N/ like the lab's http://198.18.0.2/fedora/N/
mkdir -p "$work/www"
ln -sfn "$work/repos" "$work/www/fedora"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$port" >"$work/http.log" 2>&1 &
http_pid=$!
stop_http() {
	if [ -n "${http_pid:-}" ]; then
		kill "$http_pid" 2>/dev/null || true
		wait "$http_pid" 2>/dev/null || true
		http_pid=
	fi
}
trap stop_http EXIT
for _ in $(seq 50); do
	python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/fedora/27/repodata/repomd.xml')" 2>/dev/null && break
	sleep 0.1
done
sed -i "s|^baseurl=http://198.18.0.2/|baseurl=http://127.0.0.1:$port/|" "$box/etc/yum.repos.d/lab.repo"
grep -q "^baseurl=http://127.0.0.1:$port/fedora/\$releasever/$" "$box/etc/yum.repos.d/lab.repo" || fail "lab.repo: $(cat "$box/etc/yum.repos.d/lab.repo")"

inbox() { chroot "$box" /usr/bin/env -i PATH=/usr/sbin:/usr/bin HOME=/root LANG=C.UTF-8 "$@"; }
state=$box/var/lib/dnf/system-upgrade/system-upgrade-state.json
key() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))' "$state" "$1"; }
expect_fail() { # MESSAGE CMD...
	local msg=$1 out
	shift
	if out=$(inbox "$@" 2>&1); then fail "$* succeeded; wanted: $msg"; fi
	grep -qF "$msg" <<<"$out" || fail "$*: wanted '$msg', got: $out"
	echo "selftest: ok: $* -> $(grep -F "$msg" <<<"$out")"
}

step "dnf -y upgrade --refresh"
inbox dnf -y upgrade --refresh
step "dnf -y install dnf-plugin-system-upgrade"
inbox dnf -y install dnf-plugin-system-upgrade
inbox rpm -q dnf-plugin-system-upgrade
[ -L "$box/usr/lib/systemd/system/system-update.target.wants/dnf-system-upgrade.service" ] || fail "unit not wanted by system-update.target"
step "reboot before any download"
expect_fail "system is not ready for upgrade" dnf system-upgrade reboot --no-reboot
expect_fail "Need a --releasever greater than the current system version." dnf -y system-upgrade download --releasever=27
step "dnf -y system-upgrade download --releasever=29"
t=$SECONDS
inbox dnf -y system-upgrade download --releasever=29
echo "selftest: download in $((SECONDS - t)) s"
[ "$(key download_status)" = complete ] || fail "download_status $(key download_status)"
[ "$(key target_releasever)" = 29 ] || fail "target_releasever $(key target_releasever)"
[ "$(key system_releasever)" = 27 ] || fail "system_releasever $(key system_releasever)"
ls "$box"/var/lib/dnf/system-upgrade/lab-*/packages/fedora-release-29-1.noarch.rpm >/dev/null || fail "no downloaded packages"
step "dnf system-upgrade reboot --no-reboot"
inbox dnf system-upgrade reboot --no-reboot
[ "$(readlink "$box/system-update")" = /var/lib/dnf/system-upgrade ] || fail "/system-update: $(ls -l "$box/system-update" 2>&1)"
[ "$(key upgrade_status)" = ready ] || fail "upgrade_status $(key upgrade_status)"
expect_fail "upgrade is already scheduled" dnf system-upgrade reboot --no-reboot

stop_http # the upgrade at boot is offline
step "dnf system-upgrade upgrade --no-reboot (as dnf-system-upgrade.service, repositories offline)"
t=$SECONDS
inbox dnf system-upgrade upgrade --no-reboot
echo "selftest: distro-sync in $((SECONDS - t)) s"
[ ! -e "$box/system-update" ] && [ ! -L "$box/system-update" ] || fail "/system-update still there"
grep -qx 'VERSION_ID=29' "$box/etc/os-release" || fail "/etc/os-release: $(grep VERSION_ID "$box/etc/os-release")"
grep -qx 'VERSION="29 (Server Edition)"' "$box/etc/os-release" || fail "/etc/os-release VERSION"
[ "$(inbox rpm -q fedora-release)" = fedora-release-29-1.noarch ] || fail "rpm -q fedora-release: $(inbox rpm -q fedora-release)"
[ "$(cat "$box/usr/share/nbh-runtime/VERSION")" = 29 ] || fail "nbh-runtime VERSION"
[ -e "$box/usr/share/nbh-runtime/features/py37" ] && [ ! -e "$box/usr/share/nbh-runtime/features/py36" ] || fail "nbh-runtime features"
! inbox rpm -q nbh-legacy >/dev/null || fail "nbh-legacy still installed"
inbox rpm -q nbh-compat >/dev/null || fail "nbh-compat not installed"
[ "$(inbox python3 -c 'import dnf.rpm; print(dnf.rpm.detect_releasever("/"))')" = 29 ] || fail "dnf does not detect 29"
[ "$(key download_status)" = None ] && [ "$(key upgrade_status)" = None ] || fail "state not cleaned"
if ls "$box"/var/lib/dnf/system-upgrade/lab-*/packages/*.rpm >/dev/null 2>&1; then fail "packages not cleaned"; fi
expect_fail "Need a --releasever greater than the current system version." dnf -y system-upgrade download --releasever=27
expect_fail "Need a --releasever greater than the current system version." dnf -y system-upgrade download --releasever=29
step "dnf system-upgrade clean / log"
inbox dnf system-upgrade clean
inbox dnf system-upgrade log || true # no journald in a chroot: "-- no logs were found --"
inbox rpm -qa | sort
echo "selftest: PASS in $((SECONDS - t0)) s ($box)"
