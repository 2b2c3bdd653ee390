package engine_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
	"github.com/edgeq/edgeq/engine/store"
)

// TestRetainDone: a queue with retain_done keeps an acked job in state done
// with its result cut at max_result (and flagged), the done event carries
// the result, stats count it, a restart keeps it, and the maintenance loop
// deletes every one of them once their retention ends, more than one
// batch's worth included. A queue without retain_done deletes at once.
func TestRetainDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var events []engine.Event
		st := memstore.New()
		cfg := engine.Config{
			Queues: map[string]engine.QueueConfig{"r": {RetainDone: time.Hour, MaxResult: 8}},
			OnEvent: func(ev engine.Event) {
				mu.Lock()
				events = append(events, ev)
				mu.Unlock()
			},
		}
		e, err := engine.New(cfg, st)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(t.Context()); err != nil {
			t.Fatal(err)
		}

		enqueue(t, e, job.New{Queue: "r", Payload: []byte("in")})
		j := lease1(t, e, "r", 0)
		if err := e.Ack(t.Context(), j.ID, j.LeaseID, []byte("0123456789")); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		if err := e.Ack(t.Context(), j.ID, j.LeaseID, []byte("0123456789")); err != nil {
			t.Fatalf("Ack repeated with the same lease: %v", err)
		}
		got, err := e.Job(t.Context(), j.ID)
		if err != nil {
			t.Fatalf("Job after ack with retain_done: %v", err)
		}
		if got.State != job.StateDone || string(got.Result) != "01234567" || !got.ResultTruncated || string(got.Payload) != "in" {
			t.Fatalf("retained job: state %s, result %q (truncated %v), payload %q; want done, \"01234567\" truncated, \"in\"",
				got.State, got.Result, got.ResultTruncated, got.Payload)
		}
		if want := time.Now().Add(time.Hour); !got.ExpiresAt.Equal(want) {
			t.Errorf("retained until %v, want %v", got.ExpiresAt, want)
		}
		synctest.Wait()
		mu.Lock()
		if len(events) != 1 || events[0].Kind != engine.EventDone || string(events[0].Result) != "01234567" || !events[0].ResultTruncated {
			t.Errorf("events = %+v, want one done event with result \"01234567\", truncated", events)
		}
		mu.Unlock()

		// More than one maintenance batch's worth expiring at once.
		const many = 300
		for range many {
			enqueue(t, e, job.New{Queue: "r"})
		}
		for left := many; left > 0; {
			jobs, err := e.Lease(t.Context(), engine.LeaseRequest{Queue: "r", Max: engine.MaxLease})
			if err != nil || len(jobs) == 0 {
				t.Fatalf("Lease: %d jobs, %v", len(jobs), err)
			}
			for _, l := range jobs {
				if err := e.Ack(t.Context(), l.ID, l.LeaseID, []byte(`{"ok":true}`)); err != nil {
					t.Fatal(err)
				}
			}
			left -= len(jobs)
		}
		qs, _ := e.QueueStats("r")
		if qs.Done != many+1 || qs.CompletedTotal != many+1 {
			t.Fatalf("stats: done %d, completed %d, want %d each", qs.Done, qs.CompletedTotal, many+1)
		}

		// A restart keeps them and their count.
		if err := e.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		e = start(t, st, cfg)
		if qs, _ := e.QueueStats("r"); qs.Done != many+1 {
			t.Fatalf("done after a restart = %d, want %d", qs.Done, many+1)
		}
		if got, err := e.Job(t.Context(), j.ID); err != nil || got.State != job.StateDone {
			t.Fatalf("retained job after a restart: %v, %v", got, err)
		}

		time.Sleep(time.Hour + time.Minute)
		synctest.Wait()
		if _, err := e.Job(t.Context(), j.ID); !errors.Is(err, job.ErrNotFound) {
			t.Errorf("Job after its retention = %v, want ErrNotFound", err)
		}
		if qs, _ := e.QueueStats("r"); qs.Done != 0 {
			t.Errorf("done after the retention = %d, want 0", qs.Done)
		}
		if err := st.View(func(r store.ReadTx) error {
			c, err := r.Counts(func(string) bool { return false })
			if c["r"].Done != 0 {
				t.Errorf("store counts %d done jobs after the retention, want 0", c["r"].Done)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}

		// Without retain_done an ack deletes the job.
		enqueue(t, e, job.New{Queue: "plain"})
		p := lease1(t, e, "plain", 0)
		if err := e.Ack(t.Context(), p.ID, p.LeaseID, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Job(t.Context(), p.ID); !errors.Is(err, job.ErrNotFound) {
			t.Errorf("Job acked on a queue without retain_done = %v, want ErrNotFound", err)
		}
	})
}
