#!/usr/bin/env bash
# bench-compare.sh OLD NEW [ROUNDS]: before/after medians of the three figures
# a refactor must not regress (DurableEnqueue, Scheduler, HTTP single-job
# enqueue), measured in one run with the two revisions interleaved round by
# round, so a noisy shared machine shifts both alike.
#
#   scripts/bench-compare.sh b8bb172 HEAD 3
#
# Each revision is checked out into a temporary worktree; its e2e test binary
# and its edgeq binary are built once. The HTTP load always comes from NEW's
# `edgeq bench`, so only the daemon differs. Output: one line per run and a
# median table at the end (jobs/s).
set -euo pipefail

old=${1:?usage: bench-compare.sh OLD NEW [ROUNDS]}
new=${2:?usage: bench-compare.sh OLD NEW [ROUNDS]}
rounds=${3:-3}
. "$(dirname "$0")/lib/revisions.sh"
build() { go test -c -o "$work/$1.e2e" ./e2e/ && go build -o "$work/$1.edgeq" .; }
revisions_build "$old" "$new" build

# field NAME UNIT: the value before UNIT on the benchmark line NAME.
field() {
	awk -v name="$1" -v unit="$2" '$1 ~ name { for (i = 2; i <= NF; i++) if ($i == unit) { print $(i-1); exit } }'
}

http_run() {
	local bin=$1 dir
	dir=$(mktemp -d "$work/data.XXXX")
	daemon_start "$bin" "$dir"
	"$work/new.edgeq" bench --addr "http://127.0.0.1:$port" --producers 64 --payload 256 --duration 10s --json 2>/dev/null |
		python3 -c 'import json,sys; print(round(json.load(sys.stdin)["enqueued_per_s"]))'
	daemon_stop
	rm -rf "$dir" "$dir.log"
}

results=$work/results
: >"$results"
for round in $(seq "$rounds"); do
	for side in old new; do
		(cd "$work/$side/e2e" && "$work/$side.e2e" -test.run '^$' -test.bench 'DurableEnqueue/producers=64$' -test.benchtime 100000x) >"$work/out" 2>&1
		de=$(field 'DurableEnqueue/producers=64' 'jobs/s' <"$work/out")
		(cd "$work/$side/e2e" && "$work/$side.e2e" -test.run '^$' -test.bench 'Scheduler/queues=5/workers=256$' -test.benchtime 50000x) >"$work/out" 2>&1
		sc=$(field 'Scheduler/queues=5/workers=256' 'jobs/s' <"$work/out")
		ht=$(http_run "$work/$side.edgeq")
		echo "round $round $side DurableEnqueue/64=$de Scheduler/5x256=$sc HTTP/64=$ht" >&2
		echo "$side $de $sc $ht" >>"$results"
	done
done

python3 - "$results" "$old" "$new" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
names = ["DurableEnqueue/producers=64", "Scheduler/queues=5/workers=256", "HTTP enqueue, 64 clients"]
print(f"| figure (jobs/s) | {sys.argv[2]} median | {sys.argv[3]} median | new/old | runs old | runs new |")
print("| --- | --- | --- | --- | --- | --- |")
for i, name in enumerate(names):
    o = [float(r[i + 1]) for r in rows if r[0] == "old"]
    n = [float(r[i + 1]) for r in rows if r[0] == "new"]
    mo, mn = statistics.median(o), statistics.median(n)
    fmt = lambda xs: " ".join(f"{x:,.0f}" for x in xs)
    print(f"| {name} | {mo:,.0f} | {mn:,.0f} | {mn / mo:.2f} | {fmt(o)} | {fmt(n)} |")
EOF
