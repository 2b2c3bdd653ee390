#!/usr/bin/env bash
# Issue 17's targets against its peers, in one run on this host's own disk
# (docs/BENCHMARKS.md, "Against asynq and beanstalkd"): edgeq, asynq v0.26
# on redis-server --appendonly yes --appendfsync always, beanstalkd -f 0,
# and for the drain also Redis itself (BLMOVE + LREM, issue 16's peer). Each
# run starts the server on a fresh data directory, runs one workload, reads
# the server's CPU time from /proc/PID/stat before and after it, and stops
# the server by PID. Rounds are interleaved; the summary gives medians and,
# per round, the ratios against asynq and beanstalkd.
#
# Workloads:
#   ingest1  one process, 64 goroutines: edgeq through its Go client with
#            client-side group commit (edgeq bench --coalesce), asynq through
#            one shared asynq.Client (64 connections), beanstalkd 64
#            connections of one process (it has no batching client);
#   ingest64 64 independent connections, one job a request (pibench single;
#            asynqbench with a client of one connection each);
#   drain    a backlog (filled first, not measured) drained by 8 workers,
#            one job at a time, each acked: edgeq lease?max=1 + ack
#            (pibench); edgeq-pipelined the same workers leasing the next
#            job while the last ack is in flight (edgeq bench --lease-max 1
#            --pipeline); edgeq-pipelined-acks those with their acks grouped
#            into POST /v1/acks (--coalesce as well); asynq an
#            asynq.Server of concurrency 8; beanstalkd reserve + delete;
#            redis BLMOVE + LREM.
#
# edgeq-native is edgeq over its native protocol on a unix socket
# (docs/protocol.md, issue 17's third lever): ingest1 edgeq bench --native
# (64 goroutines pipelined on 2 connections), and edgeq-native-coalesce the
# same with --coalesce (concurrent enqueues share batch frames); ingest64 pibench -system
# edgeq-native (64 clients of one connection each, one job a request);
# drain pibench's 8 workers lease max 1 + ack over it, and
# edgeq-native-pipelined the same with edgeq bench --native --lease-max 1
# --pipeline.
#
# edgeq-acklease and edgeq-native-acklease drain with edgeq bench
# --lease-max 1 --ack-lease (HTTP, and native on the unix socket): each
# worker acks the job it finished in its next lease request, one request
# and one commit for both.
#
# Needs Go, redis-server and beanstalkd (installed with apt-get when missing
# and we may). Servers listen on 127.0.0.1 only. Variables: RUNS (3),
# DURATION (s, ingest; 8), BACKLOG (drain; 10000), TIMEOUT (s, drain; 90),
# SYSTEMS ("edgeq edgeq-native asynq beanstalkd redis"), WORKLOADS ("ingest1 ingest64
# drain"), OUT (results directory; bench-peers), HTTP_PORT, REDIS_PORT,
# BEAN_PORT (17370, 16479, 11499).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/peers.sh

RUNS=${RUNS:-3}
DURATION=${DURATION:-8}
BACKLOG=${BACKLOG:-10000}
TIMEOUT=${TIMEOUT:-90}
SYSTEMS=${SYSTEMS:-edgeq edgeq-native asynq beanstalkd redis}
WORKLOADS=${WORKLOADS:-ingest1 ingest64 drain}
OUT=${OUT:-bench-peers}
HTTP_PORT=${HTTP_PORT:-17370} REDIS_PORT=${REDIS_PORT:-16479} BEAN_PORT=${BEAN_PORT:-11499}

die() { echo "bench-peers: $*" >&2; exit 1; }
log() { echo "bench-peers: $*" >&2; }
for v in RUNS DURATION BACKLOG TIMEOUT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v: want a positive whole number, got '${!v}'"
done
for s in $SYSTEMS; do [[ $s =~ ^(edgeq|edgeq-native|asynq|beanstalkd|redis)$ ]] || die "SYSTEMS: unknown system '$s'"; done
for w in $WORKLOADS; do [[ $w =~ ^(ingest1|ingest64|drain)$ ]] || die "WORKLOADS: unknown workload '$w'"; done

