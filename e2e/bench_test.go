package e2e

import (
	"context"
	"fmt"
	"sync"
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
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			st, err := storage.Open(storage.Config{Dir: b.TempDir()})
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
		})
	}
}
