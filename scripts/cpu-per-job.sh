#!/usr/bin/env bash
# cpu-per-job.sh OLD NEW [ROUNDS] [SECONDS]: the daemon's CPU µs per job of
# two revisions, measured in one run with the revisions interleaved round by
# round, so a noisy shared machine shifts both alike. Workloads, each
# SECONDS long (default 10) on a fresh data dir, 256-byte payloads:
#   a  single-job enqueue, 64 clients
#   b  batches of 100, 8 clients (kept, for c)
#   c  drain: lease up to 100, ack one by one, 8 workers
# The load comes from NEW's `edgeq bench --pid`, which reads the daemon's
# utime+stime from /proc/PID/stat: the load generator's CPU is excluded.
# Output: one line per run and a table of medians with new/old ratios.
#
#   scripts/cpu-per-job.sh main HEAD 3
set -euo pipefail

old=${1:?usage: cpu-per-job.sh OLD NEW [ROUNDS] [SECONDS]}
new=${2:?usage: cpu-per-job.sh OLD NEW [ROUNDS] [SECONDS]}
rounds=${3:-3}
secs=${4:-10}
. "$(dirname "$0")/lib/revisions.sh"
build() { go build -o "$work/$1.edgeq" .; }
revisions_build "$old" "$new" build

# load ARGS...: one bench run against the daemon; prints "µs/job jobs/s".
load() {
	"$work/new.edgeq" bench --addr "http://127.0.0.1:$port" --pid "$daemon" --payload 256 --duration "${secs}s" --json "$@" 2>/dev/null |
		python3 -c 'import json,sys; r=json.load(sys.stdin); c=r["daemon_cpu"]
print(round(c["us_per_job"], 1), round(r["enqueued_per_s"] if c["per"] == "enqueued" else r["consumed_per_s"]))'
}

# run BIN: workloads a, b and c on one fresh daemon.
run() {
	local bin=$1 dir
	dir=$(mktemp -d "$work/data.XXXX")
	daemon_start "$bin" "$dir"
	echo "$(load --producers 64) $(load --producers 8 --batch 100 --keep) $(load --producers 0 --consumers 8)"
	daemon_stop
	rm -rf "$dir" "$dir.log"
}

results=$work/results
: >"$results"
for round in $(seq "$rounds"); do
	for side in old new; do
		line=$(run "$work/$side.edgeq")
		echo "round $round $side (µs/job jobs/s): a $(cut -d' ' -f1,2 <<<"$line"), b $(cut -d' ' -f3,4 <<<"$line"), c $(cut -d' ' -f5,6 <<<"$line")" >&2
		echo "$side $line" >>"$results"
	done
done

python3 - "$results" "$old" "$new" <<'EOF2'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
names = ["a: single-job enqueue, 64 clients", "b: batches of 100, 8 clients", "c: drain, 8 workers"]
print(f"| workload | {sys.argv[2]} µs/job | {sys.argv[3]} µs/job | new/old | jobs/s old | jobs/s new | runs old (µs/job) | runs new (µs/job) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for i, name in enumerate(names):
    o = [float(r[1 + 2 * i]) for r in rows if r[0] == "old"]
    n = [float(r[1 + 2 * i]) for r in rows if r[0] == "new"]
    ro = statistics.median(float(r[2 + 2 * i]) for r in rows if r[0] == "old")
    rn = statistics.median(float(r[2 + 2 * i]) for r in rows if r[0] == "new")
    mo, mn = statistics.median(o), statistics.median(n)
    fmt = lambda xs: " ".join(f"{x:.1f}" for x in xs)
    print(f"| {name} | {mo:.1f} | {mn:.1f} | {mn / mo:.2f} | {ro:,.0f} | {rn:,.0f} | {fmt(o)} | {fmt(n)} |")
EOF2