want=()
command -v redis-server >/dev/null || want+=(redis-server)
command -v beanstalkd >/dev/null || want+=(beanstalkd)
if [ ${#want[@]} -gt 0 ]; then
	install_peers "${want[@]}" || die "apt-get could not install ${want[*]}"
fi
for t in redis-server beanstalkd python3; do command -v $t >/dev/null || die "$t not found"; done

work=$(mktemp -d /var/tmp/edgeq-peers.XXXXXX)
SOCK=$work/edgeq.sock
pid=""
stop_server() {
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=""
}
cleanup() { stop_server; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building edgeq, scripts/pibench and scripts/asynqbench"
go build -trimpath -o "$work/edgeq" .
go build -trimpath -o "$work/pibench" ./scripts/pibench
(cd scripts/asynqbench && go build -trimpath -o "$work/asynqbench" .)

wait_port() {
	for _ in $(seq 300); do
		(exec 3<> "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# start SYSTEM LOG: the server on a fresh directory, in the background.
start() {
	local d=$work/data
	rm -rf "$d"; mkdir -p "$d"
	case $1 in
	edgeq)
		printf 'native:\n  socket: %s\n' "$SOCK" > "$work/edgeq.yaml"
		"$work/edgeq" serve --config "$work/edgeq.yaml" --data-dir "$d" --http-addr "127.0.0.1:$HTTP_PORT" > "$2" 2>&1 &
		pid=$! PORT=$HTTP_PORT ;;
	asynq | redis)
		redis-server --bind 127.0.0.1 --port $REDIS_PORT --dir "$d" --save "" \
			--appendonly yes --appendfsync always --daemonize no > "$2" 2>&1 &
		pid=$! PORT=$REDIS_PORT ;;
	beanstalkd)
		beanstalkd -l 127.0.0.1 -p $BEAN_PORT -b "$d" -f 0 > "$2" 2>&1 &
		pid=$! PORT=$BEAN_PORT ;;
	esac
	wait_port $PORT || die "$1 did not start: see $2"
}

# cpu_ticks: the server's user plus system time, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

# prefill SYSTEM: the drain's backlog, not measured.
prefill() {
	case $1 in
	asynq) "$work/asynqbench" -addr "127.0.0.1:$PORT" -workload prefill -count "$BACKLOG" -timeout "${TIMEOUT}s" ;;
	*) "$work/pibench" -system "$1" -addr "127.0.0.1:$PORT" -queue bench -workload prefill -batch 100 \
		-clients 8 -count "$BACKLOG" -timeout "${TIMEOUT}s" ;;
	esac > /dev/null
}

# load SYSTEM WORKLOAD: prints one JSON object with "jobs" and "jobs_per_s".
load() {
	local pb=("$work/pibench" -system "$1" -addr "127.0.0.1:$PORT" -queue bench)
	local ab=("$work/asynqbench" -addr "127.0.0.1:$PORT" -queue bench)
	local eb=("$work/edgeq" bench --addr "http://127.0.0.1:$PORT" --queue bench --json)
	local nb=("$work/pibench" -system edgeq-native -addr "unix://$SOCK" -queue bench)
	case $1/$2 in
	edgeq-native/ingest1)
		"${eb[@]}" --native "unix://$SOCK" --producers 64 --keep --duration "${DURATION}s" 2> /dev/null |
			python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({"jobs": r["enqueued"], "jobs_per_s": round(r["enqueued_per_s"]), "errors": sum(r["errors"].values())}))' ;;
	edgeq-native-coalesce/ingest1)
		"${eb[@]}" --native "unix://$SOCK" --coalesce --producers 64 --keep --duration "${DURATION}s" 2> /dev/null |
			python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({"jobs": r["enqueued"], "jobs_per_s": round(r["enqueued_per_s"]), "errors": sum(r["errors"].values())}))' ;;
	edgeq-native-pipelined/drain)
		"${eb[@]}" --native "unix://$SOCK" --producers 0 --consumers 8 --lease-max 1 --pipeline --count "$BACKLOG" 2> /dev/null |
			python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({"jobs": r["consumed"], "jobs_per_s": round(r["consumed_per_s"]), "errors": sum(r["errors"].values())}))' ;;
	edgeq-native/ingest64) "${nb[@]}" -workload single -clients 64 -duration "${DURATION}s" ;;
	edgeq-native/drain) "${nb[@]}" -workload drain -clients 8 -count "$BACKLOG" -timeout "${TIMEOUT}s" ;;
	edgeq/ingest1)
		"${eb[@]}" --producers 64 --coalesce --keep --duration "${DURATION}s" 2> /dev/null |
			python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({"jobs": r["enqueued"], "jobs_per_s": round(r["enqueued_per_s"]), "errors": sum(r["errors"].values())}))' ;;
	edgeq-acklease/drain | edgeq-native-acklease/drain)
		local nat=()
		[ "$1" = edgeq-native-acklease ] && nat=(--native "unix://$SOCK")
		"${eb[@]}" "${nat[@]}" --producers 0 --consumers 8 --lease-max 1 --ack-lease --count "$BACKLOG" 2> /dev/null |
			python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({"jobs": r["consumed"], "jobs_per_s": round(r["consumed_per_s"]), "errors": sum(r["errors"].values())}))' ;;
	edgeq-pipelined/drain | edgeq-pipelined-acks/drain)
		local grouped=()
		[ "$1" = edgeq-pipelined-acks ] && grouped=(--coalesce)
		"${eb[@]}" --producers 0 --consumers 8 --lease-max 1 --pipeline "${grouped[@]}" --count "$BACKLOG" 2> /dev/null |
			python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({"jobs": r["consumed"], "jobs_per_s": round(r["consumed_per_s"]), "errors": sum(r["errors"].values())}))' ;;
	edgeq/ingest64 | beanstalkd/ingest1 | beanstalkd/ingest64)
		"${pb[@]}" -workload single -clients 64 -duration "${DURATION}s" ;;
	asynq/ingest1) "${ab[@]}" -workload single -shared -clients 64 -duration "${DURATION}s" ;;
	asynq/ingest64) "${ab[@]}" -workload single -clients 64 -duration "${DURATION}s" ;;
	asynq/drain) "${ab[@]}" -workload drain -clients 8 -count "$BACKLOG" -timeout "${TIMEOUT}s" ;;
	*/drain) "${pb[@]}" -workload drain -clients 8 -count "$BACKLOG" -timeout "${TIMEOUT}s" ;;
	esac
}

