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
