package uplink

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
)

// failingCollector refuses its second request whole (503: unreached) and
// lists the third job of its fourth and sixth requests as failed while
// taking the rest of them.
func failingCollector(t *testing.T) *collector {
	return newCollector(t, func(n int, lines []line, w http.ResponseWriter) bool {
		switch {
		case n == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		case (n == 3 || n == 5) && len(lines) >= 3:
			w.WriteHeader(http.StatusOK)
			json.NewEncoder(w).Encode(map[string][]string{"failed": {lines[2].ID}})
			return true
		}
		return false
	}).start(t)
}

// accepted answers the ids the collector took, in the order it took them:
// every line of a 2xx answer but those it listed as failed.
func (c *collector) accepted(failed func(n int, l line) bool) []string {
	var ids []string
	for n, r := range c.requests() {
		for _, l := range r.lines {
			if !failed(n, l) {
				ids = append(ids, l.ID)
			}
		}
	}
	return ids
}

// lastCopies keeps the last copy of each id, in order.
func lastCopies(ids []string) []string {
	last := map[string]int{}
	for i, id := range ids {
		last[id] = i
	}
	var out []string
	for i, id := range ids {
		if last[id] == i {
			out = append(out, id)
		}
	}
	return out
}

// runOrdered sends n jobs, all enqueued before the queue runs, through an
// http uplink to the failing collector from a queue with the given
// ordered setting, and answers what the collector took, in order.
func runOrdered(t *testing.T, ordered bool, n int) (ids []string, want []string) {
	c := failingCollector(t)
	u := startHTTPUplink(t, Config{URL: c.srv.URL, Timeout: 5 * time.Second, Batch: Batch{MaxJobs: 10, Linger: 5 * time.Millisecond}})
	e, err := engine.New(engine.Config{
		Workers: 40,
		Backoff: engine.Backoff{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond},
		Queues: map[string]engine.QueueConfig{
			"events": {Concurrency: 20, Ordered: ordered, Handler: u.QueueHandler(job.ClassNormal, ordered)},
		},
	}, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Stop(ctx)
	})
	if err := e.Pause(t.Context(), "events"); err != nil {
		t.Fatal(err)
	}
	for range n {
		r, err := e.Enqueue(t.Context(), job.New{Queue: "events", ContentType: "application/json", Payload: []byte(`{"v":1}`)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, r.ID.String())
	}
	if err := e.Resume(t.Context(), "events"); err != nil {
		t.Fatal(err)
	}
	if s := waitDrained(t, e, "events", 20*time.Second); s.Ready+s.Delayed+s.Leased != 0 || s.Dead != 0 {
		t.Fatalf("queue not drained: %+v", s)
	}
	reqs := c.requests()
	return c.accepted(func(k int, l line) bool {
		return k == 1 || ((k == 3 || k == 5) && len(reqs[k].lines) >= 3 && l.ID == reqs[k].lines[2].ID)
	}), want
}

// TestOrderedUplinkKeepsOrderThroughFailures: an ordered queue's jobs
// reach a collector that refuses a whole batch and fails single jobs of
// others: a failed job is sent again before any later job of its queue
// (the rest of its batch is sent again after it, so the last copy of each
// job the collector took is in enqueue order) and every job arrives. With
// ordered: false the retries go to the back of the queue.
func TestOrderedUplinkKeepsOrderThroughFailures(t *testing.T) {
	const n = 200
	ids, want := runOrdered(t, true, n)
	if got := lastCopies(ids); !slices.Equal(got, want) {
		t.Errorf("ordered: the collector's last copies are not the %d jobs in enqueue order: %v", n, got)
	}

	ids, want = runOrdered(t, false, n)
	got := lastCopies(ids)
	if !slices.Equal(slices.Sorted(slices.Values(got)), want) {
		t.Errorf("unordered: %d distinct jobs arrived, want the %d enqueued", len(got), n)
	}
	if slices.IsSorted(got) {
		t.Errorf("unordered: the jobs arrived in enqueue order; want the retries after later jobs")
	}
}
