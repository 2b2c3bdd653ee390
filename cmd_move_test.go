package main

import (
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
