#!/usr/bin/env bash
# The simulated appliance (make bench-pi; docs/BENCHMARKS.md, "Simulated
# appliance"): the real daemon, and each peer in turn, inside a cgroup shaped
# like systemd/edgeq.service on a 256 MiB device with an SD card: half of one
# core, MemoryMax=192M (MemoryHigh=144M on cgroup v2), swap off, GOMEMLIMIT
# as the unit sets it, and the data on a loop device throttled to 200 write
# IOPS and 10 MB/s. The load generator (scripts/pibench) runs outside it, in
# a cgroup of its own without a quota. Both cgroups get the highest CPU
# weight, so that other work on the host does not take the box's half core.
#
# Needs root (cgroups, losetup, mount), cgroup v1 (cpu, cpuacct, memory,
# blkio) or v2 (cpu, memory, io), and Go. Peers: redis-server (appendfsync
# always), asynq v0.26 on that Redis (workloads a and c; its load generator,
# scripts/asynqbench, is a Go module of its own) and beanstalkd (-f 0),
# installed with apt-get where we may; a missing peer is skipped with a
# message. Exit 3: this host cannot run it
# (not root, no usable cgroup, no loop device); the reason is printed.
#
# Variables: SYSTEMS ("edgeq redis asynq beanstalkd"; native, edgeq over its
# native protocol, on request: workloads a and c), WORKLOADS ("a b c d e";
# f, the wear stream, on request), DURATION (s, for a, b, d; 10), RUNS
# (rounds, interleaved; 3), BACKLOG (c; 40000), FILL (e; 300000), WEAR (f;
# 200000), RATE (d, jobs/s; 300), TIMEOUT (s, bound of c, e and f; 120), OUT
# (results directory; bench-pi), SMOKE=1 (edgeq only, a few seconds a
# workload, fails if the harness breaks), BASE_BIN (an edgeq binary of
# another revision, measured as the system "base", interleaved with the
# others: SYSTEMS="base edgeq redis"), TRACE=1 (edgeq runs under strace:
# what one group commit costs, by file, in OUT/commits-edgeq-*.md; its
# figures of time and CPU are then strace's, not edgeq's).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/peers.sh

SMOKE=${SMOKE:-0}
if [ "$SMOKE" = 1 ]; then
	SYSTEMS=${SYSTEMS:-edgeq} DURATION=${DURATION:-3} BACKLOG=${BACKLOG:-2000}
	FILL=${FILL:-20000} WEAR=${WEAR:-2000} TIMEOUT=${TIMEOUT:-60} RUNS=${RUNS:-1}
fi
SYSTEMS=${SYSTEMS:-edgeq redis asynq beanstalkd}
WORKLOADS=${WORKLOADS:-a b c d e}
DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
BACKLOG=${BACKLOG:-40000}
FILL=${FILL:-300000}
WEAR=${WEAR:-200000}
TRACE=${TRACE:-0}
RATE=${RATE:-300}
TIMEOUT=${TIMEOUT:-120}
OUT=${OUT:-bench-pi}

# The box: systemd/edgeq.service's limits and an SD card.
CPU_QUOTA=50000 CPU_PERIOD=100000
# The highest CPU weight (v1 cpu.shares, v2 cpu.weight) for the box and the
# load generator: the host's other processes weigh 1024 (100 on v2) each.
SHARES=262144 WEIGHT=10000
MEM_MAX=$((192 << 20)) MEM_HIGH=$((144 << 20))
GOMEMLIMIT_UNIT=96MiB
WIOPS=200 WBPS=10000000
IMG_SIZE=3G

HTTP_PORT=17070 SINK_PORT=17071 REDIS_PORT=16379 BEAN_PORT=11399 NATIVE_PORT=17072

refuse() { echo "bench-pi: cannot run here: $*" >&2; exit 3; }
die() { echo "bench-pi: $*" >&2; exit 1; }
log() { echo "bench-pi: $*" >&2; }

