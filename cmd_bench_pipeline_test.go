package main

import (
	"strings"
	"testing"

	"github.com/edgeq/edgeq/transport/httpapi"
)

// TestBenchCoalesceAndPipeline (issues 16 and 17): producers with
// --coalesce share batch requests and each job is counted once; consumers
// that lease one job at a time with --pipeline (the next lease in flight
// while the last ack is) consume every job exactly once.
func TestBenchCoalesceAndPipeline(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	cl := httpapi.NewClient("http://"+addr, "", nil)
	defer cl.CloseIdleConnections()
	r := callCLI(t, addr, "bench", "--producers", "16", "--count", "400", "--coalesce", "--queue", "c1", "--keep", "--json")
	var res benchResult
	decodeJSON(t, r.stdout, &res)
	if r.code != 0 || res.Enqueued != 400 || len(res.Errors) != 0 {
		t.Fatalf("bench --coalesce: enqueued %d, errors %v, %+v", res.Enqueued, res.Errors, r)
	}
	q, err := cl.Queue(t.Context(), "c1")
	if err != nil || q.Ready != 400 || q.EnqueuedTotal != 400 {
		t.Fatalf("after bench --coalesce: %+v, %v; want 400 ready", q, err)
	}
	r = callCLI(t, addr, "bench", "--producers", "0", "--consumers", "4", "--count", "400", "--lease-max", "1",
		"--pipeline", "--coalesce", "--queue", "c1", "--json")
	decodeJSON(t, r.stdout, &res)
	if r.code != 0 || res.Consumed != 400 || len(res.Errors) != 0 {
		t.Fatalf("bench --pipeline: consumed %d, errors %v, %+v", res.Consumed, res.Errors, r)
	}
	q, err = cl.Queue(t.Context(), "c1")
	if err != nil || q.CompletedTotal != 400 || q.Ready != 0 || q.Leased != 0 || q.RetriedTotal != 0 {
		t.Errorf("after bench --pipeline: %+v, %v; want 400 completed, nothing left", q, err)
	}
	if r := callCLI(t, addr, "bench", "--consumers", "1", "--lease-max", "0"); r.code != 2 {
		t.Errorf("bench --lease-max 0: exit %d, want 2", r.code)
	}
}

// TestBenchAckLease (issue 16 target 5): consumers with --ack-lease ack
// each job in their next lease request; every job is consumed exactly
// once and none is left leased at the end.
func TestBenchAckLease(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	cl := httpapi.NewClient("http://"+addr, "", nil)
	defer cl.CloseIdleConnections()
	if r := callCLI(t, addr, "bench", "--producers", "8", "--count", "300", "--batch", "50", "--queue", "al", "--keep"); r.code != 0 {
		t.Fatalf("fill: %+v", r)
	}
	r := callCLI(t, addr, "bench", "--producers", "0", "--consumers", "4", "--count", "300", "--lease-max", "1",
		"--ack-lease", "--queue", "al", "--json")
	var res benchResult
	decodeJSON(t, r.stdout, &res)
	if r.code != 0 || res.Consumed != 300 || len(res.Errors) != 0 || !res.Config.AckLease {
		t.Fatalf("bench --ack-lease: consumed %d, errors %v, %+v", res.Consumed, res.Errors, r)
	}
	q, err := cl.Queue(t.Context(), "al")
	if err != nil || q.CompletedTotal != 300 || q.Ready != 0 || q.Leased != 0 || q.RetriedTotal != 0 {
		t.Errorf("after bench --ack-lease: %+v, %v; want 300 completed, nothing left", q, err)
	}
	if r := callCLI(t, addr, "bench", "--consumers", "1", "--ack-lease", "--pipeline"); r.code != 2 || !strings.Contains(r.stderr, "--ack-lease") {
		t.Errorf("bench --ack-lease --pipeline: exit %d %q, want 2 naming --ack-lease", r.code, r.stderr)
	}
}
