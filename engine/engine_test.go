package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
	"github.com/edgeq/edgeq/engine/store"
)

// start runs an engine over st for the test; it is stopped at cleanup.
func start(t *testing.T, st store.Store, cfg engine.Config) *engine.Engine {
	t.Helper()
	e, err := engine.New(cfg, st)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := e.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return e
}

// enqueueRefused enqueues into queue while the store's step (commit, sync)
// fails: the enqueue is refused as unavailable with a retry-after, and the
// engine reports itself not ready.
func enqueueRefused(t *testing.T, e *engine.Engine, queue, step string) {
	t.Helper()
	_, err := e.Enqueue(t.Context(), job.New{Queue: queue})
	if !errors.Is(err, job.ErrUnavailable) {
		t.Fatalf("enqueue during a failing %s = %v, want ErrUnavailable", step, err)
	}
	if _, ok := job.RetryAfter(err); !ok {
		t.Errorf("failing %s has no retry-after", step)
	}
	if e.Ready() == nil {
		t.Errorf("Ready() is nil right after a failed %s", step)
	}
}

func enqueue(t *testing.T, e *engine.Engine, n job.New) job.Result {
	t.Helper()
	r, err := e.Enqueue(t.Context(), n)
	if err != nil {
		t.Fatalf("Enqueue(%s): %v", n.Queue, err)
	}
	return r
}

func lease1(t *testing.T, e *engine.Engine, q string, ttr time.Duration) *job.Job {
	t.Helper()
	jobs, err := e.Lease(t.Context(), engine.LeaseRequest{Queue: q, Max: 1, TTR: ttr})
	if err != nil {
		t.Fatalf("Lease(%s): %v", q, err)
	}
	if len(jobs) != 1 {
		t.Fatalf("Lease(%s): got %d jobs, want 1", q, len(jobs))
	}
	return jobs[0]
}

func leaseNone(t *testing.T, e *engine.Engine, q string) {
	t.Helper()
	jobs, err := e.Lease(t.Context(), engine.LeaseRequest{Queue: q, Max: 10})
	if err != nil {
		t.Fatalf("Lease(%s): %v", q, err)
	}
	if len(jobs) != 0 {
		t.Fatalf("Lease(%s): got %d jobs (first %s attempt %d), want none", q, len(jobs), jobs[0].ID, jobs[0].Attempt)
	}
}

func stats(t *testing.T, e *engine.Engine, q string) engine.QueueStats {
	t.Helper()
	s, err := e.QueueStats(q)
	if err != nil {
		t.Fatalf("QueueStats(%s): %v", q, err)
	}
	return s
}

// TestFinishedLeaseWindow: Ack and Fail repeated with the same lease
// answer nil while the lease is among the last 4096 finished; an older one
// is forgotten (the job is gone: ErrNotFound).
func TestFinishedLeaseWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const window = 4096
		e := start(t, memstore.New(), engine.Config{})
		news := make([]job.New, 1000)
		for range (window + 1 + 999) / 1000 {
			if _, err := e.EnqueueBatch(t.Context(), "q", news); err != nil {
				t.Fatal(err)
			}
		}
		var done []*job.Job
		for len(done) < window+1 {
			jobs, err := e.Lease(t.Context(), engine.LeaseRequest{Queue: "q", Max: min(100, window+1-len(done))})
			if err != nil || len(jobs) == 0 {
				t.Fatalf("Lease = %d jobs, %v", len(jobs), err)
			}
			for _, j := range jobs {
				finish := func(ctx context.Context, id job.ID, lease string) error { return e.Ack(ctx, id, lease, nil) }
				if len(done)%2 == 1 {
					finish = func(ctx context.Context, id job.ID, lease string) error { return e.Fail(ctx, id, lease, "bad") }
				}
				if err := finish(t.Context(), j.ID, j.LeaseID); err != nil {
					t.Fatalf("finish %s: %v", j.ID, err)
				}
				done = append(done, j)
			}
		}
		first, second, last := done[0], done[1], done[window]
		if err := e.Ack(t.Context(), first.ID, first.LeaseID, nil); !errors.Is(err, job.ErrNotFound) {
			t.Errorf("Ack of the oldest of %d finished leases = %v, want ErrNotFound (forgotten)", window+1, err)
		}
		if err := e.Fail(t.Context(), second.ID, second.LeaseID, "bad"); err != nil {
			t.Errorf("Fail repeated with the second oldest lease = %v, want nil", err)
		}
		if err := e.Ack(t.Context(), second.ID, second.LeaseID, nil); !errors.Is(err, job.ErrLeaseLost) {
			t.Errorf("Ack by a lease that failed the job = %v, want ErrLeaseLost", err)
		}
		if err := e.Ack(t.Context(), last.ID, last.LeaseID, nil); err != nil {
			t.Errorf("Ack repeated with the newest lease = %v, want nil", err)
		}
		if s := stats(t, e, "q"); s.CompletedTotal != window/2+1 || s.DeadTotal != window/2 {
			t.Errorf("stats = completed %d dead %d, want %d and %d: a repeat counts nothing", s.CompletedTotal, s.DeadTotal, window/2+1, window/2)
		}
	})
}

func TestEnqueueLeaseAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.New()
		e := start(t, st, engine.Config{})
		r := enqueue(t, e, job.New{Queue: "q", Payload: []byte("hello"), ContentType: "text/plain", Headers: map[string]string{"a": "b"}})
		if !r.Durable || r.Duplicate || r.State != job.StateReady || r.ID == 0 {
			t.Fatalf("enqueue result = %+v, want durable ready", r)
		}
		j := lease1(t, e, "q", 0)
		if j.ID != r.ID || string(j.Payload) != "hello" || j.Attempt != 1 || j.LeaseID == "" || j.Headers["a"] != "b" || j.ContentType != "text/plain" {
			t.Fatalf("leased %+v", j)
		}
		if got := time.Until(j.LeaseExpires); got != 60*time.Second {
			t.Errorf("lease ttr = %s, want the 60s default", got)
		}
		if s := stats(t, e, "q"); s.Ready != 0 || s.Leased != 1 {
			t.Errorf("stats after lease = %+v", s)
		}
		if err := e.Ack(t.Context(), j.ID, "wrong", nil); !errors.Is(err, job.ErrLeaseLost) {
			t.Errorf("Ack with a wrong lease = %v, want ErrLeaseLost", err)
		}
		if err := e.Ack(t.Context(), j.ID, j.LeaseID, nil); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		if err := e.Ack(t.Context(), j.ID, j.LeaseID, nil); err != nil {
			t.Errorf("second Ack with the same lease = %v, want nil (a lost answer repeated)", err)
		}
		if err := e.Ack(t.Context(), j.ID, "wrong", nil); !errors.Is(err, job.ErrLeaseLost) {
			t.Errorf("Ack of the finished job with another lease = %v, want ErrLeaseLost", err)
		}
		if _, err := e.Job(t.Context(), j.ID); !errors.Is(err, job.ErrNotFound) {
			t.Errorf("Job after ack = %v, want ErrNotFound", err)
		}
		s := stats(t, e, "q")
		if s.Leased != 0 || s.EnqueuedTotal != 1 || s.CompletedTotal != 1 {
			t.Errorf("stats after ack = %+v", s)
		}
		if st.Syncs() < 3 {
			t.Errorf("store synced %d times, want one per durable step (>= 3)", st.Syncs())
		}
	})
}

func TestFIFOAcrossBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{})
		var ids []job.ID
		for i := range 20 {
			ids = append(ids, enqueue(t, e, job.New{Queue: "fifo", Payload: []byte{byte(i)}}).ID)
		}
		jobs, err := e.Lease(t.Context(), engine.LeaseRequest{Queue: "fifo", Max: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 20 {
			t.Fatalf("leased %d, want 20", len(jobs))
		}
		for i, j := range jobs {
			if j.ID != ids[i] {
				t.Fatalf("job %d: got %s, want %s (FIFO)", i, j.ID, ids[i])
			}
		}
	})
}

func TestDedupe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{DedupeWindow: time.Hour})
		first := enqueue(t, e, job.New{Queue: "q", Key: "k1", Payload: []byte("a")})
		dup := enqueue(t, e, job.New{Queue: "q", Key: "k1", Payload: []byte("b")})
		if !dup.Duplicate || dup.ID != first.ID {
			t.Fatalf("duplicate = %+v, want id %s duplicate", dup, first.ID)
		}
		other := enqueue(t, e, job.New{Queue: "other", Key: "k1"})
		if other.Duplicate {
			t.Errorf("the same key in another queue was a duplicate")
		}
		// Within one batch the second line is the duplicate.
		rs, err := e.EnqueueBatch(t.Context(), "b", []job.New{{Key: "x"}, {Key: "x"}, {Key: "y"}})
		if err != nil {
			t.Fatal(err)
		}
		if rs[0].Duplicate || !rs[1].Duplicate || rs[1].ID != rs[0].ID || rs[2].Duplicate {
			t.Errorf("batch results %+v", rs)
		}
		if s := stats(t, e, "q"); s.Ready != 1 || s.EnqueuedTotal != 1 {
			t.Errorf("duplicates stored something: %+v", s)
		}
	})
}

func TestDelayedPromotedOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{})
		r := enqueue(t, e, job.New{Queue: "d", Delay: 10 * time.Second})
		if r.State != job.StateDelayed {
			t.Fatalf("state %s, want delayed", r.State)
		}
		leaseNone(t, e, "d")
		time.Sleep(9 * time.Second)
		synctest.Wait()
		leaseNone(t, e, "d")
		time.Sleep(time.Second)
		synctest.Wait()
		if s := stats(t, e, "d"); s.Ready != 1 || s.Delayed != 0 {
			t.Fatalf("after 10s: %+v", s)
		}
		if j := lease1(t, e, "d", 0); j.ID != r.ID {
			t.Errorf("leased %s, want %s", j.ID, r.ID)
		}
	})
}

func TestLongPollWakesOnEnqueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{})
		got := make(chan []*job.Job, 1)
		go func() {
			jobs, err := e.Lease(context.Background(), engine.LeaseRequest{Queue: "lp", Max: 5, Wait: 30 * time.Second})
			if err != nil {
				t.Errorf("Lease: %v", err)
			}
			got <- jobs
		}()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		start := time.Now()
		enqueue(t, e, job.New{Queue: "lp"})
		jobs := <-got
		if len(jobs) != 1 {
			t.Fatalf("long poll got %d jobs, want 1", len(jobs))
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("long poll answered %s after the enqueue, want at once", waited)
		}
		// With nothing arriving it answers empty at the end of the wait.
		t0 := time.Now()
		jobs, err := e.Lease(t.Context(), engine.LeaseRequest{Queue: "lp", Max: 1, Wait: 3 * time.Second})
		if err != nil || len(jobs) != 0 || time.Since(t0) != 3*time.Second {
			t.Errorf("empty long poll: %d jobs, err %v, after %s", len(jobs), err, time.Since(t0))
		}
	})
}

