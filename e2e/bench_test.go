package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/storage"
)

// BenchmarkDurableEnqueue is the in-process durable enqueue path: producers
// goroutines enqueue 256-byte jobs through the ring into Badger (small
// profile, sync: always, on disk). Compare with storage's
// BenchmarkRawGroupCommit from the same run: the target is ≥ 0.7 of it.
func BenchmarkDurableEnqueue(b *testing.B) {
	for _, producers := range []int{1, 64} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) { durableEnqueue(b, producers, nil) })
	}
}

// BenchmarkDurableEnqueueEncrypted is BenchmarkDurableEnqueue on a store
// encrypted at rest (storage.encryption_key_file): compare the two from
// the same run for encryption's cost.
func BenchmarkDurableEnqueueEncrypted(b *testing.B) {
	key := make([]byte, storage.KeySize)
	for i := range key {
		key[i] = byte(i)
	}
	for _, producers := range []int{1, 64} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) { durableEnqueue(b, producers, key) })
	}
}

// durableEnqueue runs BenchmarkDurableEnqueue's body on a store encrypted
// with key (nil: not encrypted).
func durableEnqueue(b *testing.B, producers int, key []byte) {
	st, err := storage.Open(storage.Config{Dir: b.TempDir(), EncryptionKey: key})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	e, err := engine.New(engine.Config{}, st)
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer e.Stop(context.Background())
	payload := make([]byte, 256)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	var wg sync.WaitGroup
	per := b.N / producers
	for p := range producers {
		n := per
		if p == 0 {
			n += b.N % producers
		}
		wg.Go(func() {
			for range n {
				r, err := e.Enqueue(context.Background(), job.New{Queue: "bench", Payload: payload})
				if err != nil || !r.Durable {
					b.Errorf("enqueue: %v durable=%v", err, r.Durable)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "jobs/s")
	h := e.Histograms()
	b.ReportMetric(float64(h.CommitBatchSize.Count), "batches")
	b.ReportMetric(h.CommitBatchSize.Sum/float64(h.CommitBatchSize.Count), "ops/batch")
	b.ReportMetric(h.CommitSeconds.Sum/float64(h.CommitSeconds.Count)*1e6, "us/batch")
	b.ReportMetric(h.SyncOps.Sum/float64(h.SyncOps.Count), "ops/sync")
	b.ReportMetric(h.SyncSeconds.Sum/float64(h.SyncSeconds.Count)*1e6, "us/sync")
}

// BenchmarkScheduler is the in-process path end to end: producers enqueue
// durably, the scheduler leases (attempt made durable), a no-op handler
// runs, the ack is committed. One queue, and five queues of mixed classes;
// 64 workers fed by 64 producers, and 256 of each. Each worker slot waits
// for its lease's fsync before its next job (the attempt must be durable
// first), so with few slots the figure is bounded by slots / fsync round
// trip; with more it shows what the engine itself sustains. Reports
// completed jobs/s.
//
//	go test -run '^$' -bench Scheduler -benchtime 50000x ./e2e/
func BenchmarkScheduler(b *testing.B) {
	for _, c := range []struct{ queues, workers int }{{1, 64}, {5, 64}, {1, 256}, {5, 256}} {
		queues, workers := c.queues, c.workers
		b.Run(fmt.Sprintf("queues=%d/workers=%d", queues, workers), func(b *testing.B) {
			st, err := storage.Open(storage.Config{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			var done atomic.Int64
			all := make(chan struct{})
			target := int64(b.N)
			noop := engine.HandlerFunc(func(context.Context, *job.Job) engine.Outcome { return engine.Outcome{Verdict: engine.Ack} })
			cfg := engine.Config{Workers: workers, Queues: map[string]engine.QueueConfig{}, OnEvent: func(ev engine.Event) {
				if ev.Kind == engine.EventDone && done.Add(1) == target {
					close(all)
				}
			}}
			classes := []job.Class{job.ClassCritical, job.ClassHigh, job.ClassNormal, job.ClassLow, job.ClassBulk}
			names := make([]string, queues)
			for i := range queues {
				names[i] = fmt.Sprintf("q%d", i)
				cfg.Queues[names[i]] = engine.QueueConfig{Class: classes[i%len(classes)], Handler: noop}
			}
			e, err := engine.New(cfg, st)
			if err != nil {
				b.Fatal(err)
			}
			if err := e.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer e.Stop(context.Background())
			payload := make([]byte, 256)
			b.ReportAllocs()
			b.ResetTimer()
			t0 := time.Now()
			var wg sync.WaitGroup
			producers := workers
			for p := range producers {
				n := b.N / producers
				if p == 0 {
					n += b.N % producers
				}
				wg.Go(func() {
					for i := range n {
						if _, err := e.Enqueue(context.Background(), job.New{Queue: names[(p+i)%queues], Payload: payload}); err != nil {
							b.Errorf("enqueue: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			select {
			case <-all:
			case <-time.After(5 * time.Minute):
				b.Fatalf("only %d of %d jobs completed", done.Load(), b.N)
			}
			b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "jobs/s")
			h := e.Histograms()
			b.ReportMetric(float64(h.CommitBatchSize.Count), "batches")
			b.ReportMetric(h.CommitBatchSize.Sum/float64(h.CommitBatchSize.Count), "ops/batch")
			b.ReportMetric(h.CommitSeconds.Sum/float64(h.CommitSeconds.Count)*1e6, "us/batch")
		})
	}
}
