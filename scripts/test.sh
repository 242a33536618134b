#!/usr/bin/env bash
# test.sh: what `make test` runs after deps and vet. The unit, SSH, state
# and CLI packages first (in parallel, as go test does), then the lab
# packages one at a time (each boots real boxes; every lab also takes the
# machine-wide lock /run/boxswap-lab.lock). It ends with each stage's time.
# With CI set, a lab or etcd test that cannot run fails instead of skipping.
set -uo pipefail
GO=${GO:-go}
if [ -n "${CI:-}" ]; then export BOXSWAP_LAB_REQUIRED=1 BOXSWAP_ETCD_REQUIRED=1; fi
labpkgs=(./test/lab/... ./test/e2e/... ./test/reliability/...)
times=()
run() { # NAME ARGS...
	local name=$1 start=$SECONDS rc=0
	shift
	"$GO" test "$@" || rc=$?
	times+=("$(printf '%-28s %5ds  %s' "$name" $((SECONDS - start)) "$([ $rc = 0 ] && echo ok || echo FAILED)")")
	return $rc
}
status=0
mapfile -t unit < <("$GO" list ./... | grep -v -e /test/lab -e /test/e2e -e /test/reliability)
run "unit, SSH, state, CLI" -count=1 "${unit[@]}" || status=1
if [ $status = 0 ]; then
	for p in "${labpkgs[@]}"; do
		run "${p%/...}" -count=1 -p 1 -timeout 60m "$p" || { status=1; break; }
	done
fi
echo "make test: time per stage"
printf '  %s\n' "${times[@]}"
exit $status
