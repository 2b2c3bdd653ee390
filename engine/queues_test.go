package engine_test

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
)

func queueNames(e *engine.Engine) []string {
	var out []string
	for _, q := range e.Stats().Queues {
		out = append(out, q.Name)
	}
	return out
}

// TestOnlyAcceptedJobsCreateQueues: admin calls on a queue that does not
// exist answer ErrUnknownQueue; refused jobs and leases create nothing.
func TestOnlyAcceptedJobsCreateQueues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{})
		ctx := t.Context()
		for name, err := range map[string]error{
			"pause":  e.Pause(ctx, "nq"),
			"resume": e.Resume(ctx, "nq"),
			"purge":  func() error { _, err := e.Purge(ctx, "nq"); return err }(),
			"stats":  func() error { _, err := e.QueueStats("nq"); return err }(),
		} {
			if !errors.Is(err, job.ErrUnknownQueue) {
				t.Errorf("%s on a queue that does not exist: %v, want ErrUnknownQueue", name, err)
			}
		}
		leaseNone(t, e, "nq")
		if _, err := e.Enqueue(ctx, job.New{Queue: "bad", MaxAttempts: -1}); !errors.Is(err, job.ErrInvalidArgument) {
			t.Fatalf("invalid job: %v", err)
		}
		e.SetLevel(job.LevelCritical)
		if _, err := e.Enqueue(ctx, job.New{Queue: "shed"}); !errors.Is(err, job.ErrShed) {
			t.Fatalf("enqueue at critical: %v, want ErrShed", err)
		}
		if _, _, err := e.Move(ctx, engine.MoveRequest{From: "nq", To: "x", State: job.StateReady, Limit: 1}); !errors.Is(err, job.ErrUnknownQueue) {
			t.Errorf("move from a queue that does not exist: %v", err)
		}
		if got := queueNames(e); len(got) != 0 {
			t.Fatalf("queues %v exist, want none", got)
		}
		e.SetLevel(job.LevelNormal)
		enqueue(t, e, job.New{Queue: "made"})
		if got := queueNames(e); len(got) != 1 || got[0] != "made" {
			t.Fatalf("queues %v, want [made]", got)
		}
	})
}

// TestLeaseWaitsForQueue: a long poll on a queue that does not exist yet
// gets the job that creates it.
func TestLeaseWaitsForQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{})
		var got []*job.Job
		var wg sync.WaitGroup
		wg.Go(func() {
			got, _ = e.Lease(t.Context(), engine.LeaseRequest{Queue: "later", Max: 1, Wait: time.Minute})
		})
		synctest.Wait()
		r := enqueue(t, e, job.New{Queue: "later"})
		wg.Wait()
		if len(got) != 1 || got[0].ID != r.ID {
			t.Fatalf("long poll got %v, want job %s", got, r.ID)
		}
	})
}

// TestMaxQueues: past max_queues a job for a new queue is refused with
// ErrQueueFull and a retry-after; existing queues keep taking jobs.
func TestMaxQueues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{MaxQueues: 3, Queues: map[string]engine.QueueConfig{"conf": {}}})
		enqueue(t, e, job.New{Queue: "a"})
		enqueue(t, e, job.New{Queue: "b"})
		_, err := e.Enqueue(t.Context(), job.New{Queue: "c"})
		if !errors.Is(err, job.ErrQueueFull) {
			t.Fatalf("fourth queue: %v, want ErrQueueFull", err)
		}
		if _, ok := job.RetryAfter(err); !ok {
			t.Error("the refusal has no retry-after")
		}
		if _, _, err := e.Move(t.Context(), engine.MoveRequest{From: "a", To: "c", State: job.StateReady, Limit: 1}); !errors.Is(err, job.ErrQueueFull) {
			t.Errorf("move to a fourth queue: %v, want ErrQueueFull", err)
		}
		enqueue(t, e, job.New{Queue: "a"})
		enqueue(t, e, job.New{Queue: "conf"})
		if got := len(queueNames(e)); got != 3 {
			t.Errorf("%d queues, want 3", got)
		}
		if s := e.Stats(); s.Rejected["queue_full"] != 1 {
			t.Errorf("refusals for queues that do not exist: %v, want queue_full 1", s.Rejected)
		}
	})
}

// TestMaxQueuesConcurrent: racing jobs for new queues never register more
// than max_queues.
func TestMaxQueuesConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{MaxQueues: 5})
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				_, _ = e.Enqueue(t.Context(), job.New{Queue: string(rune('a'+i%26)) + "q"})
			})
		}
		wg.Wait()
		if got := len(queueNames(e)); got > 5 {
			t.Fatalf("%d queues registered, max_queues is 5", got)
		}
	})
}

func TestMaxQueuesBelowConfigured(t *testing.T) {
	_, err := engine.New(engine.Config{MaxQueues: 1, Queues: map[string]engine.QueueConfig{"a": {}, "b": {}}}, memstore.New())
	if err == nil {
		t.Fatal("max_queues below the configured queues was accepted")
	}
}