func TestLeaseExpiryRequeuesThenDeadLetters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{})
		r := enqueue(t, e, job.New{Queue: "x", MaxAttempts: 2})
		j1 := lease1(t, e, "x", 5*time.Second)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if s := stats(t, e, "x"); s.Ready != 1 || s.Leased != 0 {
			t.Fatalf("after the lease expired: %+v", s)
		}
		if err := e.Ack(t.Context(), j1.ID, j1.LeaseID, nil); !errors.Is(err, job.ErrLeaseLost) {
			t.Errorf("ack of an expired lease = %v, want ErrLeaseLost", err)
		}
		j2 := lease1(t, e, "x", 5*time.Second)
		if j2.ID != r.ID || j2.Attempt != 2 || j2.LeaseID == j1.LeaseID {
			t.Fatalf("second lease %+v", j2)
		}
		time.Sleep(6 * time.Second)
		synctest.Wait()
		s := stats(t, e, "x")
		if s.Dead != 1 || s.Ready != 0 || s.DeadTotal != 1 {
			t.Fatalf("after the last attempt's lease expired: %+v", s)
		}
		got, err := e.Job(t.Context(), r.ID)
		if err != nil || got.State != job.StateDead || got.LastError == "" {
			t.Fatalf("dead job = %+v, %v", got, err)
		}
	})
}

func TestExtend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{})
		enqueue(t, e, job.New{Queue: "x"})
		j := lease1(t, e, "x", 5*time.Second)
		time.Sleep(4 * time.Second)
		at, err := e.Extend(t.Context(), j.ID, j.LeaseID, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if want := time.Now().Add(10 * time.Second); !at.Equal(want) {
			t.Errorf("extended to %s, want %s", at, want)
		}
		// Without a ttr: by the last one given, not the 60s default.
		time.Sleep(time.Second)
		if at, err := e.Extend(t.Context(), j.ID, j.LeaseID, 0); err != nil || !at.Equal(time.Now().Add(10*time.Second)) {
			t.Errorf("Extend without ttr = %s, %v; want 10s from now", time.Until(at), err)
		}
		time.Sleep(9 * time.Second)
		synctest.Wait()
		if err := e.Ack(t.Context(), j.ID, j.LeaseID, nil); err != nil {
			t.Errorf("ack within the extended lease: %v", err)
		}
	})
}

// TestExtendByTheLeaseTTR: extend without a ttr renews by the TTR the
// lease was taken with.
func TestExtendByTheLeaseTTR(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{})
		enqueue(t, e, job.New{Queue: "x", TTR: 30 * time.Second})
		j := lease1(t, e, "x", 5*time.Minute)
		time.Sleep(time.Minute)
		if at, err := e.Extend(t.Context(), j.ID, j.LeaseID, 0); err != nil || !at.Equal(time.Now().Add(5*time.Minute)) {
			t.Errorf("Extend without ttr = %s, %v; want 5m from now", time.Until(at), err)
		}
	})
}

func TestNackBackoffAndDeadLetter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{Backoff: engine.Backoff{Initial: time.Second, Max: 4 * time.Second}})
		r := enqueue(t, e, job.New{Queue: "n", MaxAttempts: 3})
		for attempt := 1; attempt <= 3; attempt++ {
			j := lease1(t, e, "n", 0)
			if j.Attempt != attempt {
				t.Fatalf("attempt %d, want %d", j.Attempt, attempt)
			}
			state, err := e.Nack(t.Context(), j.ID, j.LeaseID, engine.NackBackoff, fmt.Sprintf("boom %d", attempt))
			if err != nil {
				t.Fatal(err)
			}
			if attempt == 3 {
				if state != job.StateDead {
					t.Fatalf("after the last attempt state = %s, want dead", state)
				}
				break
			}
			if state != job.StateDelayed {
				t.Fatalf("state after nack = %s, want delayed", state)
			}
			leaseNone(t, e, "n")
			// Backoff is within [1s, 1s * 2^(attempt-1)] capped at 4s.
			time.Sleep(4 * time.Second)
			synctest.Wait()
		}
		got, _ := e.Job(t.Context(), r.ID)
		if got.State != job.StateDead || got.LastError != "boom 3" {
			t.Errorf("dead job = %+v", got)
		}
		if s := stats(t, e, "n"); s.RetriedTotal != 2 || s.DeadTotal != 1 || s.Dead != 1 {
			t.Errorf("stats = %+v", s)
		}
	})
}

func TestNackExplicitDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{})
		enqueue(t, e, job.New{Queue: "n"})
		j := lease1(t, e, "n", 0)
		if _, err := e.Nack(t.Context(), j.ID, j.LeaseID, 30*time.Second, "later"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(29 * time.Second)
		synctest.Wait()
		leaseNone(t, e, "n")
		time.Sleep(time.Second)
		synctest.Wait()
		j2 := lease1(t, e, "n", 0)
		if j2.Attempt != 2 || j2.LastError != "later" {
			t.Errorf("re-leased %+v", j2)
		}
		// Delay 0 is now, not the backoff.
		if st, err := e.Nack(t.Context(), j2.ID, j2.LeaseID, 0, "now"); err != nil || st != job.StateReady {
			t.Fatalf("Nack with delay 0 = %s, %v; want ready", st, err)
		}
		if j3 := lease1(t, e, "n", 0); j3.ID != j.ID || j3.Attempt != 3 {
			t.Errorf("leased after a nack with delay 0: %+v", j3)
		}
		if _, err := e.Nack(t.Context(), j.ID, "x", -2*time.Second, "bad"); !errors.Is(err, job.ErrInvalidArgument) {
			t.Errorf("Nack with a negative delay = %v, want ErrInvalidArgument", err)
		}
	})
}

