package ring

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Reproduce with: go test -run x -bench . -count 5 ./engine/ring/
// and compare the ring and chan rows of BenchmarkHandoff with benchstat.

const (
	benchCap   = 1024 // capacity of both the ring and the channel
	benchBatch = 256  // the consumer's batch buffer
)

var benchProducers = []int{1, 4, 16, 64}

// benchJob stands in for the *job.Job pointers the intake ring carries.
type benchJob struct{ id uint64 }

// BenchmarkHandoff measures the intake shape: P producers pushing as fast as
// they can and one consumer draining in batches. One op is one item
// received by the consumer, so ns/op is the cost per item.
//
//   - ring: producers call Push; the consumer calls PopBatch into a
//     benchBatch-slot buffer and yields with runtime.Gosched when the ring
//     is empty, since the ring has no blocking pop.
//   - chan: producers send (selecting on a stop channel, as Push selects on
//     its context); the consumer receives one item at a time.
//   - chanbatch: as chan, but the consumer blocks for one item and then
//     drains up to benchBatch with a non-blocking select loop.
func BenchmarkHandoff(b *testing.B) {
	shapes := []struct {
		name string
		run  func(b *testing.B, producers int)
	}{
		{name: "ring", run: benchRingHandoff},
		{name: "chan", run: benchChanHandoff},
		{name: "chanbatch", run: benchChanBatchHandoff},
	}
	for _, s := range shapes {
		b.Run(s.name, func(b *testing.B) {
			for _, p := range benchProducers {
				b.Run(fmt.Sprintf("producers=%d", p), func(b *testing.B) {
					s.run(b, p)
				})
			}
		})
	}
}

func benchRingHandoff(b *testing.B, producers int) {
	r, err := New[*benchJob](benchCap)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	var wg sync.WaitGroup
	for i := range producers {
		wg.Go(func() {
			j := &benchJob{id: uint64(i)}
			for r.Push(ctx, j, time.Hour) == nil {
			}
		})
	}

	buf := make([]*benchJob, benchBatch)
	var n, next int
	b.ReportAllocs()
	for b.Loop() {
		for next == n {
			next, n = 0, r.PopBatch(buf)
			if n == 0 {
				runtime.Gosched()
			}
		}
		if buf[next] == nil {
			b.Fatal("popped nil")
		}
		next++
	}

	cancel()
	wg.Wait()
}

func benchChanHandoff(b *testing.B, producers int) {
	ch := make(chan *benchJob, benchCap)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range producers {
		wg.Go(func() { chanProducer(ch, stop, &benchJob{id: uint64(i)}) })
	}

	b.ReportAllocs()
	for b.Loop() {
		if <-ch == nil {
			b.Fatal("received nil")
		}
	}

	close(stop)
	wg.Wait()
}

func benchChanBatchHandoff(b *testing.B, producers int) {
	ch := make(chan *benchJob, benchCap)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range producers {
		wg.Go(func() { chanProducer(ch, stop, &benchJob{id: uint64(i)}) })
	}

	buf := make([]*benchJob, benchBatch)
	var n, next int
	b.ReportAllocs()
	for b.Loop() {
		if next == n {
			buf[0] = <-ch
			next, n = 0, 1
		drain:
			for n < len(buf) {
				select {
				case buf[n] = <-ch:
					n++
				default:
					break drain
				}
			}
		}
		if buf[next] == nil {
			b.Fatal("received nil")
		}
		next++
	}

	close(stop)
	wg.Wait()
}

func chanProducer(ch chan<- *benchJob, stop <-chan struct{}, j *benchJob) {
	for {
		select {
		case ch <- j:
		case <-stop:
			return
		}
	}
}

// BenchmarkPushPop measures the uncontended cost of one push and one pop on
// a single goroutine.
func BenchmarkPushPop(b *testing.B) {
	j := &benchJob{}
	b.Run("ring", func(b *testing.B) {
		r, err := New[*benchJob](benchCap)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			r.TryPush(j)
			if v, ok := r.TryPop(); !ok || v != j {
				b.Fatal("pop mismatch")
			}
		}
	})
	b.Run("chan", func(b *testing.B) {
		ch := make(chan *benchJob, benchCap)
		b.ReportAllocs()
		for b.Loop() {
			ch <- j
			if <-ch != j {
				b.Fatal("receive mismatch")
			}
		}
	})
}
