#!/bin/bash
# build-repos.sh OUTDIR — the lab's "Fedora" package repositories.
#
# Builds, with Debian's rpmbuild and createrepo_c, one dnf repository per
# release (27, 29, 31) under OUTDIR/27, OUTDIR/29, OUTDIR/31, each holding
# noarch packages:
#
#   fedora-release-N       /usr/lib/os-release (Fedora N Server Edition),
#                          /etc/os-release -> ../usr/lib/os-release,
#                          /etc/fedora-release (+ system-release,
#                          redhat-release links); provides system-release,
#                          system-release(releasever) = N, fedora-release = N
#   nbh-runtime-N.0        /usr/share/nbh-runtime/VERSION (N) and a
#                          per-release feature file: py36 in 27, py37 in 29,
#                          py38 in 31 (one removed, one added each upgrade);
#                          its %post blocks (a gate) while the box has
#                          /etc/boxswap-lab-gate-post (a FIFO: the tests'
#                          gate), writing /var/lib/boxswap-lab-gate-post
#   (fedora-release-N's %pre fails while the box has
#   /etc/boxswap-lab-fail-upgrade: an upgrade that does not take)
#   nbh-legacy-1.0         27 only; obsoleted by nbh-compat (29, 31), so a
#                          distro-sync 27 -> 29 really replaces a package
#   dnf-plugin-system-upgrade   the same in every repository: the lab's port
#                          of upstream's plugin (system_upgrade.py, next to
#                          this script) into Debian dnf's plugin directory,
#                          dnf-system-upgrade.service (wanted by
#                          system-update.target) and
#                          dnf-system-upgrade-cleanup.service
#
# No package requires anything: in a box the rpmdb knows only these
# packages (Debian's own files are dpkg's), so rpm must not look for
# python3, systemd, … there.
#
# Idempotent: OUTDIR/.done holds a hash of the inputs (this script, the
# plugin, the unit files, rpmbuild's version); when it matches, nothing is
# done. Needs: rpmbuild (Debian package rpm), createrepo_c (createrepo-c).
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=$1
releases=(27 29 31)
# Where Debian's dnf 4.14 loads plugins from (dnf.const.PLUGINPATH).
pluginpath=/usr/lib/python3/dist-packages/dnf-plugins
unitdir=/usr/lib/systemd/system
plugin_version=4.4.0

inputs=("$here/build-repos.sh" "$here/system_upgrade.py"
	"$here/dnf-system-upgrade.service" "$here/dnf-system-upgrade-cleanup.service")
for f in "${inputs[@]}"; do
	[ -f "$f" ] || { echo "$0: missing input $f" >&2; exit 1; }
done
for t in rpmbuild createrepo_c; do
	command -v "$t" >/dev/null || { echo "$0: $t not found (apt-get install rpm createrepo-c)" >&2; exit 1; }
done
hash=$( { cat "${inputs[@]}"; rpmbuild --version; echo "${releases[*]}"; } | sha256sum | cut -d' ' -f1)
if [ -f "$out/.done" ] && [ "$(cat "$out/.done")" = "$hash" ]; then
	echo "build-repos: $out is up to date"
	exit 0
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/build-repos.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{SPECS,SOURCES,BUILD,BUILDROOT,RPMS,SRPMS}
cp "$here/system_upgrade.py" "$here/dnf-system-upgrade.service" \
	"$here/dnf-system-upgrade-cleanup.service" "$work/SOURCES/"

# Common header: no automatic requires/provides, no brp post-processing
# (no bytecompiling, no stripping), a fixed build date.
common() {
	cat <<EOF
License: MIT
BuildArch: noarch
AutoReqProv: no
%global __os_install_post %{nil}
%global _build_id_links none
EOF
}

