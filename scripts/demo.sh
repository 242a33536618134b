#!/usr/bin/env bash
# demo.sh: the README's first command (make demo). Rehearses a whole boxswap
# cycle in the two-box lab (test/lab) on this machine: builds boxswap and the
# lab, starts a lab in a temporary directory, runs boxswap check and the five
# boxswap --yes next (f27 to f29), printing where the pair stands and which
# box answers each function's address after every transition, checks it ends
# with both boxes on 29, production on thurst and development on thermals,
# and always takes the lab down. Exits non-zero if anything failed.
#
# Needs Linux and root (the lab uses namespaces, overlayfs and chroot), Go,
# and installs openssh-server and rsync with apt-get when they are missing.
# Loopback addresses only: nothing is added to this machine's network.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
FROM=27 TO=29

if [ -t 1 ]; then
	say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[ "$(uname -s)" = Linux ] || die "the lab needs Linux (namespaces and overlayfs)"
[ "$(id -u)" = 0 ] || die "the lab needs root (namespaces, overlayfs, chroot): run sudo make demo"
command -v "$GO" >/dev/null || die "no go in PATH: install Go, or set GO=/path/to/go"

if ! command -v rsync >/dev/null || ! test -x /usr/sbin/sshd; then
	say "installing openssh-server and rsync"
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y openssh-server rsync
fi

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
say "starting the lab in $dir"
"$LAB" up -dir "$dir" -port 0 -http-port 0
cfg=$dir/boxes.yaml
bs() { "$BOXSWAP" -c "$cfg" "$@"; }

# url NAME: the host:port of production_url or development_url in lab.json.
url() { sed -n "s|.*\"$1\": \"http://\([^/\"]*\)/\".*|\1|p" "$dir/lab.json"; }
PROD=$(url production_url) DEV=$(url development_url)
[ -n "$PROD" ] && [ -n "$DEV" ] || die "$dir/lab.json: no production_url or development_url"

# answer HOST:PORT prints what the address answers (the lab's address units
# say "BOX fRELEASE FUNCTION"), or "nothing". Plain bash: no curl needed.
answer() {
	local body
	if body=$(timeout 5 bash -c '
		exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || exit 1
		printf "GET / HTTP/1.0\r\nHost: %s\r\n\r\n" "$1" >&3
		cat <&3' _ "$1" 2>/dev/null); then
		# Drop the status line and headers: the body follows the first empty line.
		body=$(printf '%s\n' "$body" | tr -d '\r' | sed '1,/^$/d')
		echo "${body:-nothing}"
	else
		echo nothing
	fi
}

# release BOX prints VERSION_ID from the box's /etc/os-release, over ssh.
release() {
	local host port
	host=$(sed -n "/\"$1\": {/,/}/s|.*\"host\": \"\([^\"]*\)\".*|\1|p" "$dir/lab.json")
	port=$(sed -n "/\"$1\": {/,/}/s|.*\"port\": \([0-9]*\).*|\1|p" "$dir/lab.json")
	ssh -i "$dir/id_ed25519" -o UserKnownHostsFile="$dir/known_hosts" -o StrictHostKeyChecking=yes \
		-o BatchMode=yes -p "$port" "root@$host" '. /etc/os-release && echo "$VERSION_ID"'
}

show() {
	bs where
	echo
	echo "production  address ($PROD) answers: $(answer "$PROD")"
	echo "development address ($DEV) answers: $(answer "$DEV")"
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
	if ! bs --yes next >"$dir/next-$n.log" 2>&1; then
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
check "production address" "$(answer "$PROD")" "thurst f$TO production"
check "development address" "$(answer "$DEV")" "thermals f$TO development"
check "thurst /etc/os-release" "$(release thurst)" "$TO"
check "thermals /etc/os-release" "$(release thermals)" "$TO"
check "boxswap where" "$(bs where | sed -n 's/^phase: \([a-z-]*\).*/\1/p')" done
[ "$bad" = 0 ] || die "the pair did not end as it should: production on thurst, development on thermals, both on f$TO"

secs() { printf '%d.%03d s' $(($1 / 1000)) $(($1 % 1000)); }
say "whole cycle f$FROM to f$TO rehearsed: the five transitions took $(secs "$moving"), $(secs $((($(date +%s%N) - begin) / 1000000))) with lab up and the checks"