func TestFailDeadListRetryPurge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{})
		var ids []job.ID
		for range 5 {
			ids = append(ids, enqueue(t, e, job.New{Queue: "f"}).ID)
		}
		for range 5 {
			j := lease1(t, e, "f", 0)
			if err := e.Fail(t.Context(), j.ID, j.LeaseID, "bad input"); err != nil {
				t.Fatal(err)
			}
		}
		page, next, err := e.DeadList(t.Context(), "f", 0, 2)
		if err != nil || len(page) != 2 || page[0].ID != ids[0] || next != ids[1] {
			t.Fatalf("first page: %d jobs, next %s, err %v", len(page), next, err)
		}
		page, next, _ = e.DeadList(t.Context(), "f", next, 10)
		if len(page) != 3 || next != 0 || page[0].ID != ids[2] || page[2].LastError != "bad input" {
			t.Fatalf("second page: %d jobs, next %s", len(page), next)
		}
		moved, err := e.DeadRetry(t.Context(), "f", 3)
		if err != nil || moved != 3 {
			t.Fatalf("DeadRetry = %d, %v; want 3", moved, err)
		}
		j := lease1(t, e, "f", 0)
		if j.ID != ids[0] || j.Attempt != 1 {
			t.Errorf("retried job %s attempt %d, want %s attempt 1 (attempts reset)", j.ID, j.Attempt, ids[0])
		}
		// One dead job by id: the newest, out of order; then not again.
		if err := e.RetryDead(t.Context(), ids[4]); err != nil {
			t.Fatalf("RetryDead: %v", err)
		}
		if err := e.RetryDead(t.Context(), ids[4]); !errors.Is(err, job.ErrConflict) {
			t.Errorf("RetryDead of a ready job = %v, want ErrConflict", err)
		}
		if err := e.RetryDead(t.Context(), 999); !errors.Is(err, job.ErrNotFound) {
			t.Errorf("RetryDead of no job = %v, want ErrNotFound", err)
		}
		if got, _ := e.Job(t.Context(), ids[4]); got.State != job.StateReady || got.Attempt != 0 {
			t.Errorf("retried job %+v, want ready with attempts reset", got)
		}
		n, err := e.DeadPurge(t.Context(), "f")
		if err != nil || n != 1 {
			t.Fatalf("DeadPurge = %d, %v; want 1", n, err)
		}
		if s := stats(t, e, "f"); s.Dead != 0 || s.Ready != 3 || s.Leased != 1 {
			t.Errorf("stats = %+v", s)
		}
	})
}

func TestDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{})
		r := enqueue(t, e, job.New{Queue: "exp", ExpiresIn: 5 * time.Second})
		d := enqueue(t, e, job.New{Queue: "exp", Delay: time.Minute, ExpiresIn: 10 * time.Second})
		time.Sleep(10 * time.Second)
		synctest.Wait()
		for _, id := range []job.ID{r.ID, d.ID} {
			got, err := e.Job(t.Context(), id)
			if err != nil || got.State != job.StateDead || got.LastError != "expired" {
				t.Errorf("job %s = %+v, %v; want dead, expired", id, got, err)
			}
		}
		if _, err := e.Enqueue(t.Context(), job.New{Queue: "exp", ExpiresAt: time.Now().Add(-time.Second)}); !errors.Is(err, job.ErrInvalidArgument) {
			t.Errorf("a deadline in the past = %v, want ErrInvalidArgument", err)
		}
	})
}

func TestCancelAndPurge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{})
		a := enqueue(t, e, job.New{Queue: "c"})
		enqueue(t, e, job.New{Queue: "c"})
		enqueue(t, e, job.New{Queue: "c", Delay: time.Hour})
		enqueue(t, e, job.New{Queue: "other"})
		if err := e.Cancel(t.Context(), a.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.Cancel(t.Context(), a.ID); !errors.Is(err, job.ErrNotFound) {
			t.Errorf("second cancel = %v, want ErrNotFound", err)
		}
		j := lease1(t, e, "c", 0)
		if err := e.Cancel(t.Context(), j.ID); !errors.Is(err, job.ErrConflict) {
			t.Errorf("cancel of a leased job = %v, want ErrConflict", err)
		}
		enqueue(t, e, job.New{Queue: "c"})
		n, err := e.Purge(t.Context(), "c")
		if err != nil || n != 2 {
			t.Fatalf("Purge = %d, %v; want 2 (one ready, one delayed)", n, err)
		}
		if s := stats(t, e, "c"); s.Ready != 0 || s.Delayed != 0 || s.Leased != 1 {
			t.Errorf("after purge %+v", s)
		}
		if s := stats(t, e, "other"); s.Ready != 1 {
			t.Errorf("purge touched another queue: %+v", s)
		}
	})
}

func TestPauseResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{Queues: map[string]engine.QueueConfig{"p": {}}})
		if err := e.Pause(t.Context(), "p"); err != nil {
			t.Fatal(err)
		}
		enqueue(t, e, job.New{Queue: "p"})
		leaseNone(t, e, "p")
		if !stats(t, e, "p").Paused {
			t.Error("stats do not say paused")
		}
		if err := e.Resume(t.Context(), "p"); err != nil {
			t.Fatal(err)
		}
		lease1(t, e, "p", 0)
	})
}

