#!/usr/bin/env bash
# deps.sh: installs, on a fresh Debian machine, what the lab and the tests
# need (apt-get, as root), only when something is missing. The lab builds
# its base rootfs and package repositories itself, once, under
# /var/cache/boxswap-lab.
set -euo pipefail
# binary → Debian package
need=(
	/usr/sbin/sshd:openssh-server rsync:rsync mmdebstrap:mmdebstrap
	systemd-nspawn:systemd-container ip:iproute2 ss:iproute2 nsenter:util-linux
	apt-ftparchive:apt-utils arping:iputils-arping curl:curl
	dnf:dnf rpm:rpm rpmbuild:rpm createrepo_c:createrepo-c chattr:e2fsprogs
	etcd:etcd-server etcdctl:etcd-client
)
missing=()
for n in "${need[@]}"; do
	bin=${n%%:*} pkg=${n##*:}
	if [[ $bin == /* ]]; then [ -x "$bin" ] && continue; else command -v "$bin" >/dev/null && continue; fi
	missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	echo "deps: installing ${missing[*]}" >&2
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
# The state backend's tests start their own etcd servers (loopback, temporary
# data dirs, free ports); the package's own service must not run on this
# machine (it would listen on 2379 with a data dir nobody cleans): masked.
if command -v systemctl >/dev/null && [ -e /lib/systemd/system/etcd.service ] &&
	[ "$(readlink -f /etc/systemd/system/etcd.service 2>/dev/null)" != /dev/null ]; then
	systemctl stop etcd 2>/dev/null || true
	systemctl disable etcd 2>/dev/null || true
	systemctl mask etcd 2>/dev/null || true
fi
