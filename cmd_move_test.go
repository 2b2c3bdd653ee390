package main

import (
	"maps"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/edgeq/edgeq/transport/httpapi"
)

func TestMove(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	enqueueN(t, addr, "slow", "1", "2", "3", "4", "5")

	if out := mustCLI(t, addr, "move", "slow", "--to", "fast", "--dry-run"); out != "would move 5 ready jobs from slow to fast; 5 left in slow\n" {
		t.Errorf("dry run printed %q", out)
	}
	if out := mustCLI(t, addr, "move", "slow", "--to", "fast", "--limit", "2", "--rate", "100"); out != "moved 2 ready jobs from slow to fast; 3 left in slow\n" {
		t.Errorf("move printed %q", out)
	}
	var res httpapi.MoveResult
	decodeJSON(t, mustCLI(t, addr, "move", "slow", "--to", "fast", "--json"), &res)
	if res != (httpapi.MoveResult{Moved: 3, Remaining: 0}) {
		t.Errorf("move --json = %+v", res)
	}
	killJobs(t, addr, "fast", 2)
	decodeJSON(t, mustCLI(t, addr, "move", "fast", "--to", "repair", "--state", "dead", "--json"), &res)
	if res != (httpapi.MoveResult{Moved: 2, Remaining: 0}) {
		t.Errorf("move dead --json = %+v", res)
	}
	var list httpapi.QueueList
	decodeJSON(t, mustCLI(t, addr, "queue", "list", "--json"), &list)
	counts := map[string][2]int64{}
	for _, q := range list.Queues {
		counts[q.Name] = [2]int64{q.Ready, q.Dead}
	}
	if counts["slow"] != [2]int64{0, 0} || counts["fast"] != [2]int64{3, 0} || counts["repair"] != [2]int64{2, 0} {
		t.Errorf("ready, dead by queue after the moves: %v", counts)
	}
	if r := callCLI(t, addr, "move", "nosuch", "--to", "fast"); r.code != exitFailure {
		t.Errorf("move from an unknown queue: %+v, want exit 1", r)
	}
}

// TestMoveProgress moves a paced backlog: standard error gets a line per
// step (moved, left, rate, ETA), and a dry run's JSON says would_move.
func TestMoveProgress(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	enqueueN(t, addr, "slow", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12")

	var dry map[string]int
	decodeJSON(t, mustCLI(t, addr, "move", "slow", "--to", "fast", "--dry-run", "--json"), &dry)
	if !maps.Equal(dry, map[string]int{"would_move": 12, "remaining": 12}) {
		t.Errorf("move --dry-run --json = %v, want would_move 12, remaining 12", dry)
	}

	// At 8 jobs a second, steps of half a second: 4 jobs each.
	r := callCLI(t, addr, "move", "slow", "--to", "fast", "--rate", "8", "--limit", "12")
	if r.code != 0 || r.stdout != "moved 12 ready jobs from slow to fast; 0 left in slow\n" {
		t.Fatalf("move: %+v", r)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	re := regexp.MustCompile(`^moved (\d+) of 12; (\d+) left in slow; [0-9.]+ jobs/s; ETA \S+$`)
	if len(lines) != 2 {
		t.Fatalf("move's stderr %q: want a line for each of the 2 steps before the last", r.stderr)
	}
	for i, line := range lines {
		m := re.FindStringSubmatch(line)
		if m == nil || m[1] != strconv.Itoa(4*(i+1)) || m[2] != strconv.Itoa(12-4*(i+1)) {
			t.Errorf("progress line %d = %q, want moved %d and %d left", i+1, line, 4*(i+1), 12-4*(i+1))
		}
	}
}