// TestPullLeaseShed: a level that pauses a queue's dispatch pauses pull
// leases too (SPEC 8); a long poll waiting on a shed queue wakes when the
// level drops.
func TestPullLeaseShed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{Queues: map[string]engine.QueueConfig{
			"sync":   {Class: job.ClassBulk},
			"low":    {Class: job.ClassLow},
			"normal": {Class: job.ClassNormal},
			"crit":   {Class: job.ClassCritical},
			"exempt": {Class: job.ClassBulk, ShedAt: "never"},
		}})
		for _, q := range []string{"sync", "low", "normal", "crit", "exempt"} {
			enqueue(t, e, job.New{Queue: q})
			enqueue(t, e, job.New{Queue: q})
		}
		e.SetLevel(job.LevelElevated)
		leaseNone(t, e, "sync")
		lease1(t, e, "low", 0)
		e.SetLevel(job.LevelHigh)
		leaseNone(t, e, "sync")
		leaseNone(t, e, "low")
		lease1(t, e, "normal", 0)
		lease1(t, e, "exempt", 0)
		e.SetLevel(job.LevelCritical)
		leaseNone(t, e, "normal")
		lease1(t, e, "crit", 0)
		lease1(t, e, "exempt", 0)

		got := make(chan []*job.Job, 1)
		go func() {
			jobs, err := e.Lease(context.Background(), engine.LeaseRequest{Queue: "sync", Max: 5, Wait: 30 * time.Second})
			if err != nil {
				t.Errorf("Lease: %v", err)
			}
			got <- jobs
		}()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		select {
		case jobs := <-got:
			t.Fatalf("long poll on a shed queue answered %d jobs while shed", len(jobs))
		default:
		}
		e.SetLevel(job.LevelHigh) // still shed: the poll keeps waiting
		synctest.Wait()
		select {
		case jobs := <-got:
			t.Fatalf("long poll answered %d jobs at high", len(jobs))
		default:
		}
		dropped := time.Now()
		e.SetLevel(job.LevelNormal)
		if jobs := <-got; len(jobs) != 2 {
			t.Fatalf("long poll got %d jobs after the level dropped, want 2", len(jobs))
		}
		if waited := time.Since(dropped); waited != 0 {
			t.Errorf("long poll answered %s after the level dropped, want at once", waited)
		}
		lease1(t, e, "low", 0)
	})
}

func TestRecoveryRequeuesLeasedAndPoisonGoesDead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.New()
		e1, _ := engine.New(engine.Config{}, st)
		if err := e1.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		r := enqueue(t, e1, job.New{Queue: "r", MaxAttempts: 2})
		lease1(t, e1, "r", time.Hour)
		e1.Stop(t.Context()) // a crash: the lease is never answered

		e2, _ := engine.New(engine.Config{}, st)
		if err := e2.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		if s := stats(t, e2, "r"); s.Ready != 1 || s.Leased != 0 {
			t.Fatalf("after restart: %+v", s)
		}
		j := lease1(t, e2, "r", time.Hour)
		if j.ID != r.ID || j.Attempt != 2 {
			t.Fatalf("after restart leased %s attempt %d, want %s attempt 2 (attempts kept)", j.ID, j.Attempt, r.ID)
		}
		e2.Stop(t.Context()) // crashes again in its last attempt

		e3 := start(t, st, engine.Config{})
		s := stats(t, e3, "r")
		if s.Dead != 1 || s.Ready != 0 {
			t.Fatalf("a job that crashed the process max_attempts times: %+v, want dead", s)
		}
		got, _ := e3.Job(t.Context(), r.ID)
		if got.State != job.StateDead || got.LastError == "" {
			t.Errorf("poison job = %+v", got)
		}
		// New ids continue after the old ones.
		if n := enqueue(t, e3, job.New{Queue: "r"}); n.ID <= r.ID {
			t.Errorf("new id %s not after %s", n.ID, r.ID)
		}
	})
}

func TestShutdownRefusesAndAnswersInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{})
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for range 50 {
			wg.Go(func() {
				_, err := e.Enqueue(context.Background(), job.New{Queue: "s"})
				errs <- err
			})
		}
		poll := make(chan error, 1)
		go func() {
			_, err := e.Lease(context.Background(), engine.LeaseRequest{Queue: "idle", Max: 1, Wait: time.Minute})
			poll <- err
		}()
		synctest.Wait()
		if err := e.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil && !errors.Is(err, job.ErrShuttingDown) {
				t.Errorf("in-flight enqueue: %v", err)
			}
		}
		if err := <-poll; err != nil {
			t.Errorf("long poll at shutdown: %v", err)
		}
		if _, err := e.Enqueue(t.Context(), job.New{Queue: "s"}); !errors.Is(err, job.ErrShuttingDown) {
			t.Errorf("enqueue after Stop = %v, want ErrShuttingDown", err)
		}
		if e.Ready() == nil {
			t.Error("Ready() is nil after Stop")
		}
	})
}

func TestCommitFailureRefusesAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.New()
		e := start(t, st, engine.Config{})
		enqueue(t, e, job.New{Queue: "f"})
		synctest.Wait() // the committer is idle: the next commit is the enqueue's
		st.FailNextCommit(errors.New("disk on fire"))
		enqueueRefused(t, e, "f", "commit")
		if s := stats(t, e, "f"); s.Ready != 1 {
			t.Errorf("after a failed commit ready = %d, want 1 (state reloaded)", s.Ready)
		}
		enqueue(t, e, job.New{Queue: "f"})
		if e.Ready() != nil {
			t.Errorf("Ready() = %v after a good commit", e.Ready())
		}
		if s := stats(t, e, "f"); s.Ready != 2 {
			t.Errorf("ready = %d, want 2", s.Ready)
		}
	})
}