for v in DURATION RUNS BACKLOG FILL WEAR RATE TIMEOUT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v: want a positive whole number, got '${!v}'"
done
for w in $WORKLOADS; do [[ $w =~ ^[a-f]$ ]] || die "WORKLOADS: want letters a to f, got '$w'"; done
[[ $TRACE =~ ^[01]$ ]] || die "TRACE: want 0 or 1, got '$TRACE'"
for s in $SYSTEMS; do [[ $s =~ ^(edgeq|base|native|redis|asynq|beanstalkd)$ ]] || die "SYSTEMS: want edgeq, base, native, redis, asynq or beanstalkd, got '$s'"; done
if [[ " $SYSTEMS " == *" base "* ]]; then
	[ -n "${BASE_BIN:-}" ] && [ -x "$BASE_BIN" ] || die "SYSTEMS base: BASE_BIN must name an edgeq binary, got '${BASE_BIN:-}'"
fi

[ "$(id -u)" = 0 ] || refuse "needs root (cgroups, losetup, mount)"
for t in losetup mkfs.ext4 mount umount; do command -v $t >/dev/null || refuse "$t not found"; done
[ "$TRACE" = 0 ] || command -v strace >/dev/null || refuse "TRACE=1: strace not found"

# Which cgroup version: v2 when /sys/fs/cgroup is the unified hierarchy with
# cpu, memory and io; else v1 with cpu, cpuacct, memory and blkio mounted.
CG=/sys/fs/cgroup
if [ -f $CG/cgroup.controllers ]; then
	for c in cpu memory io; do
		grep -qw $c $CG/cgroup.controllers || refuse "cgroup v2 without the $c controller"
	done
	CGV=2
elif [ -f $CG/cpu/cpu.cfs_quota_us ] && [ -f $CG/memory/memory.limit_in_bytes ] &&
	[ -f $CG/blkio/blkio.throttle.write_iops_device ] && [ -f $CG/cpuacct/cpuacct.usage ]; then
	CGV=1
else
	refuse "neither cgroup v2 (cpu, memory, io at $CG) nor v1 (cpu, cpuacct, memory, blkio under $CG) is usable"
fi

# Peers: installed with apt-get where we may (root and apt-get), once.
want=()
for s in $SYSTEMS; do
	case $s in
	redis | asynq) command -v redis-server >/dev/null || want+=(redis-server) ;;
	beanstalkd) command -v beanstalkd >/dev/null || [ -x /usr/bin/beanstalkd ] || want+=(beanstalkd) ;;
	esac
done
if [ ${#want[@]} -gt 0 ]; then
	install_peers "${want[@]}" || log "apt-get could not install ${want[*]}"
fi
systems=()
for s in $SYSTEMS; do
	case $s in
	redis | asynq) command -v redis-server >/dev/null || { log "skip $s: redis-server not installed"; continue; } ;;
	beanstalkd) command -v beanstalkd >/dev/null || { log "skip beanstalkd: beanstalkd not installed"; continue; } ;;
	esac
	systems+=("$s")
