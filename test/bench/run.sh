#!/bin/sh
# Runs every benchmark of docs/performance.md in sequence (Linux, root).
# Usage: sh test/bench/run.sh [OUTDIR]   (default /tmp/bench)
set -e
out=${1:-/tmp/bench}
mkdir -p "$out"
cd "$(dirname "$0")/../.."
command -v ansible-playbook >/dev/null || apt-get install -y ansible
go build -o "$out/bench" ./test/bench
go build -o "$out/boxswap" ./cmd/boxswap
"$out/bench" reads   -boxswap "$out/boxswap" -dir "$out/reads" | tee "$out/reads.out"
"$out/bench" memory  -dir "$out/mem"   | tee "$out/memory.out"
"$out/bench" steps   -dir "$out/steps" -runs 5 | tee "$out/steps.out"
"$out/bench" cutover -dir "$out/cut" -rounds 3 | tee "$out/cutover.out"