spec_release() { # N
	local n=$1
	common
	cat <<EOF
Name: fedora-release
Version: $n
Release: 1
Summary: Fedora release files (boxswap lab)
Provides: system-release
Provides: system-release(releasever) = $n
Provides: fedora-release-server = $n

%description
Fedora $n release files, built for the boxswap lab.

%pre -p <lua>
-- The tests of a failed upgrade boot: this package, the first the upgrade
-- installs, refuses to install while the flag is there, so the offline
-- transaction fails and the box comes back on its old release. Lua, not
-- sh: a shell scriptlet would require /bin/sh, which no package of the
-- box's rpmdb provides.
if posix.access("/etc/boxswap-lab-fail-upgrade") then
	io.stderr:write("boxswap lab: fedora-release-$n refuses to install (/etc/boxswap-lab-fail-upgrade is there)\n")
	error("boxswap lab: fedora-release-$n refuses to install")
end

%install
mkdir -p %{buildroot}/etc %{buildroot}/usr/lib
cat > %{buildroot}/usr/lib/os-release <<'OS'
NAME=Fedora
VERSION="$n (Server Edition)"
ID=fedora
VERSION_ID=$n
PLATFORM_ID="platform:f$n"
PRETTY_NAME="Fedora $n (Server Edition)"
ANSI_COLOR="0;34"
CPE_NAME="cpe:/o:fedoraproject:fedora:$n"
HOME_URL="https://fedoraproject.org/"
SUPPORT_URL="https://fedoraproject.org/wiki/Communicating_and_getting_help"
BUG_REPORT_URL="https://bugzilla.redhat.com/"
REDHAT_BUGZILLA_PRODUCT="Fedora"
REDHAT_BUGZILLA_PRODUCT_VERSION=$n
REDHAT_SUPPORT_PRODUCT="Fedora"
REDHAT_SUPPORT_PRODUCT_VERSION=$n
PRIVACY_POLICY_URL="https://fedoraproject.org/wiki/Legal:PrivacyPolicy"
VARIANT="Server Edition"
VARIANT_ID=server
OS
echo "Fedora release $n (Twenty Something)" > %{buildroot}/etc/fedora-release
ln -s ../usr/lib/os-release %{buildroot}/etc/os-release
ln -s fedora-release %{buildroot}/etc/system-release
ln -s fedora-release %{buildroot}/etc/redhat-release

%files
/usr/lib/os-release
/etc/os-release
%config %attr(0644,root,root) /etc/fedora-release
/etc/system-release
/etc/redhat-release
EOF
}

spec_runtime() { # N FEATURE
	local n=$1 feature=$2
	common
	cat <<EOF
Name: nbh-runtime
Version: $n.0
Release: 1
Summary: nbhosting runtime marker (boxswap lab)
Requires: fedora-release >= $n

%description
Changes with every release: VERSION holds the release, features/ one
file that the next release removes.

%post -p <lua>
-- The tests' gate inside an rpm transaction (in the upgrade boot, where
-- /run is new: the gate is on disk). While /etc/boxswap-lab-gate-post is
-- a FIFO, the transaction writes the marker and then blocks on it until
-- the test writes to it, kills dnf or cuts the power: the fault lands
-- here, never a moment later.
if posix.access("/etc/boxswap-lab-gate-post") then
	local f = io.open("/var/lib/boxswap-lab-gate-post", "w")
	f:write("nbh-runtime-$n %post started\n")
	f:close()
	local g = io.open("/etc/boxswap-lab-gate-post", "r")
	if g then g:read("*l"); g:close() end
end

%install
mkdir -p %{buildroot}/usr/share/nbh-runtime/features
echo $n > %{buildroot}/usr/share/nbh-runtime/VERSION
echo "$feature" > %{buildroot}/usr/share/nbh-runtime/features/$feature

%files
%dir /usr/share/nbh-runtime
%dir /usr/share/nbh-runtime/features
/usr/share/nbh-runtime/VERSION
/usr/share/nbh-runtime/features/$feature
EOF
}

spec_legacy() {
	common
	cat <<EOF
Name: nbh-legacy
Version: 1.0
Release: 1
Summary: nbhosting legacy helpers, gone after Fedora 27 (boxswap lab)

%description
Present in the 27 repository only; nbh-compat obsoletes it.

%install
mkdir -p %{buildroot}/usr/share/nbh-legacy
echo legacy > %{buildroot}/usr/share/nbh-legacy/README

%files
/usr/share/nbh-legacy
EOF
}

