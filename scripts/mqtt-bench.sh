#!/usr/bin/env bash
# QoS 1 ingest through a local mosquitto: edgeq vs mosquitto's own fan-in to
# a plain persistent-session subscriber, from 1 and 8 publishers, in one run.
# Needs mosquitto (Debian: apt-get install mosquitto). Everything listens on
# 127.0.0.1 and is stopped by PID at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
INFLIGHT=${INFLIGHT:-20}
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
cat > "$work/mosquitto.conf" <<CONF
listener 18830 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages $INFLIGHT
max_queued_messages 1000000
CONF
go build -o "$work/edgeq" .
go build -o "$work/mqbench" ./scripts/mqbench
"$MOSQ" -c "$work/mosquitto.conf" > "$work/mosq.log" 2>&1 & pids+=($!)
"$work/edgeq" serve --data-dir "$work/data" --http-addr 127.0.0.1:18080 \
	--mqtt-broker tcp://127.0.0.1:18830 > "$work/edgeq.log" 2>&1 & pids+=($!)
sleep 2
for pubs in 1 8; do
	"$work/mqbench" -mode sub -clean=false -pubs "$pubs" -n "$N" -queue "s$pubs"
	"$work/mqbench" -mode edgeq -pubs "$pubs" -n "$N" -queue "e$pubs"
done
