#!/usr/bin/env bash
# Builds what the lab's "Fedora" boxes boot from, once, into OUT (a cache):
#   OUT/base/rootfs  a Debian 12 rootfs with Debian's dnf and rpm, made an
#                    f27 box with real rpm state (fedora/prepare-box.sh)
#   OUT/base/wheels  the pip wheelhouse (as debian.sh)
#   OUT/repos/N      one dnf repository per release (fedora/build-repos.sh):
#                    fedora-release, packages that change between releases,
#                    and the lab's dnf-plugin-system-upgrade
# Run as root by "lab up -os fedora".
set -euo pipefail
OUT=${1:?usage: fedora.sh OUT}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$OUT"
NO_UPGRADE_POOL=1 bash "$here/debian.sh" "$OUT/base" dnf,rpm
bash "$here/fedora/build-repos.sh" "$OUT/repos"
bash "$here/fedora/prepare-box.sh" "$OUT/base/rootfs" "$OUT/repos"
# Each box makes its own machine id at its first boot (and keeps it in its
# overlay): the journal that dnf system-upgrade log reads needs it fixed.
: > "$OUT/base/rootfs/etc/machine-id"