spec_compat() { # N
	local n=$1
	common
	cat <<EOF
Name: nbh-compat
Version: $n.0
Release: 1
Summary: nbhosting helpers replacing nbh-legacy (boxswap lab)
Obsoletes: nbh-legacy < 2
Provides: nbh-legacy = 2

%description
Replaces nbh-legacy from Fedora 29 on.

%install
mkdir -p %{buildroot}/usr/share/nbh-compat
echo compat $n > %{buildroot}/usr/share/nbh-compat/README

%files
/usr/share/nbh-compat
EOF
}

spec_plugin() {
	common
	cat <<EOF
Name: dnf-plugin-system-upgrade
Version: $plugin_version
Release: 1.lab
Summary: System Upgrade Plugin for DNF (boxswap lab port)
Source0: system_upgrade.py
Source1: dnf-system-upgrade.service
Source2: dnf-system-upgrade-cleanup.service
Provides: dnf-command(system-upgrade)
Provides: dnf-command(offline-upgrade)
Provides: dnf-command(offline-distrosync)
Provides: python3-dnf-plugin-system-upgrade = %{version}-%{release}

%description
The system-upgrade command (download, reboot, upgrade, log, clean) for
Debian's dnf 4.14, ported from dnf-plugins-core's plugins/system_upgrade.py.

%install
mkdir -p %{buildroot}$pluginpath %{buildroot}$unitdir/system-update.target.wants
install -m 0644 %{SOURCE0} %{buildroot}$pluginpath/system_upgrade.py
install -m 0644 %{SOURCE1} %{SOURCE2} %{buildroot}$unitdir/
ln -s ../dnf-system-upgrade.service %{buildroot}$unitdir/system-update.target.wants/dnf-system-upgrade.service

%files
$pluginpath/system_upgrade.py
$unitdir/dnf-system-upgrade.service
$unitdir/dnf-system-upgrade-cleanup.service
$unitdir/system-update.target.wants/dnf-system-upgrade.service
EOF
}

build() { # NAME SPECTEXT(stdin)
	local spec="$work/SPECS/$1.spec"
	cat > "$spec"
	rpmbuild -bb --nodeps --quiet \
		--define "_topdir $work" \
		--define "_rpmdir $work/RPMS" \
		--define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
		--define "source_date_epoch_from_changelog 0" \
		--define "clamp_mtime_to_source_date_epoch 1" \
		--define "use_source_date_epoch_as_buildtime 1" \
		"$spec" >"$work/$1.log" 2>&1 || { cat "$work/$1.log" >&2; exit 1; }
}

export SOURCE_DATE_EPOCH=1514764800 # 2018-01-01
features=([27]=py36 [29]=py37 [31]=py38)
build dnf-plugin-system-upgrade < <(spec_plugin)
plugin_rpm=$work/RPMS/dnf-plugin-system-upgrade-$plugin_version-1.lab.noarch.rpm
build nbh-legacy < <(spec_legacy)
for n in "${releases[@]}"; do
	build "fedora-release-$n" < <(spec_release "$n")
	build "nbh-runtime-$n" < <(spec_runtime "$n" "${features[$n]}")
	[ "$n" -gt 27 ] && build "nbh-compat-$n" < <(spec_compat "$n")
done

for n in "${releases[@]}"; do
	rm -rf "$out/$n.new"
	mkdir -p "$out/$n.new/Packages"
	cp "$plugin_rpm" "$work/RPMS/fedora-release-$n-1.noarch.rpm" \
		"$work/RPMS/nbh-runtime-$n.0-1.noarch.rpm" "$out/$n.new/Packages/"
	if [ "$n" -eq 27 ]; then
		cp "$work/RPMS/nbh-legacy-1.0-1.noarch.rpm" "$out/$n.new/Packages/"
	else
		cp "$work/RPMS/nbh-compat-$n.0-1.noarch.rpm" "$out/$n.new/Packages/"
	fi
	createrepo_c --quiet --no-database "$out/$n.new"
	rm -rf "$out/$n"
	mv "$out/$n.new" "$out/$n"
done
echo "$hash" > "$out/.done"
echo "build-repos: built ${releases[*]} in $out"