done
[ ${#systems[@]} -gt 0 ] || die "no system to measure"

work=$(mktemp -d /var/tmp/edgeq-pibench.XXXXXX)
mnt=$work/mnt
loopdev=""
cgdirs=()
cgdirs_load=""
pids=()
stop_pids() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 600); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	pids=()
}
rm_cgroups() {
	local d
	for d in "${cgdirs[@]}"; do
		[ -d "$d" ] && for _ in $(seq 50); do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
	done
	cgdirs=()
}
cleanup() {
	stop_pids
	rm_cgroups
	if [ -n "$cgdirs_load" ]; then
		for _ in $(seq 50); do rmdir "$cgdirs_load" 2>/dev/null && break; sleep 0.1; done
	fi
	mountpoint -q "$mnt" && umount "$mnt"
	[ -n "$loopdev" ] && losetup -d "$loopdev"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "cgroup v$CGV; building edgeq and scripts/pibench"
CGO_ENABLED=0 go build -trimpath -o "$work/edgeq" .
CGO_ENABLED=0 go build -trimpath -o "$work/pibench" ./scripts/pibench
if [[ " ${systems[*]} " == *" asynq "* ]] &&
	! (cd scripts/asynqbench && CGO_ENABLED=0 go build -trimpath -o "$work/asynqbench" .); then
	log "skip asynq: scripts/asynqbench does not build (its module comes through the Go module proxy)"
	keep=()
	for s in "${systems[@]}"; do [ "$s" = asynq ] || keep+=("$s"); done
	systems=("${keep[@]}")
	[ ${#systems[@]} -gt 0 ] || die "no system to measure"
fi

# The SD card: an ext4 file system on a loop device of its own, so that its
# major:minor can be throttled and its write counters are ours alone.
truncate -s $IMG_SIZE "$work/card.img"
loopdev=$(losetup -f --show "$work/card.img") || refuse "no free loop device (losetup -f)"
# Inode tables and journal initialised now, not by ext4lazyinit during
# the first runs, where their writes would be counted.
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$loopdev"
mkdir -p "$mnt"
mount -o noatime "$loopdev" "$mnt"
devno=$(lsblk -dno MAJ:MIN "$loopdev" 2>/dev/null | tr -d ' ') ||
	devno=$(printf '%d:%d' "0x$(stat -c %t "$loopdev")" "0x$(stat -c %T "$loopdev")")
devstat=/sys/block/$(basename "$loopdev")/stat
jbd2info=/proc/fs/jbd2/$(basename "$loopdev")-8/info

# cg_make NAME: a cgroup shaped like the box; sets CGPROCS (files a PID is
# written to) and the counter files.
cg_make() {
	local name=edgeq-pibench-$$-$1
	CGPROCS=()
	if [ $CGV = 2 ]; then
		echo "+cpu +memory +io" > $CG/cgroup.subtree_control 2>/dev/null ||
			refuse "cannot enable cpu, memory and io in $CG/cgroup.subtree_control"
		local d=$CG/$name
		mkdir "$d"; cgdirs+=("$d")
		echo "$CPU_QUOTA $CPU_PERIOD" > "$d/cpu.max"
		echo $WEIGHT > "$d/cpu.weight"
		echo $MEM_MAX > "$d/memory.max"
		echo $MEM_HIGH > "$d/memory.high"
		[ -f "$d/memory.swap.max" ] && echo 0 > "$d/memory.swap.max"
		echo "$devno wiops=$WIOPS wbps=$WBPS" > "$d/io.max"
		CGPROCS=("$d/cgroup.procs") CGDIR=$d
	else
		local c
		for c in cpu cpuacct memory blkio; do
			mkdir "$CG/$c/$name"; cgdirs+=("$CG/$c/$name"); CGPROCS+=("$CG/$c/$name/cgroup.procs")
		done
		echo $CPU_PERIOD > "$CG/cpu/$name/cpu.cfs_period_us"
		echo $CPU_QUOTA > "$CG/cpu/$name/cpu.cfs_quota_us"
		echo $SHARES > "$CG/cpu/$name/cpu.shares"
		echo $MEM_MAX > "$CG/memory/$name/memory.limit_in_bytes"
		# Swap off: memsw (where swap accounting is on) caps memory plus swap.
		[ -f "$CG/memory/$name/memory.memsw.limit_in_bytes" ] &&
			echo $MEM_MAX > "$CG/memory/$name/memory.memsw.limit_in_bytes"
		echo 0 > "$CG/memory/$name/memory.swappiness"
		echo "$devno $WIOPS" > "$CG/blkio/$name/blkio.throttle.write_iops_device"
		echo "$devno $WBPS" > "$CG/blkio/$name/blkio.throttle.write_bps_device"
		CGDIR=$name
	fi
}
# The load generator's cgroup: CPU only, no quota, the highest weight.
# inload CMD... runs CMD in it, in the foreground.
cg_load() {
	LOADPROCS=$CG/edgeq-pibench-$$-load
	[ $CGV = 1 ] && LOADPROCS=$CG/cpu/edgeq-pibench-$$-load
	mkdir "$LOADPROCS"; cgdirs_load=$LOADPROCS
	if [ $CGV = 2 ]; then echo $WEIGHT > "$LOADPROCS/cpu.weight"
	else echo $SHARES > "$LOADPROCS/cpu.shares"; fi
	LOADPROCS=$LOADPROCS/cgroup.procs
}
inload() { ( echo "$BASHPID" > "$LOADPROCS"; exec "$@" ); }
# Counters of the current cgroup: CPU µs, written bytes and write IOs on
# the card as charged to the cgroup (what the throttle sees), peak memory.
cg_cpu_us() {
	if [ $CGV = 2 ]; then awk '$1 == "usage_usec" {print $2}' "$CGDIR/cpu.stat"
	else echo $(($(cat "$CG/cpuacct/$CGDIR/cpuacct.usage") / 1000)); fi
}
cg_wbytes() {
	if [ $CGV = 2 ]; then awk -v d="$devno" '$1 == d {for (i = 2; i <= NF; i++) if ($i ~ /^wbytes=/) {sub(/wbytes=/, "", $i); print $i; exit}} END {}' "$CGDIR/io.stat" | grep . || echo 0
	else awk -v d="$devno" '$1 == d && $2 == "Write" {print $3; f = 1} END {if (!f) print 0}' "$CG/blkio/$CGDIR/blkio.throttle.io_service_bytes"; fi
}
cg_wios() {
	if [ $CGV = 2 ]; then awk -v d="$devno" '$1 == d {for (i = 2; i <= NF; i++) if ($i ~ /^wios=/) {sub(/wios=/, "", $i); print $i; exit}}' "$CGDIR/io.stat" | grep . || echo 0
	else awk -v d="$devno" '$1 == d && $2 == "Write" {print $3; f = 1} END {if (!f) print 0}' "$CG/blkio/$CGDIR/blkio.throttle.io_serviced"; fi
}
# The cgroup's memory now: anonymous, page cache, and the part of it mapped
# (v1 memory.stat rss, cache, mapped_file; v2 anon, file, file_mapped).
cg_memstat() {
	local f=$CGDIR/memory.stat
	[ $CGV = 1 ] && f=$CG/memory/$CGDIR/memory.stat
	awk '$1 == "rss" || $1 == "anon" {a = $2} $1 == "cache" || $1 == "file" {c = $2}
		$1 == "mapped_file" || $1 == "file_mapped" {m = $2} END {printf "%d %d %d\n", a, c, m}' "$f"
}
# CFS bandwidth periods, those throttled, and µs throttled in all.
cg_throttle() {
	local f=$CGDIR/cpu.stat
	[ $CGV = 1 ] && f=$CG/cpu/$CGDIR/cpu.stat
	awk '$1 == "nr_periods" {p = $2} $1 == "nr_throttled" {n = $2}
		$1 == "throttled_time" {t = $2 / 1000} $1 == "throttled_usec" {t = $2}
		END {printf "%d %d %.0f\n", p, n, t}' "$f"
}
cg_peak() {
	if [ $CGV = 2 ]; then cat "$CGDIR/memory.peak" 2>/dev/null || cat "$CGDIR/memory.current"
	else cat "$CG/memory/$CGDIR/memory.max_usage_in_bytes"; fi
}
# Everything written to the card, whoever issued it (journal, writeback).
dev_wios() { awk '{print $5}' "$devstat"; }
dev_wbytes() { awk '{printf "%.0f\n", $7 * 512}' "$devstat"; }
# The ext4 journal since the card was mounted: its transactions, and the
# blocks it logged (jbd2 reports a whole-number average a transaction, so
# this is within one block a transaction). 0 0 where it is not reported.
jbd2_stats() {
	awk 'NR == 1 {tx = $1} / logged blocks per transaction/ {b = $1} END {printf "%d %d\n", tx, tx * b}' "$jbd2info" 2>/dev/null ||
		echo "0 0"
}

# edgeq's group commits so far, from its /metrics: fsyncs, seconds in them,
# ops they made durable. 0 0 0 for a peer.
syncs() {
	case $1 in edgeq | base | native) ;; *) echo "0 0 0"; return ;; esac
	curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" | awk '$1 == "edgeq_sync_seconds_count" {n = $2}
		$1 == "edgeq_sync_seconds_sum" {s = $2} $1 == "edgeq_sync_ops_sum" {o = $2}
		END {printf "%d %.6f %d\n", n, s, o}' || echo "0 0 0"
}

# incg CMD...: start CMD inside the current cgroup, in the background; its
# PID is appended to pids.
incg() {
	( for f in "${CGPROCS[@]}"; do echo "$BASHPID" > "$f"; done; exec "$@" ) &
	pids+=($!)
}
wait_port() {
	local i
	for i in $(seq 300); do
		(exec 3<> "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		kill -0 "${pids[-1]}" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# The throttle probe: 200 synced 4 KiB writes inside the cgroup must take
# about a second at 200 IOPS, and be charged to the cgroup.
cg_make probe
before=$(cg_wios)
t0=$(date +%s%N)
incg dd if=/dev/zero of="$mnt/probe" bs=4k count=200 oflag=dsync status=none
wait "${pids[-1]}"; pids=()
ms=$((($(date +%s%N) - t0) / 1000000))
charged=$(($(cg_wios) - before))
rm -f "$mnt/probe"
rm_cgroups
log "throttle probe: 200 dsync 4 KiB writes in ${ms} ms inside the cgroup, $charged write IOs charged to it"
[ "$charged" -ge 200 ] && [ "$ms" -ge 600 ] ||
	die "the write throttle on $loopdev ($devno) does not apply: ${ms} ms, $charged IOs charged"

cg_load
mkdir -p "$OUT"
results=$OUT/results.jsonl
: > "$results"

cat > "$work/edgeq.yaml" <<YAML
data_dir: $mnt/edgeq
http: {addr: "127.0.0.1:$HTTP_PORT"}
storage: {sync: always, memory: small}
log: {format: json}
queues:
  mixed: {handler: {type: http, url: "http://127.0.0.1:$SINK_PORT/"}}
YAML
# native: the same daemon with the native protocol's TCP listener as well.
sed "s/^http: .*/&\nnative: {listen: \"127.0.0.1:$NATIVE_PORT\"}/" "$work/edgeq.yaml" > "$work/native.yaml"

# start SYSTEM: start it in a fresh cgroup on a clean card, mounted afresh
# so that the journal's counters start at zero; prints its port.
start() {
	rm -rf "${mnt:?}"/*; sync -f "$mnt"
	umount "$mnt"; mount -o noatime "$loopdev" "$mnt"
	cg_make "$1-$2"
	case $1 in
	edgeq)
		local tr=()
		if [ "$TRACE" = 1 ]; then
			tr=(strace -f -y -s 0 -o "$OUT/strace-$1-$2.log"
				-e trace=fsync,fdatasync,msync,pwrite64,write,mmap,rename,renameat,ftruncate,fallocate)
		fi
		GOMEMLIMIT=$GOMEMLIMIT_UNIT incg "${tr[@]}" "$work/edgeq" serve --config "$work/edgeq.yaml" 2> "$OUT/$1-$2.log"
		PORT=$HTTP_PORT ;;
	base)
		GOMEMLIMIT=$GOMEMLIMIT_UNIT incg "$BASE_BIN" serve --config "$work/edgeq.yaml" 2> "$OUT/$1-$2.log"
		PORT=$HTTP_PORT ;;
	native)
		GOMEMLIMIT=$GOMEMLIMIT_UNIT incg "$work/edgeq" serve --config "$work/native.yaml" 2> "$OUT/$1-$2.log"
		PORT=$NATIVE_PORT ;;
	redis | asynq)
		mkdir -p "$mnt/redis"
		incg redis-server --bind 127.0.0.1 --port $REDIS_PORT --dir "$mnt/redis" --save "" \
			--appendonly yes --appendfsync always --daemonize no > "$OUT/$1-$2.log" 2>&1
		PORT=$REDIS_PORT ;;
	beanstalkd)
		mkdir -p "$mnt/beanstalkd"
		incg beanstalkd -l 127.0.0.1 -p $BEAN_PORT -b "$mnt/beanstalkd" -f 0 > "$OUT/$1-$2.log" 2>&1
		PORT=$BEAN_PORT ;;
	esac
	wait_port $PORT || die "$1 did not start: see $OUT/$1-$2.log"
	# Under strace the daemon is strace's child: measured, and stopped, too.
	if [ "$1" = edgeq ] && [ "$TRACE" = 1 ]; then
		local child
		child=$(pgrep -P "${pids[0]}" | head -1) || die "edgeq under strace: no child of ${pids[0]}"
		pids+=("$child")
	fi
}
stop() { stop_pids; rm_cgroups; }

# load SYSTEM WORKLOAD: runs the measured part of a workload; prints
# pibench's JSON line.
load() {
	local sys=${1/base/edgeq} addr=127.0.0.1:$PORT
	[ "$sys" = native ] && sys=edgeq-native addr=native://127.0.0.1:$PORT
	local pb=(inload "$work/pibench" -system "$sys" -addr "$addr" -queue bench)
	if [ "$sys" = asynq ]; then
		local ab=(inload "$work/asynqbench" -addr "127.0.0.1:$PORT" -queue bench)
		case $2 in
		a) "${ab[@]}" -workload single -clients 64 -duration "${DURATION}s" ;;
		c) "${ab[@]}" -workload drain -clients 8 -count "$BACKLOG" -timeout "${TIMEOUT}s" ;;
		esac
		return
	fi
	case $2 in
	a) "${pb[@]}" -workload single -clients 64 -duration "${DURATION}s" ;;
	b) "${pb[@]}" -workload batch -batch 100 -clients 8 -duration "${DURATION}s" ;;
	c) "${pb[@]}" -workload drain -clients 8 -count "$BACKLOG" -timeout "${TIMEOUT}s" ;;
	d) inload "$work/pibench" -system edgeq -addr "127.0.0.1:$PORT" -queue mixed -workload mixed -clients 8 \
		-rate "$RATE" -sink "127.0.0.1:$SINK_PORT" -duration "${DURATION}s" ;;
	e) "${pb[@]}" -workload fill -batch 100 -clients 8 -count "$FILL" -timeout "${TIMEOUT}s" ;;
	f) "${pb[@]}" -workload wear -clients 32 -count "$WEAR" -timeout "${TIMEOUT}s" ;;
	esac
}

# measure SYSTEM WORKLOAD ROUND: one bounded run, one line in results.jsonl.
measure() {
	local sys=$1 w=$2 round=$3
	start "$sys" "$w$round"
	local pid=${pids[-1]}
	if [ "$w" = c ] && [ "$sys" = asynq ]; then
		inload "$work/asynqbench" -addr "127.0.0.1:$PORT" -queue bench -workload prefill -count "$BACKLOG" \
			-timeout "${TIMEOUT}s" > /dev/null
		sync -f "$mnt"
	elif [ "$w" = c ]; then
		local psys=${sys/base/edgeq} paddr=127.0.0.1:$PORT
		[ "$sys" = native ] && psys=edgeq-native paddr=native://127.0.0.1:$PORT
		inload "$work/pibench" -system "$psys" -addr "$paddr" -queue bench -workload prefill -batch 100 \
			-clients 8 -count "$BACKLOG" -timeout "${TIMEOUT}s" > /dev/null
		sync -f "$mnt"
	fi
	local cpu0 cb0 ci0 db0 di0 pw0 jt0 jb0 tp0 tn0 tt0 line
	cpu0=$(cg_cpu_us) cb0=$(cg_wbytes) ci0=$(cg_wios) db0=$(dev_wbytes) di0=$(dev_wios)
	read -r tp0 tn0 tt0 < <(cg_throttle)
	local sn0 ss0 so0 sn ss so
	read -r sn0 ss0 so0 < <(syncs "$sys")
	read -r jt0 jb0 < <(jbd2_stats)
	pw0=$(awk '$1 == "write_bytes:" {print $2}' /proc/$pid/io 2>/dev/null || echo 0)
	local tlines=0
	[ "$TRACE" = 1 ] && [ "$sys" = edgeq ] && tlines=$(wc -l < "$OUT/strace-$sys-$w$round.log")
	line=$(load "$sys" "$w") || die "$sys workload $w: the load generator failed"
	# Count what the run left in the page cache too: flush it to the card.
	local pw1 hwm ma mc mm
	read -r sn ss so < <(syncs "$sys")
	read -r ma mc mm < <(cg_memstat)
	pw1=$(awk '$1 == "write_bytes:" {print $2}' /proc/$pid/io 2>/dev/null || echo 0)
	hwm=$(awk '$1 == "VmHWM:" {printf "%.0f\n", $2 * 1024}' /proc/$pid/status)
	sync -f "$mnt"
	local cpu=$(($(cg_cpu_us) - cpu0)) cb=$(($(cg_wbytes) - cb0)) ci=$(($(cg_wios) - ci0))
	local db=$(($(dev_wbytes) - db0)) di=$(($(dev_wios) - di0)) peak jt jb tp tn tt
	read -r jt jb < <(jbd2_stats)
	read -r tp tn tt < <(cg_throttle)
	tp=$((tp - tp0)) tn=$((tn - tn0)) tt=$((tt - tt0))
	jt=$((jt - jt0)) jb=$((jb - jb0))
	peak=$(cg_peak)
	if [ "$tlines" != 0 ]; then
		# The calls of the load only: the trace from where it stood before.
		"$work/pibench" -trace "$OUT/strace-$sys-$w$round.log" -trace-from $((tlines + 1)) -trace-dir "$mnt/" -dev-wios $di -dev-wbytes $db \
			-jbd2-tx $jt -jbd2-blocks $jb > "$OUT/commits-$sys-$w$round.md" ||
			log "$sys $w$round: no group commit in the trace"
	fi
	local gov=""
	if [ "$sys" = edgeq ] || [ "$sys" = base ] || [ "$sys" = native ]; then
		gov=$(grep '"governor level changed"' "$OUT/$sys-$w$round.log" |
			sed -E 's/.*"to":"([a-z]+)".*"reason":"([^"]*)".*/\1 (\2)/' | paste -sd'#' - || true)
	fi
	stop
	[ "$sys" = base ] && line=${line/\"system\":\"edgeq\"/\"system\":\"base\"}
	line="${line%\}},\"round\":$round,\"cpu_us\":$cpu,\"cg_wbytes\":$cb,\"cg_wios\":$ci,\"dev_wbytes\":$db,\"dev_wios\":$di,\"proc_wbytes\":$((pw1 - pw0)),\"cg_peak\":$peak,\"jbd2_tx\":$jt,\"jbd2_blocks\":$jb,\"cpu_periods\":$tp,\"cpu_throttled\":$tn,\"throttled_us\":$tt,\"syncs\":$((sn - sn0)),\"sync_s\":$(awk -v a="$ss" -v b="$ss0" 'BEGIN {printf "%.6f", a - b}'),\"sync_ops\":$((so - so0)),\"cg_anon\":$ma,\"cg_cache\":$mc,\"cg_mapped\":$mm,\"vmhwm\":$hwm,\"governor\":\"${gov//\"/}\"}"
	echo "$line" >> "$results"
	log "$line"
}

t_start=$(date +%s)
for round in $(seq "$RUNS"); do
	for w in $WORKLOADS; do
		for sys in "${systems[@]}"; do
			[ "$w" = d ] && [ "$sys" != edgeq ] && [ "$sys" != base ] && continue
			[ "$sys" = asynq ] && [[ $w != [ac] ]] && continue # asynq has no batch enqueue
			[ "$sys" = native ] && [[ $w != [ac] ]] && continue # issue 17's comparison: a and c
			measure "$sys" "$w" "$round"
		done
	done
done
"$work/pibench" -summarize "$results" | tee "$OUT/table.md"
log "done in $(($(date +%s) - t_start)) s; raw results in $results"

if [ "$SMOKE" = 1 ]; then
	"$work/pibench" -check "$results" || die "smoke: the harness measured nothing it should have"
	log "smoke: ok"
fi
