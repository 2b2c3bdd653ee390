package engine_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
)

// batcher is a BatchHandler that records the size of each call and answers
// each job by its payload: "retry" a retry, "dead" a dead verdict, else an
// ack.
type batcher struct {
	max   int
	hold  time.Duration // how long each batch stays in flight
	mu    sync.Mutex
	sizes []int
	one   int // Handle calls
}

func (b *batcher) BatchMax() int { return b.max }

func (b *batcher) Handle(ctx context.Context, j *job.Job) engine.Outcome {
	b.mu.Lock()
	b.one++
	b.mu.Unlock()
	return verdictOf(j)
}

func (b *batcher) HandleBatch(ctx context.Context, jobs []*job.Job) []engine.Outcome {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(jobs))
	b.mu.Unlock()
	time.Sleep(b.hold)
	outs := make([]engine.Outcome, len(jobs))
	for i, j := range jobs {
		outs[i] = verdictOf(j)
	}
	return outs
}

func verdictOf(j *job.Job) engine.Outcome {
	switch string(j.Payload) {
	case "retry":
		return engine.Outcome{Verdict: engine.Retry, Error: "later", RetryAfter: time.Hour}
	case "dead":
		return engine.Outcome{Verdict: engine.Dead, Error: "never"}
	}
	return engine.Outcome{Verdict: engine.Ack}
}

// syncCounter is a memstore that counts its syncs: one a durable commit.
type syncCounter struct {
	*memstore.Store
	syncs atomic.Int64
}

func (s *syncCounter) Sync() error {
	s.syncs.Add(1)
	return s.Store.Sync()
}

// TestBatchHandlerLeasesAndAnswersInBatches: a queue whose handler takes
// batches is leased up to BatchMax jobs in one op and each batch's
// outcomes (acks, retries, dead) are recorded in one op, so 30 jobs cost a
// few durable commits instead of two per job; one batch holds one worker.
func TestBatchHandlerLeasesAndAnswersInBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &syncCounter{Store: memstore.New()}
		h := &batcher{max: 10}
		e := startSched(t, engine.Config{Workers: 1, Queues: map[string]engine.QueueConfig{
			"up": {Handler: h, Concurrency: 25},
		}}, st)
		if err := e.Pause(t.Context(), "up"); err != nil {
			t.Fatal(err)
		}
		news := make([]job.New, 30)
		news[3].Payload, news[17].Payload = []byte("retry"), []byte("dead")
		if _, err := e.EnqueueBatch(t.Context(), "up", news); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		before := st.syncs.Load()
		if err := e.Resume(t.Context(), "up"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		h.mu.Lock()
		sizes, one := h.sizes, h.one
		h.mu.Unlock()
		if one != 0 || len(sizes) != 3 || sizes[0] != 10 || sizes[1] != 10 || sizes[2] != 10 {
			t.Errorf("batch calls %v and %d single calls, want 3 batches of 10 (BatchMax, one worker)", sizes, one)
		}
		if got := st.syncs.Load() - before; got > 8 {
			t.Errorf("%d syncs for 3 batches, want a lease and an answer each (at most 8 with the resume)", got)
		}
		s := stats(t, e, "up")
		if s.CompletedTotal != 28 || s.Delayed != 1 || s.Dead != 1 || s.Leased != 0 {
			t.Errorf("stats %+v: want 28 done, 1 delayed (retry), 1 dead", s)
		}
	})
}

// TestBatchHandlerConcurrencyCountsJobs: a queue's concurrency bounds the
// jobs of its batches in flight, and a half-open breaker probes with one.
func TestBatchHandlerConcurrencyCountsJobs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &batcher{max: 10, hold: 100 * time.Millisecond}
		e := startSched(t, engine.Config{Workers: 4, Queues: map[string]engine.QueueConfig{
			"up": {Handler: h, Concurrency: 15},
		}}, memstore.New())
		if _, err := e.EnqueueBatch(t.Context(), "up", make([]job.New, 30)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		h.mu.Lock()
		sizes := h.sizes
		h.mu.Unlock()
		total := 0
		for _, n := range sizes {
			total += n
			if n > 10 {
				t.Errorf("a batch of %d, want at most BatchMax 10", n)
			}
		}
		if total != 30 || len(sizes) < 3 || sizes[0]+sizes[1] != 15 {
			t.Errorf("batch calls %v, want 30 jobs with the first two (in flight together) bounded by concurrency 15", sizes)
		}
	})
}
