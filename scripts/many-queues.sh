#!/usr/bin/env bash
# Many queues (issue 14 item 5): start BIN (default ./edgeq) on a fresh data
# directory, post one job to each of N (default 3000) new queues, scrape
# /metrics and print the queues made, the sizes of /metrics and /v1/stats and
# the resident memory after the scrape. Needs curl.
#   scripts/many-queues.sh [BIN] [N]
set -euo pipefail

bin=${1:-./edgeq}
n=${2:-3000}
port=${PORT:-17931}
base=http://127.0.0.1:$port
data=$(mktemp -d)
"$bin" serve --data-dir "$data" --http-addr "127.0.0.1:$port" --log-level warn >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do
	curl -sf "$base/healthz" >/dev/null && break
	sleep 0.1
done
seq 0 $((n - 1)) | xargs -P 8 -I{} curl -s -o /dev/null -X POST --data x "$base/v1/queues/q{}/jobs"
metrics=$(curl -s "$base/metrics")
echo "queues:          $(curl -s "$base/v1/queues" | grep -o '"name"' | wc -l)"
echo "/metrics bytes:  $(printf '%s\n' "$metrics" | wc -c)"
echo "/metrics series: $(printf '%s\n' "$metrics" | grep -c '^edgeq_')"
echo "/v1/stats bytes: $(curl -s "$base/v1/stats" | wc -c)"
echo "RSS:             $(grep VmRSS "/proc/$pid/status" | tr -s ' \t' ' ' | cut -d' ' -f2-)"
