package e2e

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/storage"
)

// BenchmarkLeaseBlockedGroups is the lease of a ready group's head while
// other groups of the queue are blocked (their head leased, a job waiting
// behind it): one blocked group, then 10,000. The store holds as many jobs
// and leases either way: the groups not blocked in the queue are blocked in
// another queue, so only the number of blocked groups beside the ready one
// differs. Each op leases the ready group's head and acks it (which makes
// the group runnable again), on Badger with sync: interval so that fsyncs
// do not drown the engine's own cost; lease-ns is the lease alone, cpu-ns
// the process's CPU time an op (user and system: on a shared machine it
// moves far less than wall time). Leasing is O(1) in the blocked groups,
// so the two figures should match (ratio ≤ 1.2):
//
//	go test -run '^$' -bench LeaseBlockedGroups -benchtime 20000x -count 5 ./e2e/
func BenchmarkLeaseBlockedGroups(b *testing.B) {
	const groups = 10_000
	for _, blocked := range []int{1, groups} {
		b.Run(fmt.Sprintf("blocked=%d", blocked), func(b *testing.B) {
			ctx := context.Background()
			st, err := storage.Open(storage.Config{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			e, err := engine.New(engine.Config{Sync: engine.SyncInterval}, st)
			if err != nil {
				b.Fatal(err)
			}
			if err := e.Start(ctx); err != nil {
				b.Fatal(err)
			}
			defer e.Stop(ctx)
			enqueue := func(queue string, news []job.New) {
				for len(news) > 0 {
					n := min(len(news), 1000)
					if _, err := e.EnqueueBatch(ctx, queue, news[:n]); err != nil {
						b.Fatal(err)
					}
					news = news[n:]
				}
			}
			payload := make([]byte, 64)
			block := func(queue string, n int) {
				var news []job.New
				for g := range n {
					for range 2 {
						news = append(news, job.New{Group: fmt.Sprintf("dev-%d", g), Payload: payload})
					}
				}
				enqueue(queue, news)
				for held := 0; held < n; {
					jobs, err := e.Lease(ctx, engine.LeaseRequest{Queue: queue, Max: 100, TTR: time.Hour})
					if err != nil || len(jobs) == 0 {
						b.Fatalf("block the groups of %s: %d leased, %v", queue, held, err)
					}
					held += len(jobs)
				}
			}
			block("plc", blocked)
			if blocked < groups {
				block("other", groups-blocked)
			}
			news := make([]job.New, b.N)
			for i := range news {
				news[i] = job.New{Group: "ready", Payload: payload}
			}
			enqueue("plc", news)
			b.ReportAllocs()
			b.ResetTimer()
			var leasing time.Duration
			cpu0 := cpuTime(b)
			for range b.N {
				t0 := time.Now()
				jobs, err := e.Lease(ctx, engine.LeaseRequest{Queue: "plc", Max: 1, TTR: time.Hour})
				leasing += time.Since(t0)
				if err != nil || len(jobs) != 1 || jobs[0].Group != "ready" {
					b.Fatalf("lease = %v, %v; want the ready group's head", jobs, err)
				}
				if err := e.Ack(ctx, jobs[0].ID, jobs[0].LeaseID, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns")
			b.ReportMetric(float64(leasing.Nanoseconds())/float64(b.N), "lease-ns")
		})
	}
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
