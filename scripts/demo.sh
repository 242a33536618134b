#!/usr/bin/env bash
# demo.sh: the README's first command (make demo). Rehearses a whole boxswap
# cycle on two real boxes on this machine (test/lab, the systemd kind:
# systemd-nspawn containers with systemd as PID 1, in network namespaces of
# their own, upgraded for real): builds boxswap and the lab, starts a lab in a
# temporary directory, runs boxswap check and the five boxswap --yes next,
# printing where the pair stands and which box answers each function's
# address after every transition, checks it ends with both boxes on the new
# release, production on thurst, development on thermals and each address
# held by exactly one box, and always takes the lab down. Exits non-zero if
# anything failed.
#
# OS=debian (default: Debian 12 to 13 with apt) or OS=fedora (27 to 29 with
# dnf system-upgrade). Needs Linux, root and Go; installs what the lab needs
# with apt-get (scripts/deps.sh); the first run builds the base rootfs and
# repositories into /var/cache/boxswap-lab. Every address lives in network
# namespaces the lab makes: nothing is added to this machine's network.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
OS=${OS:-debian}

if [ -t 1 ]; then
	say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[ "$(uname -s)" = Linux ] || die "the lab needs Linux (namespaces, systemd-nspawn)"
[ "$(id -u)" = 0 ] || die "the lab needs root (namespaces, overlayfs, systemd-nspawn): run sudo make demo"
command -v "$GO" >/dev/null || die "no go in PATH: install Go, or set GO=/path/to/go"
bash scripts/deps.sh

say "building bin/boxswap and bin/lab"
"$GO" build -o bin/boxswap ./cmd/boxswap
"$GO" build -o bin/lab ./test/lab
BOXSWAP=$PWD/bin/boxswap LAB=$PWD/bin/lab

dir=$(mktemp -d /tmp/boxswap-demo.XXXXXX)
# finish may run in the middle of a redirected command (Ctrl-C during a
# next whose output goes to a log): it writes to the script's own stdout
# and stderr, saved here as fds 8 and 9.
exec 8>&1 9>&2
finish() {
	local code=$?
	trap - EXIT INT TERM
	exec 1>&8 2>&9
	if [ -f "$dir/lab.json" ]; then
		say "taking the lab down"
		"$LAB" down -dir "$dir" || code=1
	fi
	rm -rf "$dir"
	if [ "$code" = 0 ]; then
		echo "demo: ok"
	else
		echo "demo: FAILED (exit $code)" >&2
	fi
	exit "$code"
}
trap finish EXIT
trap 'exit 130' INT TERM

begin=$(date +%s%N)
say "starting the lab in $dir ($OS)"
"$LAB" up -dir "$dir" -os "$OS"
eval "$("$LAB" env -dir "$dir")"
cfg=$dir/boxes.yaml
# The operator's side runs in the lab's network namespace.
op() { ip netns exec "$NETNS" "$@"; }
bs() { op "$BOXSWAP" -c "$cfg" "$@"; }

# answer ADDR prints what the address answers over HTTP (the app says
# "BOX RELEASE FUNCTION"; nginx's 502 with the app stopped is down), or
# "nothing".
answer() {
	local body
	body=$(op curl -s -f -m 5 "http://$1/" 2>/dev/null) || body=""
	echo "${body:-nothing}"
}

# holders ADDR prints the boxes whose interface holds ADDR (a kernel fact,
# read from each box's namespace).
holders() {
	local out=""
	for b in thurst thermals; do
		ns=THURST_NETNS
		[ "$b" = thermals ] && ns=THERMALS_NETNS
		if ip -n "${!ns}" -4 -o addr show dev host0 | grep -qw "inet $1/24"; then
			out="$out${out:+ }$b"
		fi
	done
	echo "${out:-none}"
}

# release BOX prints VERSION_ID from the box's /etc/os-release, over ssh.
release() {
	local host=198.18.0.11
	[ "$1" = thermals ] && host=198.18.0.12
	op ssh -i "$dir/id_ed25519" -o UserKnownHostsFile="$dir/known_hosts" -o StrictHostKeyChecking=yes \
		-o BatchMode=yes "root@$host" '. /etc/os-release && echo "$VERSION_ID"'
}

show() {
	bs where
	echo
	echo "production  address ($PROD) answers: $(answer "$PROD"); held by: $(holders "$PROD")"
	echo "development address ($DEV) answers: $(answer "$DEV"); held by: $(holders "$DEV")"
}

say "boxswap check"
bs check
say "boxswap where"
show

n=0 moving=0
for event in upgrade-dev redirect upgrade-prod switch-back epilogue; do
	n=$((n + 1))
	say "[$n/5] boxswap --yes next ($event)"
	t0=$(date +%s%N)
	# The remote commands' output ("HH:MM:SS box| ...") stays in the log.
	if ! bs --yes --plain next >"$dir/next-$n.log" 2>&1; then
		tail -n 60 "$dir/next-$n.log"
		die "boxswap next ($event) failed; the lines above are the end of its output"
	fi
	grep -Ev '^[0-9]{2}:[0-9]{2}:[0-9]{2} [a-z]+\| ' "$dir/next-$n.log" || true
	ms=$((($(date +%s%N) - t0) / 1000000))
	moving=$((moving + ms))
	echo "($event took $ms ms)"
	say "boxswap where, after $event"
	show
done

say "checking the end state on the boxes"
bad=0
check() { # WHAT GOT WANT
	if [ "$2" = "$3" ]; then
		echo "ok   $1: $2"
	else
		echo "FAIL $1: $2, want $3"
		bad=1
	fi
}
check "production address answers" "$(answer "$PROD")" "thurst $TO production"
check "development address answers" "$(answer "$DEV")" "thermals $TO development"
check "production address held by" "$(holders "$PROD")" thurst
check "development address held by" "$(holders "$DEV")" thermals
check "thurst /etc/os-release" "$(release thurst)" "$TO"
check "thermals /etc/os-release" "$(release thermals)" "$TO"
check "boxswap where" "$(bs where | sed -n 's/^phase: \([a-z-]*\).*/\1/p')" done
[ "$bad" = 0 ] || die "the pair did not end as it should: production on thurst, development on thermals, both on $TO"

secs() { printf '%d.%03d s' $(($1 / 1000)) $(($1 % 1000)); }
say "whole cycle $FROM to $TO ($OS) rehearsed on real boxes: the five transitions took $(secs "$moving"), $(secs $((($(date +%s%N) - begin) / 1000000))) with lab up and the checks"
