package engine_test

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
)

// leaseIDs leases up to max jobs of q and answers their ids in lease order.
func leaseIDs(t *testing.T, e *engine.Engine, q string, max int) []job.ID {
	t.Helper()
	jobs, err := e.Lease(t.Context(), engine.LeaseRequest{Queue: q, Max: max, TTR: time.Hour})
	if err != nil {
		t.Fatalf("Lease(%s): %v", q, err)
	}
	ids := make([]job.ID, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
		if err := e.Ack(t.Context(), j.ID, j.LeaseID, nil); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func enqueueN(t *testing.T, e *engine.Engine, q string, n int) []job.ID {
	t.Helper()
	ids := make([]job.ID, n)
	for i := range ids {
		ids[i] = enqueue(t, e, job.New{Queue: q}).ID
	}
	return ids
}

// TestOrderedRetryHoldsItsPlace: in an ordered queue a retry keeps its
// place and no later job is leased while it waits; a lease that expires
// puts its job back at its place too. An unordered queue sends a retry to
// the back and serves the later jobs meanwhile.
func TestOrderedRetryHoldsItsPlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{Queues: map[string]engine.QueueConfig{"up": {Ordered: true}, "tel": {}}})
		for _, q := range []string{"up", "tel"} {
			ids := enqueueN(t, e, q, 6)
			jobs, err := e.Lease(t.Context(), engine.LeaseRequest{Queue: q, Max: 3, TTR: time.Hour})
			if err != nil || len(jobs) != 3 {
				t.Fatalf("%s: lease %d jobs, %v; want 3", q, len(jobs), err)
			}
			if err := e.Ack(t.Context(), jobs[0].ID, jobs[0].LeaseID, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Nack(t.Context(), jobs[1].ID, jobs[1].LeaseID, time.Minute, "link down"); err != nil {
				t.Fatal(err)
			}
			if err := e.Ack(t.Context(), jobs[2].ID, jobs[2].LeaseID, nil); err != nil {
				t.Fatal(err)
			}
			meanwhile := leaseIDs(t, e, q, 10)
			time.Sleep(time.Minute)
			synctest.Wait()
			after := leaseIDs(t, e, q, 10)
			want := [2][]job.ID{nil, {ids[1], ids[3], ids[4], ids[5]}}
			if q == "tel" {
				want = [2][]job.ID{ids[3:], ids[1:2]}
			}
			if !slices.Equal(meanwhile, want[0]) || !slices.Equal(after, want[1]) {
				t.Errorf("%s: leased %v while the retry waited, %v after; want %v, %v", q, meanwhile, after, want[0], want[1])
			}
			if s := stats(t, e, q); s.Ready+s.Delayed+s.Leased != 0 {
				t.Errorf("%s: %d ready, %d delayed, %d leased left; want none", q, s.Ready, s.Delayed, s.Leased)
			}
		}

		ids := enqueueN(t, e, "up", 3)
		if j := lease1(t, e, "up", time.Second); j.ID != ids[0] {
			t.Fatalf("leased %s, want %s", j.ID, ids[0])
		}
		time.Sleep(2 * time.Second) // the lease expires unanswered
		synctest.Wait()
		if got := leaseIDs(t, e, "up", 10); !slices.Equal(got, ids) {
			t.Errorf("after an expired lease leased %v, want %v", got, ids)
		}
	})
}

// TestOrderedOrderSurvivesRestart: a retry waiting keeps holding an
// ordered queue across a restart, and the jobs leased when the engine
// stopped go back to their places, so the queue runs in enqueue order.
func TestOrderedOrderSurvivesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.New()
		cfg := engine.Config{Queues: map[string]engine.QueueConfig{"up": {Ordered: true}}}
		e1, err := engine.New(cfg, st)
		if err != nil {
			t.Fatal(err)
		}
		if err := e1.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		ids := enqueueN(t, e1, "up", 5)
		jobs, err := e1.Lease(t.Context(), engine.LeaseRequest{Queue: "up", Max: 3, TTR: time.Hour})
		if err != nil || len(jobs) != 3 {
			t.Fatalf("lease %d jobs, %v; want 3", len(jobs), err)
		}
		if _, err := e1.Nack(t.Context(), jobs[0].ID, jobs[0].LeaseID, time.Minute, "link down"); err != nil {
			t.Fatal(err)
		}
		if err := e1.Stop(t.Context()); err != nil { // jobs[1:] still leased: a crash for them
			t.Fatal(err)
		}

		e2 := start(t, st, cfg)
		if got := leaseIDs(t, e2, "up", 10); len(got) != 0 {
			t.Fatalf("after restart leased %v while the retry waits, want none", got)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := leaseIDs(t, e2, "up", 10); !slices.Equal(got, ids) {
			t.Errorf("after restart leased %v, want %v", got, ids)
		}
	})
}
