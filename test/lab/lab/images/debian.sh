#!/usr/bin/env bash
# Builds what the lab's Debian boxes boot from, once, into OUT (a cache):
#   OUT/rootfs   a Debian 12 (bookworm) rootfs, the lower layer of every box
#   OUT/repo     an apt repository with bookworm (what the boxes run) and
#                trixie (what a full-upgrade of them needs), served to the
#                boxes over the lab bridge: they have no other network
#   OUT/wheels   a pip wheelhouse (nbh_extras), installed into /usr/local
#                the way an operator does it on Debian
# The packages come from this machine's own Debian mirror (its apt
# sources). Run as root by "lab up"; OUT/.done holds the stamp of a
# complete build.
set -euo pipefail
# Close what the caller left open (a flock, a script's saved stdout):
# mmdebstrap then hands dpkg an fd above 9, which dash cannot redirect.
for fd in /proc/$$/fd/*; do
	fd=${fd##*/}
	if [ "$fd" -gt 2 ] && [ "$fd" -lt 255 ]; then eval "exec $fd>&-"; fi
done
OUT=${1:?usage: debian.sh OUT [EXTRA-PACKAGES]}
EXTRA=${2:-}
FROM=bookworm TO=trixie
PKGS=systemd,systemd-sysv,dbus,openssh-server,rsync,python3,python3-pip,iproute2,nginx-light,iputils-arping,git,curl,ca-certificates,procps
[ -n "$EXTRA" ] && PKGS="$PKGS,$EXTRA"

# The mirror this machine installs from: a deb822 source naming bookworm,
# else a one-line one.
mirror() {
	local m=""
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		m=$(awk -v s=$FROM '/^URIs:/{u=$2} /^Suites:/{for(i=2;i<=NF;i++) if($i==s){print u; exit}}' "$f")
		[ -n "$m" ] && break
	done
	if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
		m=$(awk -v s=$FROM '$1=="deb" {i=2; if($2 ~ /^\[/) while($i !~ /\]$/) i++; if($2 ~ /^\[/) i++; if($(i+1)==s){print $i; exit}}' /etc/apt/sources.list)
	fi
	[ -n "$m" ] || { echo "debian.sh: no apt source for $FROM on this machine: add one to /etc/apt/sources.list.d" >&2; exit 1; }
	echo "$m"
}
MIRROR=$(mirror)

rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp"
T=$OUT.tmp

echo "debian.sh: $FROM rootfs from $MIRROR" >&2
mmdebstrap --variant=minbase --include="$PKGS" --skip=cleanup/apt/cache \
	--aptopt='Acquire::Retries "3"' "$FROM" "$T/rootfs" "$MIRROR" >&2

