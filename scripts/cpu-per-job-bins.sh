#!/usr/bin/env bash
# cpu-per-job-bins.sh ROUNDS SECONDS BIN... : the daemon's CPU µs per job of
# prebuilt edgeq binaries, interleaved round by round (each round runs every
# BIN once, on a fresh data dir with a native socket), so a noisy shared
# machine shifts them alike. Workloads, SECONDS each, 256-byte payloads:
#   a   single-job HTTP enqueue, 64 clients
#   b   HTTP batches of 100, 8 clients
#   n   native single-job enqueue, 64 clients
#   nb  native batches of 100, 8 clients
# The load comes from the last BIN's `edgeq bench --pid` (the load
# generator's CPU excluded). Prints each run and the medians with ratios to
# the first BIN. Unlike cpu-per-job.sh it takes binaries, not revisions:
#
#   go build -o /tmp/old . ; (change) ; go build -o /tmp/new .
#   scripts/cpu-per-job-bins.sh 3 5 /tmp/old /tmp/new
set -euo pipefail
rounds=${1:?usage: cpu-per-job-bins.sh ROUNDS SECONDS BIN...}; secs=${2:?usage}; shift 2
gen=${@: -1}
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
out=$work/results
: > $out
load() {
  "$gen" bench --addr "http://127.0.0.1:$port" --pid "$pid" --payload 256 --duration "${secs}s" --json "$@" 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin); c=r["daemon_cpu"]
print(round(c["us_per_job"], 1), round(r["enqueued_per_s"] if c["per"] == "enqueued" else r["consumed_per_s"]))'
}
for r in $(seq $rounds); do
  for bin in "$@"; do
    d=$(mktemp -d "$work/data.XXXX")
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf 'native:\n  socket: %s/n.sock\n' "$d" > $d.yaml
    $bin serve --config $d.yaml --data-dir "$d/data" --http-addr "127.0.0.1:$port" >"$d.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    a=$(load --producers 64); b=$(load --producers 8 --batch 100)
    n=$(load --producers 64 --native unix://$d/n.sock); nb=$(load --producers 8 --batch 100 --native unix://$d/n.sock)
    echo "$bin $a $b $n $nb" | tee -a $out
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
    rm -rf "$d" "$d.log" "$d.yaml"
  done
done
python3 - $out <<'PY'
import statistics,sys
rows=[l.split() for l in open(sys.argv[1])]
bins=[]
for r in rows:
  if r[0] not in bins: bins.append(r[0])
names=["a http single","b http batch100","n native single","nb native batch100"]
for i,n in enumerate(names):
  base=None
  for b in bins:
    xs=[float(r[1+2*i]) for r in rows if r[0]==b]
    rs=[float(r[2+2*i]) for r in rows if r[0]==b]
    m=statistics.median(xs)
    if base is None: base=m
    print(f"{n:20s} {b:22s} us/job {m:7.1f} ratio {m/base:.2f} jobs/s {statistics.median(rs):9.0f} runs {xs}")
PY
