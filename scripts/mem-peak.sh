#!/usr/bin/env bash
# mem-peak.sh RUNS EDGEQ...: the real daemon's peak memory, with no
# environment variable set (no GOMEMLIMIT), during a 300k-job fill (edgeq
# bench, 8 producers, batches of 100), a 1M-job fill (batches of 1,000), and
# a restart on the 1M store (time to /readyz 200 and the peak while it opens).
# /proc/PID/status is sampled every 100 ms; VmHWM is the kernel's own peak.
#
#   go build -o /tmp/edgeq . && scripts/mem-peak.sh 3 /tmp/edgeq
#
# Several binaries (a baseline first) run interleaved, round by round, so
# that a noisy shared machine shifts them alike. An argument enc:EDGEQ runs
# EDGEQ on an encrypted store (storage.encryption_key_file, a new key in the
# work directory), so the same binary can be compared plain and encrypted:
#
#   scripts/mem-peak.sh 3 /tmp/edgeq enc:/tmp/edgeq
#
# PHASES picks the phases (default "300k 1M restart"; restart needs 1M).
# Output: one line per binary, phase and run, MiB (peaks over the phase;
# "now" is the last sample, 30 s after the fill), then the medians of each
# binary and phase.
set -euo pipefail

runs=${1:?usage: mem-peak.sh RUNS EDGEQ...}
shift
bins=("$@")
phases=${PHASES:-300k 1M restart}
work=$(mktemp -d)
port=${PORT:-17393}
addr="127.0.0.1:$port"
daemon=""
sampler=""

cleanup() {
	if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; fi
	if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
unset GOMEMLIMIT GOGC

# sample PID OUT: every 100 ms, the peaks of VmHWM, RssAnon and RssFile (kB)
# into OUT, until PID goes or the sampler is killed.
sample() {
	local pid=$1 out=$2 hwm=0 anon=0 file=0
	while [ -r "/proc/$pid/status" ]; do
		read -r h a f < <(awk '/^VmHWM:/{h=$2} /^RssAnon:/{a=$2} /^RssFile:/{f=$2} END{print h+0, a+0, f+0}' "/proc/$pid/status" 2>/dev/null || echo "0 0 0")
		((h > hwm)) && hwm=$h
		((a > anon)) && anon=$a
		((f > file)) && file=$f
		echo "$hwm $anon $file" >"$out.tmp" && mv "$out.tmp" "$out"
		sleep 0.1
	done
}

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/key"
chmod 600 "$work/key"
printf 'storage:\n  encryption_key_file: %s\n' "$work/key" >"$work/enc.yaml"

start() { # start DIR: the daemon on DIR, its PID in $daemon
	if [ -n "$config" ]; then
		EDGEQ_CONFIG=$config "$bin" serve --data-dir "$1" --http-addr "$addr" >>"$work/log" 2>&1 &
	else
		"$bin" serve --data-dir "$1" --http-addr "$addr" >>"$work/log" 2>&1 &
	fi
	daemon=$!
}

ready() { # waits for /readyz 200, at most 60 s
	for _ in $(seq 6000); do
		if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/readyz")" = 200 ]; then return 0; fi
		sleep 0.01
	done
	echo "not ready after 60 s" >&2
	return 1
}

peaks() { # peaks NAME: stop the sampler, print its peaks in MiB
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	sampler=""
	local now
	now=$(awk '/^VmRSS:/{v=$2} /^RssAnon:/{a=$2} END{printf "%.0f/%.0f", v/1024, a/1024}' "/proc/$daemon/status")
	awk -v run="$run/$b" -v name="$1" -v now="$now" -v extra="$2" '{printf "run %s %-8s VmHWM %5.0f  RssAnon %5.0f  RssFile %5.0f  now(VmRSS/RssAnon) %s %s\n", run, name, $1/1024, $2/1024, $3/1024, now, extra}' "$work/peaks" | tee -a "$work/results"
}

stop() {
	kill "$daemon"
	wait "$daemon" 2>/dev/null || true
	daemon=""
}

fill() { # fill NAME COUNT BATCH DIR
	: >"$work/log"
	start "$4"
	sample "$daemon" "$work/peaks" &
	sampler=$!
	ready
	local t0 t1
	t0=$(date +%s.%N)
	"$bin" bench --addr "http://$addr" --producers 8 --batch "$3" --count "$2" --keep --json 2>/dev/null >"$work/bench.json"
	t1=$(date +%s.%N)
	sleep 30
	# The governor's levels during the fill and the refusals the bench saw.
	local gov errs
	gov=$(grep -o 'governor level changed.* to=[a-z]*' "$work/log" | grep -o 'to=[a-z]*' | sort -u | tr '\n' ' ')
	errs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["errors"] or "none")' "$work/bench.json" | tr -d ' ')
	peaks "$1" "$(awk -v a="$t0" -v b="$t1" -v n="$2" 'BEGIN{printf "jobs/s %.0f", n/(b-a)}') governor[${gov% }] errors $errs"
	stop
}

for run in $(seq "$runs"); do
	for b in "${!bins[@]}"; do
		bin=${bins[$b]} config=""
		if [ "${bin#enc:}" != "$bin" ]; then bin=${bin#enc:} config=$work/enc.yaml; fi
		rm -rf "$work/d300" "$work/d1m"
		case " $phases " in *" 300k "*) fill 300k 300000 100 "$work/d300" ;; esac
		case " $phases " in *" 1M "*) fill 1M 1000000 1000 "$work/d1m" ;; esac
		case " $phases " in *" restart "*)
			# Restart on the 1M store, page cache dropped: time to ready, peaks
			# over the open and the 10 s after.
			sync
			echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
			t0=$(date +%s.%N)
			start "$work/d1m"
			sample "$daemon" "$work/peaks" &
			sampler=$!
			ready
			t1=$(date +%s.%N)
			# The CPU time to ready too: on a loaded host the wall time is
			# mostly waiting for a core.
			cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$daemon/stat")
			sleep 10
			peaks restart "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "ready %.2f s", b-a}') cpu $cpu s"
			stop
			;;
		esac
		rm -rf "$work/d300" "$work/d1m"
	done
done

echo "medians over $runs run(s), MiB:"
for b in "${!bins[@]}"; do
	for phase in $phases; do
		awk -v p="$phase" -v b="$b" -v bin="${bins[$b]}" 'BEGIN { n = 0 } $3 == p && $2 ~ "/" b "$" { h[n] = $5; a[n] = $7; f[n] = $9; r[n] = $13; label = $12; n++ }
			function med(x, n,   i, j, t) { for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t } return x[int((n - 1) / 2)] }
			END { if (n) printf "%s %-8s VmHWM %5.0f  RssAnon %5.0f  RssFile %5.0f  %s %s\n", bin, p, med(h, n), med(a, n), med(f, n), label, med(r, n) }' "$work/results"
	done
done