# measure SYSTEM WORKLOAD ROUND: one run, one line in results.jsonl.
measure() {
	local sys=$1 w=$2 round=$3 server=${1%%-*}
	start "$server" "$OUT/$sys-$w-$round.log"
	[ "$w" = drain ] && prefill "$server"
	local c0 c1 line
	c0=$(cpu_ticks)
	line=$(load "$sys" "$w") || die "$sys $w: the load generator failed"
	c1=$(cpu_ticks)
	stop_server
	line=$(python3 -c '
import json, os, sys
r = json.loads(sys.argv[1])
ticks = (int(sys.argv[3]) - int(sys.argv[2])) / os.sysconf("SC_CLK_TCK")
out = {"system": sys.argv[4], "workload": sys.argv[5], "round": int(sys.argv[6]), "jobs": r["jobs"],
       "jobs_per_s": r["jobs_per_s"], "errors": r.get("errors", 0),
       "server_cpu_us_per_job": round(ticks * 1e6 / r["jobs"], 1) if r["jobs"] else None}
print(json.dumps(out))' "$line" "$c0" "$c1" "$sys" "$w" "$round")
	echo "$line" >> "$results"
	log "$line"
}

mkdir -p "$OUT"
results=$OUT/results.jsonl
: > "$results"
t0=$(date +%s)
for round in $(seq "$RUNS"); do
	for w in $WORKLOADS; do
		for sys in $SYSTEMS; do
			[ "$sys" = redis ] && [ "$w" != drain ] && continue
			measure "$sys" "$w" "$round"
			if [ "$sys" = edgeq ] && [ "$w" = drain ]; then
				measure edgeq-pipelined drain "$round"
				measure edgeq-pipelined-acks drain "$round"
				measure edgeq-acklease drain "$round"
			fi
			if [ "$sys" = edgeq-native ] && [ "$w" = drain ]; then
				measure edgeq-native-pipelined drain "$round"
				measure edgeq-native-acklease drain "$round"
			fi
			if [ "$sys" = edgeq-native ] && [ "$w" = ingest1 ]; then
				measure edgeq-native-coalesce ingest1 "$round"
			fi
		done
	done
done
log "done in $(($(date +%s) - t0)) s"

python3 - "$results" <<'PY' | tee "$OUT/table.md"
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in runs:
    by.setdefault((r["workload"], r["system"]), []).append(r)
def med(rs, k):
    v = [r[k] for r in rs if r[k] is not None]
    return statistics.median(v) if v else None
print("| workload | system | runs | jobs/s (median) | the runs | server CPU µs/job (median) | ratio vs asynq (per round) | ratio vs beanstalkd (per round) | ratio vs Redis (per round) |")
print("| --- | --- | --: | --: | --- | --: | --- | --- | --- |")
for (w, s), rs in sorted(by.items(), key=lambda kv: (kv[0][0], kv[0][1])):
    rs.sort(key=lambda r: r["round"])
    def ratios(peer):
        ps = {r["round"]: r["jobs_per_s"] for r in by.get((w, peer), [])}
        v = [r["jobs_per_s"] / ps[r["round"]] for r in rs if ps.get(r["round"])]
        return "%.2f (%s)" % (statistics.median(v), " ".join("%.2f" % x for x in v)) if v and s != peer else "—"
    print("| %s | %s | %d | %.0f | %s | %s | %s | %s | %s |" % (w, s, len(rs), med(rs, "jobs_per_s"),
          " ".join(str(r["jobs_per_s"]) for r in rs),
          "%.0f" % med(rs, "server_cpu_us_per_job") if med(rs, "server_cpu_us_per_job") is not None else "—",
          ratios("asynq"), ratios("beanstalkd"), ratios("redis")))
errs = [r for r in runs if r["errors"]]
if errs:
    print("\nruns with errors: " + "; ".join("%s %s round %d: %d" % (r["system"], r["workload"], r["round"], r["errors"]) for r in errs))
PY
