# Sourced by the scripts that measure two revisions interleaved round by
# round (bench-compare.sh, cpu-per-job.sh): a worktree and build of each,
# and one daemon at a time on a port free when it starts. The EXIT trap
# stops the daemon and removes the worktrees.
repo=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
port=""
daemon=""

revisions_cleanup() {
	if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; fi
	for side in old new; do
		if [ -d "$work/$side" ]; then git -C "$repo" worktree remove --force "$work/$side" >/dev/null 2>&1 || true; fi
	done
	rm -rf "$work"
}
trap revisions_cleanup EXIT

# revisions_build OLD NEW BUILD: checks out OLD and NEW into $work/old and
# $work/new and runs BUILD SIDE in each (BUILD writes $work/SIDE.*).
revisions_build() {
	local side rev
	for side in old new; do
		rev=$1
		if [ "$side" = new ]; then rev=$2; fi
		git -C "$repo" worktree add --detach "$work/$side" "$rev" >/dev/null 2>&1
		(cd "$work/$side" && "$3" "$side")
		echo "built $side = $(git -C "$repo" rev-parse --short "$rev")" >&2
	done
}

# daemon_start BIN DIR: `BIN serve` on DIR at 127.0.0.1:$port, a port free
# now (never load another daemon that listens on a fixed one); its PID in
# $daemon. Exits the script when it does not answer /healthz.
daemon_start() {
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	"$1" serve --data-dir "$2" --http-addr "127.0.0.1:$port" >"$2.log" 2>&1 &
	daemon=$!
	for _ in $(seq 100); do
		if curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "daemon did not start:" >&2
	cat "$2.log" >&2
	exit 1
}

# daemon_stop: stops the daemon daemon_start started.
daemon_stop() {
	kill "$daemon"
	wait "$daemon" 2>/dev/null || true
	daemon=""
}
