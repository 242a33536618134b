#!/bin/bash
# Issue 15: where, whole process, on the bench's 100-transition state pushed into a
# local etcd of N members (loopback, temporary data dirs), 30 runs; N=0 times the
# bbolt state itself, the baseline. EMPTY=1: on a state init just made instead.
#   go build -o /tmp/etcdbench/boxswap ./cmd/boxswap
#   go run ./test/bench reads -boxswap /tmp/etcdbench/boxswap -dir /tmp/etcdbench/reads
#   test/bench/etcd-where.sh 0 0; test/bench/etcd-where.sh 1 23800; test/bench/etcd-where.sh 3 23810
#   EMPTY=1 test/bench/etcd-where.sh 1 23800
set -eu
n=$1; base=$2; dir=/tmp/etcdbench/e$n; rm -rf $dir; mkdir -p $dir
bin=${BOXSWAP:-/tmp/etcdbench/boxswap}; cfg=${CONFIG:-boxes.yaml}; db=${STATE:-/tmp/etcdbench/reads/boxswap.db}
init=""; eps=""
for i in $(seq 0 $((n-1))); do
  init="$init${init:+,}m$i=http://127.0.0.1:$((base+2*i+1))"
  eps="$eps${eps:+,}127.0.0.1:$((base+2*i))"
done
pids=()
for i in $(seq 0 $((n-1))); do
  etcd --name m$i --data-dir $dir/m$i --listen-client-urls http://127.0.0.1:$((base+2*i)) --advertise-client-urls http://127.0.0.1:$((base+2*i)) \
    --listen-peer-urls http://127.0.0.1:$((base+2*i+1)) --initial-advertise-peer-urls http://127.0.0.1:$((base+2*i+1)) \
    --initial-cluster $init --initial-cluster-state new >$dir/m$i.log 2>&1 &
  pids+=($!)
done
trap '[ ${#pids[@]} -eq 0 ] || kill ${pids[*]}; wait; rm -rf '$dir EXIT
if [ "$n" -eq 0 ]; then
  url=$db; name=bbolt
else
  until ETCDCTL_API=3 etcdctl --endpoints=$eps put /ready 1 >/dev/null 2>&1; do sleep 0.2; done
  url=etcd://$eps/boxswap/bench; name=etcd-$n
  if [ "${EMPTY:-}" ]; then $bin -c $cfg --state $url state init; else $bin -c $cfg --state $db state push $url; fi
fi
for v in where "where --json"; do
  ts=()
  for r in $(seq 30); do
    s=$(date +%s%N); $bin -c $cfg --state $url $v >/dev/null; e=$(date +%s%N); ts+=($(( (e-s)/1000 )))
  done
  printf '%s\n' "${ts[@]}" | sort -n | awk -v n="$name" -v v="$v" '{a[NR]=$1} END {printf "%s boxswap %s: median %.1f ms (min %.1f, max %.1f, %d runs)\n", n, v, a[int((NR+1)/2)]/1000, a[1]/1000, a[NR]/1000, NR}'
done