# The bookworm pool: the packages the rootfs was built from.
mkdir -p "$T/repo/pool/$FROM" "$T/repo/pool/$TO"
mv "$T"/rootfs/var/cache/apt/archives/*.deb "$T/repo/pool/$FROM/"

# The trixie pool: what a full-upgrade of that rootfs downloads, found by
# running it download-only in a throwaway copy (not for the Fedora path's
# base: NO_UPGRADE_POOL=1). Its versions are pinned by PINS (checked in
# beside this script): a build a week later gets the same packages while
# the mirror has them, and says what changed when it does not.
PINS=$(dirname "${BASH_SOURCE[0]}")/debian-$TO.pins
if [ -z "${NO_UPGRADE_POOL:-}" ]; then
echo "debian.sh: the $TO packages a full-upgrade needs" >&2
cp -a "$T/rootfs" "$T/probe"
echo "deb $MIRROR $TO main" > "$T/probe/etc/apt/sources.list"
cp /etc/resolv.conf "$T/probe/etc/resolv.conf" 2>/dev/null || true
if [ -r "$PINS" ]; then
	awk 'NF == 2 {printf "Package: %s\nPin: version %s\nPin-Priority: 1001\n\n", $1, $2}' "$PINS" \
		> "$T/probe/etc/apt/preferences.d/lab-pins"
fi
chroot "$T/probe" apt-get -q update >&2
chroot "$T/probe" env DEBIAN_FRONTEND=noninteractive apt-get -q -y --download-only \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold full-upgrade >&2
mv "$T"/probe/var/cache/apt/archives/*.deb "$T/repo/pool/$TO/"
rm -rf "$T/probe"
for f in "$T/repo/pool/$TO"/*.deb; do dpkg-deb -W --showformat='${Package} ${Version}\n' "$f"; done | sort > "$T/$TO.versions"
if ! diff -u "$PINS" "$T/$TO.versions" > "$T/$TO.pins-diff" 2>&1; then
	echo "debian.sh: the $TO packages differ from the pinned set ($PINS): see $OUT/$TO.pins-diff" >&2
else
	rm -f "$T/$TO.pins-diff"
fi
fi

# nbh-gate and nbh-gate-rerun: packages of the lab's own, version 1 in the
# $FROM set (installed in the rootfs), 2 in the $TO set. Their preinst runs
# the tests' gates "dpkg-preinst" and "dpkg-rerun" (lab.GateShell): an
# armed gate holds dpkg inside the upgrade's transaction, in the middle of
# a package, for a test to kill dpkg or cut the power there. nbh-gate 2
# pre-depends on $TO's libc6, so it unpacks after at least that package
# of the transaction; nbh-gate-rerun 2 on nbh-gate 2, so after a dpkg
# killed in nbh-gate's preinst it is left to the transaction's next run
# (a recovery's apt-get -f install does not upgrade it).
gate_deb() { # NAME GATE VERSION POOL [PRE-DEPENDS]
	local d=$T/$1-$3
	mkdir -p "$d/DEBIAN" "$d/usr/share/$1"
	echo "$3" > "$d/usr/share/$1/VERSION"
	{
		echo "Package: $1"
		echo "Version: $3"
		echo "Architecture: all"
		echo "Maintainer: boxswap lab <lab@localhost>"
		[ -n "${5:-}" ] && echo "Pre-Depends: $5"
		echo "Description: the boxswap lab's gate $2 inside a package transaction"
	} > "$d/DEBIAN/control"
	cat > "$d/DEBIAN/preinst" <<SH
#!/bin/sh
g=/run/lab-gate/$2; if [ -p "\$g/fifo" ]; then echo \$\$ >> "\$g/reached"; read -r _ < "\$g/fifo" || true; fi
exit 0
SH
	chmod 755 "$d/DEBIAN/preinst"
	dpkg-deb --root-owner-group --build "$d" "$T/repo/pool/$4/$1_$3_all.deb" >&2
	rm -rf "$d"
	if [ "$3" = 1 ]; then
		cp "$T/repo/pool/$4/$1_$3_all.deb" "$T/rootfs/tmp/"
		chroot "$T/rootfs" dpkg -i "/tmp/$1_$3_all.deb" >&2
		rm -f "$T/rootfs/tmp/$1_$3_all.deb"
	fi
}
gate_deb nbh-gate dpkg-preinst 1 "$FROM"
gate_deb nbh-gate-rerun dpkg-rerun 1 "$FROM"
if [ -z "${NO_UPGRADE_POOL:-}" ]; then
	libc=$(dpkg-deb -f "$T"/repo/pool/"$TO"/libc6_*_amd64.deb Version)
	gate_deb nbh-gate dpkg-preinst 2 "$TO" "libc6 (>= $libc)"
	gate_deb nbh-gate-rerun dpkg-rerun 2 "$TO" "nbh-gate (>= 2)"
fi

for s in $FROM $TO; do
	d=$T/repo/dists/$s/main/binary-amd64
	mkdir -p "$d"
	(cd "$T/repo" && apt-ftparchive packages "pool/$s") > "$d/Packages"
	gzip -9kn "$d/Packages"
	apt-ftparchive -o "APT::FTPArchive::Release::Suite=$s" -o "APT::FTPArchive::Release::Codename=$s" \
		-o APT::FTPArchive::Release::Components=main -o APT::FTPArchive::Release::Architectures=amd64 \
		release "$T/repo/dists/$s" > "$T/repo/dists/$s/Release.tmp"
	mv "$T/repo/dists/$s/Release.tmp" "$T/repo/dists/$s/Release"
done

# A third-party repository (empty, suite "stable"), as operators add for
# nodesource or docker: the apt method must list it and disable it.
mkdir -p "$T/thirdparty/dists/stable/main/binary-amd64"
: > "$T/thirdparty/dists/stable/main/binary-amd64/Packages"
gzip -9kn "$T/thirdparty/dists/stable/main/binary-amd64/Packages"
apt-ftparchive -o APT::FTPArchive::Release::Suite=stable -o APT::FTPArchive::Release::Components=main \
	-o APT::FTPArchive::Release::Architectures=amd64 release "$T/thirdparty/dists/stable" > "$T/thirdparty/Release.tmp"
mv "$T/thirdparty/Release.tmp" "$T/thirdparty/dists/stable/Release"

# A wheel an operator installed with pip: pure python, made here.
mkdir -p "$T/wheels"
python3 - "$T/wheels" <<'PY'
import base64, hashlib, sys, zipfile
name, ver = "nbh_extras", "1.0"
files = {
    f"{name}/__init__.py": b'VERSION = "1.0"\n',
    f"{name}-{ver}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: nbh-extras\nVersion: {ver}\n".encode(),
    f"{name}-{ver}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: boxswap-lab\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
def rec(data):
    h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={h},{len(data)}"
record = "".join(f"{p},{rec(d)}\n" for p, d in files.items()) + f"{name}-{ver}.dist-info/RECORD,,\n"
files[f"{name}-{ver}.dist-info/RECORD"] = record.encode()
with zipfile.ZipFile(f"{sys.argv[1]}/{name}-{ver}-py3-none-any.whl", "w") as z:
    for p, d in files.items():
        z.writestr(p, d)
PY

# The box's own configuration: the lab mirror only, pip from the lab's
# wheelhouse (PEP 668 left as Debian ships it), and the operator's pip
# package in /usr/local.
R=$T/rootfs
rm -f "$R/etc/apt/sources.list"
cat > "$R/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: http://198.18.0.2/debian
Suites: $FROM
Components: main
Trusted: yes
SRC
echo "deb [trusted=yes] http://198.18.0.2/thirdparty stable main" > "$R/etc/apt/sources.list.d/nbh-thirdparty.list"
cat > "$R/etc/pip.conf" <<'PIP'
[global]
no-index = true
find-links = http://198.18.0.2/wheels/
trusted-host = 198.18.0.2
PIP
mkdir -p "$R/tmp/wheels" && cp "$T"/wheels/*.whl "$R/tmp/wheels/"
chroot "$R" pip3 install -q --break-system-packages --no-index --find-links /tmp/wheels nbh_extras >&2
rm -rf "$R/tmp/wheels" "$R"/var/lib/apt/lists/*_dists_* "$R/etc/ssh"/ssh_host_*
# dpkg without its fsyncs: a lab crash keeps this machine's page cache, so
# they buy nothing here, and on a busy disk they make an upgrade minutes long.
echo force-unsafe-io > "$R/etc/dpkg/dpkg.cfg.d/lab-unsafe-io"
# No machine-id: each box gets its own at first boot.
: > "$R/etc/machine-id"

rm -rf "$OUT"
mv "$T" "$OUT"
echo "debian.sh: done: $(du -sh "$OUT/rootfs" | cut -f1) rootfs, $(ls "$OUT/repo/pool/$TO" | wc -l) $TO packages" >&2
