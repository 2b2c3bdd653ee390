#!/usr/bin/env bash
# ARM smoke test (make smoke-arm): the linux/arm64, arm/v7 and arm/v6 builds
# of edgeq, run under qemu-user, each serve, take N jobs over HTTP, keep them
# across a clean restart (SIGTERM, start again on the same data directory)
# and hand them all out to a consumer. A native build of edgeq is the client.
# Without qemu-user it skips, saying why (exit 0).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-300}
TARGETS=${TARGETS:-"arm64:qemu-aarch64 arm/7:qemu-arm arm/6:qemu-arm"}

for q in qemu-aarch64 qemu-arm; do
	if ! command -v "$q" >/dev/null; then
		echo "SKIP arm smoke test: $q not found (Debian: apt-get install qemu-user)"
		exit 0
	fi
done

work=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -o "$work/client" .

# ready ADDR: the daemon's ready count for queue smoke, or fail.
ready() {
	"$work/client" stats --addr "$1" --json |
		python3 -c 'import json,sys; print(next((q["ready"] for q in json.load(sys.stdin)["queues"] if q["name"]=="smoke"), 0))'
}

# start QEMU BIN DATA ADDR LOG: start the daemon and wait until it answers.
start() {
	"$1" "$2" serve --data-dir "$3" --http-addr "${4#http://}" --log-level warn 2>>"$5" &
	pid=$!
	for _ in $(seq 1 300); do
		if "$work/client" stats --addr "$4" >/dev/null 2>&1; then return 0; fi
		if ! kill -0 "$pid" 2>/dev/null; then echo "daemon exited at start:"; cat "$5"; return 1; fi
		sleep 0.2
	done
	echo "daemon did not answer within 60s"; cat "$5"; return 1
}

# bench ADDR FLAGS...: run the load generator on queue smoke, quietly unless it fails.
bench() {
	local addr=$1
	shift
	if ! "$work/client" bench --addr "$addr" --queue smoke "$@" >"$work/bench.out" 2>&1; then
		echo "edgeq bench $*:"; cat "$work/bench.out"; return 1
	fi
}

stop() {
	kill -TERM "$pid"
	if ! wait "$pid"; then echo "daemon did not exit cleanly on SIGTERM:"; cat "$1"; return 1; fi
	pid=
}

port=17170
for t in $TARGETS; do
	IFS=/ read -r arch arm <<<"${t%%:*}"
	qemu=${t##*:}
	name=$arch${arm:+v$arm}
	bin=$work/edgeq-$name data=$work/data-$name log=$work/$name.log
	addr=http://127.0.0.1:$((port++))
	SECONDS=0
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOARM=$arm go build -trimpath -o "$bin" .

	start "$qemu" "$bin" "$data" "$addr" "$log"
	bench "$addr" --count "$N" --producers 4 --batch 25 --keep
	got=$(ready "$addr")
	[ "$got" = "$N" ] || { echo "FAIL $name: $got ready after enqueueing $N"; cat "$log"; exit 1; }
	stop "$log"

	start "$qemu" "$bin" "$data" "$addr" "$log"
	got=$(ready "$addr")
	[ "$got" = "$N" ] || { echo "FAIL $name: $got ready after a restart, want $N"; cat "$log"; exit 1; }
	bench "$addr" --count "$N" --producers 0 --consumers 4
	got=$(ready "$addr")
	[ "$got" = 0 ] || { echo "FAIL $name: $got still ready after consuming $N"; cat "$log"; exit 1; }
	stop "$log"
	echo "ok   $name: served, took $N jobs, kept them across a restart, handed them out (${SECONDS}s)"
done