func TestAdmission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{
			MaxPayload: 10,
			Queues: map[string]engine.QueueConfig{
				"small": {MaxDepth: 2},
				"slow":  {Rate: 2, Burst: 2},
			},
		})
		tests := []struct {
			name string
			n    job.New
			want error
		}{
			{"bad queue name", job.New{Queue: "Bad Name"}, job.ErrInvalidQueue},
			{"payload over max", job.New{Queue: "q", Payload: make([]byte, 11)}, job.ErrTooLarge},
			{"negative delay", job.New{Queue: "q", Delay: -time.Second}, job.ErrInvalidArgument},
			{"too many attempts", job.New{Queue: "q", MaxAttempts: 5000}, job.ErrInvalidArgument},
		}
		for _, tt := range tests {
			if _, err := e.Enqueue(t.Context(), tt.n); !errors.Is(err, tt.want) {
				t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
			}
		}
		enqueue(t, e, job.New{Queue: "small"})
		enqueue(t, e, job.New{Queue: "small"})
		_, err := e.Enqueue(t.Context(), job.New{Queue: "small"})
		if !errors.Is(err, job.ErrQueueFull) {
			t.Errorf("third job in a max_depth 2 queue = %v, want ErrQueueFull", err)
		}
		enqueue(t, e, job.New{Queue: "slow"})
		enqueue(t, e, job.New{Queue: "slow"})
		_, err = e.Enqueue(t.Context(), job.New{Queue: "slow"})
		wait, ok := job.RetryAfter(err)
		if !errors.Is(err, job.ErrRateLimited) || !ok || wait != 500*time.Millisecond {
			t.Errorf("over the rate = %v (retry after %s), want ErrRateLimited after 500ms", err, wait)
		}
		time.Sleep(500 * time.Millisecond)
		enqueue(t, e, job.New{Queue: "slow"})
		if s := stats(t, e, "small"); s.RejectedTotal != 1 || s.Ready != 2 {
			t.Errorf("refused job changed the queue: %+v", s)
		}
	})
}

func TestStrictQueues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{StrictQueues: true, Queues: map[string]engine.QueueConfig{"known": {}}})
		enqueue(t, e, job.New{Queue: "known"})
		if _, err := e.Enqueue(t.Context(), job.New{Queue: "unknown"}); !errors.Is(err, job.ErrUnknownQueue) {
			t.Errorf("enqueue to an unconfigured queue = %v, want ErrUnknownQueue", err)
		}
	})
}

// TestStrictQueuesRemovedQueue: a queue that left the configuration but
// still has jobs in the store refuses new jobs, after a restart and after a
// reload, and its backlog still drains.
func TestStrictQueuesRemovedQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.New()
		both := map[string]engine.QueueConfig{"kept": {}, "removed": {}}
		first, err := engine.New(engine.Config{StrictQueues: true, Queues: both}, st)
		if err != nil {
			t.Fatal(err)
		}
		if err := first.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			enqueue(t, first, job.New{Queue: "removed"})
		}
		if err := first.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}

		e := start(t, st, engine.Config{StrictQueues: true, Queues: map[string]engine.QueueConfig{"kept": {}}})
		if _, err := e.Enqueue(t.Context(), job.New{Queue: "removed"}); !errors.Is(err, job.ErrUnknownQueue) {
			t.Errorf("enqueue to a queue removed from the configuration, after a restart = %v, want ErrUnknownQueue", err)
		}
		enqueue(t, e, job.New{Queue: "kept"})
		if _, _, err := e.Move(t.Context(), engine.MoveRequest{From: "kept", To: "removed", State: job.StateReady, Limit: 1}); !errors.Is(err, job.ErrUnknownQueue) {
			t.Errorf("move into a removed queue = %v, want ErrUnknownQueue", err)
		}
		jobs, err := e.Lease(t.Context(), engine.LeaseRequest{Queue: "removed", Max: 10})
		if err != nil || len(jobs) != 2 {
			t.Fatalf("lease from the removed queue's backlog = %d jobs, %v; want its 2 jobs", len(jobs), err)
		}
		for _, j := range jobs {
			if err := e.Ack(t.Context(), j.ID, j.LeaseID, nil); err != nil {
				t.Errorf("ack of the removed queue's job: %v", err)
			}
		}

		if err := e.Reconfigure(map[string]engine.QueueConfig{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Enqueue(t.Context(), job.New{Queue: "kept"}); !errors.Is(err, job.ErrUnknownQueue) {
			t.Errorf("enqueue to a queue a reload removed = %v, want ErrUnknownQueue", err)
		}
		if jobs, err := e.Lease(t.Context(), engine.LeaseRequest{Queue: "kept", Max: 10}); err != nil || len(jobs) != 1 {
			t.Errorf("lease from the queue a reload removed = %d jobs, %v; want its job", len(jobs), err)
		}
	})
}

func TestTransactionsSplitWhenFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.New()
		st.MaxEntries = 40 // a few jobs per transaction
		e := start(t, st, engine.Config{})
		var wg sync.WaitGroup
		for i := range 200 {
			wg.Go(func() {
				if _, err := e.Enqueue(context.Background(), job.New{Queue: "split", Key: fmt.Sprint(i)}); err != nil {
					t.Errorf("enqueue: %v", err)
				}
			})
		}
		wg.Wait()
		if s := stats(t, e, "split"); s.Ready != 200 {
			t.Fatalf("ready = %d, want 200", s.Ready)
		}
		big := make([]job.New, 20)
		if _, err := e.EnqueueBatch(t.Context(), "split", big); !errors.Is(err, job.ErrTooLarge) {
			t.Errorf("a batch larger than a transaction = %v, want ErrTooLarge", err)
		}
		if s := stats(t, e, "split"); s.Ready != 200 {
			t.Errorf("the refused batch stored something: ready = %d", s.Ready)
		}
	})
}

func TestSyncIntervalQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.New()
		e := start(t, st, engine.Config{SyncInterval: time.Second, Queues: map[string]engine.QueueConfig{"tele": {Sync: engine.SyncInterval}}})
		before := st.Syncs()
		r := enqueue(t, e, job.New{Queue: "tele"})
		if r.Durable {
			t.Error("an interval-sync queue answered durable")
		}
		if st.Syncs() != before {
			t.Errorf("an interval-sync enqueue synced (%d → %d)", before, st.Syncs())
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if st.Syncs() != before+1 {
			t.Errorf("syncs after the interval = %d, want %d", st.Syncs(), before+1)
		}
		if r := enqueue(t, e, job.New{Queue: "alw"}); !r.Durable {
			t.Error("a default queue answered not durable")
		}
	})
}

func TestMovePacedAndResumable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{})
		var ids []job.ID
		for range 30 {
			ids = append(ids, enqueue(t, e, job.New{Queue: "slow", Payload: []byte("p")}).ID)
		}
		moved, remaining, err := e.Move(t.Context(), engine.MoveRequest{From: "slow", To: "fast", State: job.StateReady, Limit: 10, DryRun: true})
		if err != nil || moved != 10 || remaining != 30 {
			t.Fatalf("dry run = %d, %d, %v; want 10, 30", moved, remaining, err)
		}
		t0 := time.Now()
		moved, remaining, err = e.Move(t.Context(), engine.MoveRequest{From: "slow", To: "fast", State: job.StateReady, Limit: 20, Rate: 10})
		if err != nil || moved != 20 || remaining != 10 {
			t.Fatalf("move = %d, %d, %v; want 20, 10", moved, remaining, err)
		}
		if took := time.Since(t0); took < time.Second || took > 2*time.Second {
			t.Errorf("20 jobs at 10/s took %s, want about 2s", took)
		}
		// Resume: the rest.
		moved, remaining, _ = e.Move(t.Context(), engine.MoveRequest{From: "slow", To: "fast", State: job.StateReady, Limit: 100})
		if moved != 10 || remaining != 0 {
			t.Fatalf("resumed move = %d, %d; want 10, 0", moved, remaining)
		}
		jobs, _ := e.Lease(t.Context(), engine.LeaseRequest{Queue: "fast", Max: 100})
		if len(jobs) != 30 || jobs[0].ID != ids[0] || jobs[29].ID != ids[29] || string(jobs[0].Payload) != "p" {
			t.Fatalf("target got %d jobs, want all 30 in FIFO order with payloads", len(jobs))
		}
		// Dead jobs move with attempts reset.
		for _, j := range jobs[:5] {
			e.Fail(t.Context(), j.ID, j.LeaseID, "bad")
		}
		moved, _, err = e.Move(t.Context(), engine.MoveRequest{From: "fast", To: "repair", State: job.StateDead, Limit: 3})
		if err != nil || moved != 3 {
			t.Fatalf("dead move = %d, %v", moved, err)
		}
		if j := lease1(t, e, "repair", 0); j.Attempt != 1 || j.ID != ids[0] {
			t.Errorf("moved dead job %+v: want %s with attempts reset", j, ids[0])
		}
		if s := stats(t, e, "fast"); s.Dead != 2 {
			t.Errorf("fast dead = %d, want 2", s.Dead)
		}
		if _, _, err := e.Move(t.Context(), engine.MoveRequest{From: "fast", To: "fast", State: job.StateReady, Limit: 1}); !errors.Is(err, job.ErrInvalidArgument) {
			t.Errorf("move to itself = %v", err)
		}
	})
}

func TestBacklogAlertRaisedAndCleared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []engine.Alert
		e := start(t, memstore.New(), engine.Config{
			Queues: map[string]engine.QueueConfig{"slow": {AlertAge: 5 * time.Minute, AlertDepth: 100}},
			OnAlert: func(a engine.Alert) {
				mu.Lock()
				got = append(got, a)
				mu.Unlock()
			},
		})
		enqueue(t, e, job.New{Queue: "slow"})
		time.Sleep(4 * time.Minute)
		synctest.Wait()
		if len(e.Alerting()) != 0 {
			t.Fatal("alert raised before alert_age")
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if a := e.Alerting(); len(a) != 1 || a[0] != "slow" {
			t.Fatalf("alerting = %v after 6m, want [slow]", a)
		}
		j := lease1(t, e, "slow", 0)
		e.Ack(t.Context(), j.ID, j.LeaseID, nil)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		e.EnqueueBatch(t.Context(), "slow", make([]job.New, 101))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 3 || !got[0].Raised || got[0].Kind != "age" || got[1].Raised || !got[2].Raised || got[2].Kind != "depth" {
			t.Errorf("alerts = %+v, want raised(age), cleared, raised(depth)", got)
		}
		if s := stats(t, e, "slow"); s.AlertsTotal != 2 || !s.Alerting {
			t.Errorf("stats = %+v", s)
		}
	})
}

func TestEventsAfterCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []string
		e := start(t, memstore.New(), engine.Config{OnEvent: func(ev engine.Event) {
			mu.Lock()
			got = append(got, ev.Kind.String())
			mu.Unlock()
		}})
		enqueue(t, e, job.New{Queue: "ev", MaxAttempts: 2})
		j := lease1(t, e, "ev", 0)
		e.Nack(t.Context(), j.ID, j.LeaseID, time.Second, "x")
		time.Sleep(time.Second)
		synctest.Wait()
		j = lease1(t, e, "ev", 0)
		e.Nack(t.Context(), j.ID, j.LeaseID, engine.NackBackoff, "y")
		enqueue(t, e, job.New{Queue: "ev"})
		j = lease1(t, e, "ev", 0)
		e.Ack(t.Context(), j.ID, j.LeaseID, nil)
		mu.Lock()
		defer mu.Unlock()
		if want := []string{"retry", "dead", "done"}; !slices.Equal(got, want) {
			t.Errorf("events = %v, want %v", got, want)
		}
	})
}

func TestRejectedByReason(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{MaxPayload: 4, Queues: map[string]engine.QueueConfig{"r": {MaxDepth: 1}}})
		enqueue(t, e, job.New{Queue: "r"})
		e.Enqueue(t.Context(), job.New{Queue: "r"})                           // queue_full
		e.Enqueue(t.Context(), job.New{Queue: "r", Payload: []byte("12345")}) // too_large
		e.Enqueue(t.Context(), job.New{Queue: "r", Delay: -1})                // invalid
		s := stats(t, e, "r")
		if s.RejectedTotal != 3 || s.Rejected["queue_full"] != 1 || s.Rejected["too_large"] != 1 || s.Rejected["invalid"] != 1 {
			t.Errorf("rejected = %d %v", s.RejectedTotal, s.Rejected)
		}
	})
}

// A transport that offers jobs again after a refusal counts each job once:
// EnqueueBatchUncounted counts nothing, Refused counts on the queue, or
// engine-wide for a queue that does not exist, which it does not create.
func TestRefusedCountsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{MaxPayload: 4, Queues: map[string]engine.QueueConfig{"r": {}}})
		big := job.New{Payload: []byte("12345")}
		if _, err := e.EnqueueBatchUncounted(t.Context(), "r", []job.New{big, big}); !errors.Is(err, job.ErrTooLarge) {
			t.Fatalf("EnqueueBatchUncounted = %v, want ErrTooLarge", err)
		}
		if s := stats(t, e, "r"); s.RejectedTotal != 0 {
			t.Errorf("after an uncounted refusal: rejected %d %v, want 0", s.RejectedTotal, s.Rejected)
		}
		e.Refused("r", 2, fmt.Errorf("wrapped: %w", job.ErrTooLarge))
		e.Refused("r", 1, context.Canceled) // not a refusal of the job
		e.Refused("nosuchq", 1, job.ErrShed)
		e.Refused("Bad Name", 1, job.ErrInvalidQueue)
		if s := stats(t, e, "r"); s.RejectedTotal != 2 || s.Rejected["too_large"] != 2 {
			t.Errorf("rejected = %d %v, want 2 too_large", s.RejectedTotal, s.Rejected)
		}
		all := e.Stats()
		if all.Rejected["shed"] != 1 || all.Rejected["invalid"] != 1 {
			t.Errorf("engine-wide rejected = %v, want 1 shed and 1 invalid", all.Rejected)
		}
		for _, q := range all.Queues {
			if q.Name != "r" {
				t.Errorf("Refused created queue %q", q.Name)
			}
		}
	})
}

// fullStore is a memstore that can run out of space: Reserve refuses while
// full is set.
type fullStore struct {
	*memstore.Store
	full     atomic.Bool
	reserved atomic.Int64
}

func (s *fullStore) Reserve(jobs []job.New) error {
	if s.full.Load() {
		return fmt.Errorf("%w: no room", job.ErrDiskFull)
	}
	for _, n := range jobs {
		s.reserved.Add(int64(len(n.Payload)))
	}
	return nil
}

// TestDiskFullRefusesEveryClass: a store out of space refuses enqueues of
// every class, critical included, with job.ErrDiskFull and a retry-after,
// writes nothing, and still leases and acks the backlog.
func TestDiskFullRefusesEveryClass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fullStore{Store: memstore.New()}
		e := start(t, st, engine.Config{Queues: map[string]engine.QueueConfig{
			"alarm": {Class: job.ClassCritical},
		}})
		enqueue(t, e, job.New{Queue: "alarm", Payload: []byte("first")})
		if got := st.reserved.Load(); got < int64(len("first")) {
			t.Fatalf("reserved %d bytes for a 5-byte job", got)
		}
		st.full.Store(true)
		for _, q := range []string{"alarm", "bulk"} {
			_, err := e.Enqueue(t.Context(), job.New{Queue: q})
			if _, ok := job.RetryAfter(err); !errors.Is(err, job.ErrDiskFull) || !ok {
				t.Errorf("enqueue into %s on a full disk = %v, want ErrDiskFull with a retry-after", q, err)
			}
		}
		if s := stats(t, e, "alarm"); s.Ready != 1 || s.RejectedTotal != 1 {
			t.Errorf("alarm after the refusal: ready %d, rejected %d; want 1 and 1", s.Ready, s.RejectedTotal)
		}
		j := lease1(t, e, "alarm", time.Minute)
		if err := e.Ack(t.Context(), j.ID, j.LeaseID, nil); err != nil {
			t.Fatalf("ack on a full disk: %v", err)
		}
	})
}
