package httpapi

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
)

// The real engine satisfies the interface this package declares.
var _ Engine = (*engine.Engine)(nil)

// realServer is a server on 127.0.0.1 over a real engine and the in-memory
// store.
type realServer struct {
	eng    *engine.Engine
	base   string // the server's URL
	hc     *http.Client
	client *Client
}

// startRealServer starts a realServer of an engine of cfg; when the test
// ends the server shuts down, then the engine stops.
func startRealServer(t *testing.T, cfg engine.Config) realServer {
	t.Helper()
	eng, err := engine.New(cfg, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eng.Stop(context.Background()); err != nil {
			t.Errorf("engine Stop: %v", err)
		}
	})
	s, err := New(Config{Addr: "127.0.0.1:0"}, eng)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{}
	// Registered after the engine's cleanup, so it runs first: stop ingest,
	// then the engine.
	t.Cleanup(func() {
		hc.CloseIdleConnections()
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	base := "http://" + s.Addr().String()
	return realServer{eng: eng, base: base, hc: hc, client: NewClient(base, "", hc)}
}

// TestRealEngine wires the server to a real engine over the in-memory store
// (STYLE: transports are tested against a real engine too): one job through
// enqueue, lease and ack, a batch and a refusal. The fake-engine tests cover
// every answer; this one guards the wiring.
func TestRealEngine(t *testing.T) {
	c := startRealServer(t, engine.Config{}).client
	ctx := t.Context()

	res, err := c.Enqueue(ctx, "q", []byte(`{"a":1}`), EnqueueOptions{ContentType: "application/json", Headers: map[string]string{"X": "y"}})
	if err != nil || res.Duplicate || res.ID == "" {
		t.Fatalf("Enqueue = %+v, %v", res, err)
	}
	if _, err := c.EnqueueBatch(ctx, "q", []BatchLine{{Payload: []byte("b")}}); err != nil {
		t.Fatalf("EnqueueBatch: %v", err)
	}
	jobs, err := c.Lease(ctx, "q", 1, time.Second, 0)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Lease = %d jobs, %v", len(jobs), err)
	}
	j := jobs[0]
	if j.ID != res.ID || string(j.Payload) != `{"a":1}` || j.Headers["x"] != "y" || j.Lease == nil {
		t.Fatalf("leased %+v", j)
	}
	if err := c.Ack(ctx, j.ID, j.Lease.ID); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if err := c.Ack(ctx, j.ID, j.Lease.ID); err != nil {
		t.Errorf("Ack repeated with the same lease: %v, want nil", err)
	}
	if err := c.Ack(ctx, j.ID, "0000000000000003"); !errors.Is(err, job.ErrLeaseLost) {
		t.Errorf("Ack of the finished job with another lease: %v, want lease_lost", err)
	}
	if _, err := c.Enqueue(ctx, "Bad", nil, EnqueueOptions{}); !errors.Is(err, job.ErrInvalidQueue) {
		t.Errorf("Enqueue to an invalid name = %v", err)
	}

}

// TestClientAckResult: Client.AckResult sends a result that a queue with
// retain_done keeps and Job shows: JSON as JSON, other bytes in base64.
func TestClientAckResult(t *testing.T) {
	c := startRealServer(t, engine.Config{Queues: map[string]engine.QueueConfig{"r": {RetainDone: time.Hour}}}).client
	ctx := t.Context()
	for _, tc := range []struct{ result, json, b64 string }{
		{`{"rows":3}`, `{"rows":3}`, ""},
		{"\x00raw", "", "\x00raw"},
	} {
		if _, err := c.Enqueue(ctx, "r", []byte("p"), EnqueueOptions{}); err != nil {
			t.Fatal(err)
		}
		jobs, err := c.Lease(ctx, "r", 1, time.Second, 0)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("Lease = %d jobs, %v", len(jobs), err)
		}
		if err := c.AckResult(ctx, jobs[0].ID, jobs[0].Lease.ID, []byte(tc.result)); err != nil {
			t.Fatalf("AckResult: %v", err)
		}
		j, err := c.Job(ctx, jobs[0].ID)
		if err != nil || j.State != "done" || string(j.Result) != tc.json || string(j.ResultB64) != tc.b64 {
			t.Errorf("job after AckResult(%q) = %+v, %v; want done with result %q / result_b64 %q", tc.result, j, err, tc.json, tc.b64)
		}
	}
}
