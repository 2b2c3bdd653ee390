package main

import (
	"strings"
	"testing"

	"github.com/edgeq/edgeq/transport/httpapi"
)

// TestGovernorDrill forces the critical level, under which a normal queue
// is shed: the CLI exits 75 so that scripts retry.
func TestGovernorDrill(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	out := mustCLI(t, addr, "governor", "status")
	if !strings.HasPrefix(out, "governor: ") || strings.Count(out, "\n") != 1 {
		t.Errorf("governor status printed %q", out)
	}
	var g httpapi.GovernorStats
	decodeJSON(t, mustCLI(t, addr, "governor", "drill", "critical", "--for", "1m", "--json"), &g)
	if g.Level != "critical" || g.Drill == nil || g.Drill.Level != "critical" {
		t.Errorf("drill --json = %+v", g)
	}
	if out := mustCLI(t, addr, "governor", "status"); !strings.Contains(out, "drill critical until") {
		t.Errorf("status during a drill: %q", out)
	}
	r := runCLI(t, env{}, "enqueue", "--addr", addr, "mail", "x")
	if r.code != exitTempFail || !strings.Contains(r.stderr, "shed") {
		t.Errorf("enqueue during a critical drill: %+v, want exit 75 and shed", r)
	}
	r = callCLI(t, addr, "move", "other", "--to", "mail")
	if r.code != exitFailure && r.code != exitTempFail {
		t.Errorf("move into a shed queue: %+v", r)
	}
	decodeJSON(t, mustCLI(t, addr, "governor", "clear", "--json"), &g)
	if g.Drill != nil {
		t.Errorf("clear left a drill: %+v", g)
	}
}

// TestQueueFullExit75 fills a queue with max_depth 1: the second enqueue is
// refused with 429 queue_full and exit 75.
func TestQueueFullExit75(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, "edgeq.yaml", "queues:\n  tiny: {max_depth: 1}\n")
	addr := startDaemon(t, "--config", cfg)
	enqueueN(t, addr, "tiny", "a")
	r := runCLI(t, env{}, "enqueue", "--addr", addr, "tiny", "b")
	if r.code != exitTempFail || !strings.Contains(r.stderr, "queue_full") {
		t.Errorf("enqueue to a full queue: %+v, want exit 75 and queue_full", r)
	}
}
