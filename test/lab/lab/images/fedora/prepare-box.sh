#!/bin/bash
# prepare-box.sh ROOT REPODIR — make a Debian rootfs an "f27" box with real
# rpm state.
#
# ROOT is a Debian 12 rootfs that already has Debian's dnf and rpm
# (mmdebstrap --include=…,dnf,rpm); REPODIR is build-repos.sh's OUTDIR.
# Run as root on the machine; ROOT is entered with chroot (no mounts).
#
# - rpm's database is /var/lib/rpm in the box: Debian's rpm defaults to
#   ~/.rpmdb (%_dbpath is `echo ~/.rpmdb`, so it follows $HOME), which
#   would give root over ssh, a systemd unit and sudo different databases.
#   /etc/rpm/macros.dbpath pins it; /root/.rpmdb -> ../var/lib/rpm makes
#   the machine's own rpm/dnf (Debian macros, --root/--installroot=ROOT)
#   land in the same database.
# - fedora-release-27, nbh-runtime-27.0 and nbh-legacy are installed with
#   the box's own dnf from a copy of REPODIR/27; /etc/os-release then reads
#   Fedora 27 (rpm overwrites base-files' /usr/lib/os-release).
# - /etc/yum.repos.d/lab.repo: baseurl=http://198.18.0.2/fedora/$releasever/,
#   gpgcheck=0; dnf.conf's reposdir is that directory only and any other
#   .repo file there is renamed *.repo.disabled.
# - dnf detects releasever 27 from the rpmdb (system-release(releasever),
#   the first of dnf.const.DISTROVERPKG): checked at the end.
# - /var/log/journal is created so the journal is persistent and
#   `dnf system-upgrade log` can list the boots of past upgrades; an empty
#   /etc/machine-id gets a fixed random id (else each boot has a new one
#   and journalctl does not find the previous boots).
#
# Idempotent: running it again on a prepared ROOT changes nothing.
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 ROOT REPODIR" >&2
	exit 2
fi
root=$(cd "$1" && pwd)
repodir=$(cd "$2" && pwd)
release=27
labrepo_url='http://198.18.0.2/fedora/$releasever/'

[ "$(id -u)" = 0 ] || { echo "$0: run as root" >&2; exit 1; }
[ "$root" != / ] || { echo "$0: ROOT must not be /" >&2; exit 1; }
for f in usr/bin/dnf usr/bin/rpm usr/bin/python3; do
	[ -x "$root/$f" ] || { echo "$0: $root has no /$f (mmdebstrap --include=dnf,rpm)" >&2; exit 1; }
done
[ -f "$repodir/$release/repodata/repomd.xml" ] || { echo "$0: no repository $repodir/$release (run build-repos.sh)" >&2; exit 1; }

inbox() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

# rpm's database: one place, whoever asks.
mkdir -p "$root/etc/rpm" "$root/var/lib/rpm"
echo '%_dbpath /var/lib/rpm' > "$root/etc/rpm/macros.dbpath"
if [ ! -L "$root/root/.rpmdb" ]; then
	if [ -e "$root/root/.rpmdb" ]; then
		echo "$0: $root/root/.rpmdb exists and is not the link to /var/lib/rpm; remove it" >&2
		exit 1
	fi
	mkdir -p "$root/root"
	ln -s ../var/lib/rpm "$root/root/.rpmdb"
fi

# Repositories: the lab's only.
mkdir -p "$root/etc/yum.repos.d"
for f in "$root"/etc/yum.repos.d/*.repo; do
	[ -e "$f" ] || continue
	[ "$(basename "$f")" = lab.repo ] || mv "$f" "$f.disabled"
done
cat > "$root/etc/yum.repos.d/lab.repo" <<EOF
[lab]
name=Fedora \$releasever - boxswap lab
baseurl=$labrepo_url
enabled=1
gpgcheck=0
repo_gpgcheck=0
metadata_expire=1m
EOF
conf=$root/etc/dnf/dnf.conf
if ! grep -q '^reposdir=' "$conf"; then
	sed -i 's|^\[main\]$|[main]\nreposdir=/etc/yum.repos.d|' "$conf"
fi
grep -q '^reposdir=/etc/yum.repos.d$' "$conf" || { echo "$0: could not set reposdir in $conf" >&2; exit 1; }

# The f27 packages, from a copy of the repository inside the box.
tmprepo=var/tmp/boxswap-prepare-repo
rm -rf "${root:?}/$tmprepo"
cp -a "$repodir/$release" "$root/$tmprepo"
trap 'rm -rf "${root:?}/$tmprepo"' EXIT
inbox dnf -y -q --releasever=$release --disablerepo='*' \
	--repofrompath=lab-prepare,file:///$tmprepo --setopt=lab-prepare.gpgcheck=0 \
	--setopt=cachedir=/var/tmp/boxswap-prepare-cache \
	install fedora-release nbh-runtime nbh-legacy
rm -rf "$root/var/tmp/boxswap-prepare-cache"

# Persistent journal (system-upgrade log reads past boots), kept under a
# machine id that stays the same across boots: an empty /etc/machine-id
# (mmdebstrap leaves it so) gets a new random id at every boot, and
# journalctl would not see the previous boots' files. Each box its own id:
# prepare each box from its own copy of the base rootfs.
mkdir -p "$root/var/log/journal"
if [ ! -s "$root/etc/machine-id" ]; then
	python3 -c 'import uuid; print(uuid.uuid4().hex)' > "$root/etc/machine-id"
fi

# Checks: rpm and dnf agree, os-release reads Fedora 27.
got=$(inbox rpm -q --qf '%{VERSION}\n' fedora-release)
[ "$got" = $release ] || { echo "$0: rpm -q fedora-release: $got" >&2; exit 1; }
got=$(inbox python3 -c 'import dnf.rpm; print(dnf.rpm.detect_releasever("/"))')
[ "$got" = $release ] || { echo "$0: dnf detects releasever $got, not $release" >&2; exit 1; }
grep -qx "VERSION_ID=$release" "$root/etc/os-release" || { echo "$0: /etc/os-release is not Fedora $release" >&2; exit 1; }
echo "prepare-box: $root is Fedora $release: $(inbox rpm -qa | sort | tr '\n' ' ')"
