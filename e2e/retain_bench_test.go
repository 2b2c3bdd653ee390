package e2e

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
	"github.com/edgeq/edgeq/storage"
)

// BenchmarkRetainedExpiry (issue 20 item 4): durable ingest by 64
// producers for a window while a store holds N retained done jobs (N from
// EDGEQ_BENCH_RETAINED, default 100,000; the window from
// EDGEQ_BENCH_WINDOW, default 10s). expiring=true: every one of them is
// past its retention when the engine starts, so the maintenance loop
// deletes them during the window; expiring=false, the baseline: the same
// store, none due. Compare p99_us (and jobs/s) of the two from the same
// run. One iteration is one whole scenario:
//
//	EDGEQ_BENCH_RETAINED=1000000 go test -run '^$' -bench RetainedExpiry -benchtime 1x -count 3 -timeout 60m ./e2e/
func BenchmarkRetainedExpiry(b *testing.B) {
	n := benchEnv(b, "EDGEQ_BENCH_RETAINED", 100_000)
	window := time.Duration(benchEnv(b, "EDGEQ_BENCH_WINDOW", 10)) * time.Second
	for _, expiring := range []bool{false, true} {
		b.Run(fmt.Sprintf("retained=%d/expiring=%v", n, expiring), func(b *testing.B) {
			for b.Loop() {
				retainedScenario(b, n, window, expiring)
			}
		})
	}
}

func benchEnv(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		b.Fatalf("%s=%q: want a count", name, v)
	}
	return n
}

// retainedScenario times only the ingest window (b.Loop wants the timer
// running when it returns).
func retainedScenario(b *testing.B, n int, window time.Duration, expiring bool) {
	b.StopTimer()
	defer b.StartTimer()
	st, err := storage.Open(storage.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	until := now.Add(24 * time.Hour)
	if expiring {
		until = now.Add(-time.Second)
	}
	prefillDone(b, st, n, until)

	e, err := engine.New(engine.Config{Queues: map[string]engine.QueueConfig{"kept": {RetainDone: 24 * time.Hour}}}, st)
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer e.Stop(context.Background())
	payload := make([]byte, 256)
	const producers = 64
	lat := make([][]time.Duration, producers)
	b.StartTimer()
	t0 := time.Now()
	stop := t0.Add(window)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for time.Now().Before(stop) {
				s := time.Now()
				r, err := e.Enqueue(context.Background(), job.New{Queue: "bench", Payload: payload})
				if err != nil || !r.Durable {
					b.Errorf("enqueue: %v durable=%v", err, r.Durable)
					return
				}
				lat[p] = append(lat[p], time.Since(s))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	qs, err := e.QueueStats("kept")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "jobs/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50_us")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99_us")
	b.ReportMetric(float64(int64(n)-qs.Done), "expired")
	b.ReportMetric(float64(qs.Done), "left")
}

// prefillDone writes n retained done jobs of queue "kept", retained until
// until, straight into the store, as acks with retain_done would have.
func prefillDone(b *testing.B, st *storage.Badger, n int, until time.Time) {
	b.Helper()
	payload, result := make([]byte, 64), []byte(`{"ok":true,"rows":12345}`)
	now := time.Now()
	tx := st.Begin()
	commit := func() {
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		tx = st.Begin()
	}
	for i := 1; i <= n; i++ {
		j := &job.Job{ID: job.ID(i), Queue: "kept", State: job.StateDone, Attempt: 1, MaxAttempts: 5,
			CreatedAt: now, RunAt: now, ExpiresAt: until, TTR: time.Minute, Payload: payload, Result: result}
		if !tx.Fits(store.Op{Change: j}) {
			commit()
		}
		if err := tx.Create(j); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.SetSeq(uint64(cmp.Or(n, 1))); err != nil {
		b.Fatal(err)
	}
	commit()
	tx.Discard()
	if err := st.Sync(); err != nil {
		b.Fatal(err)
	}
}
