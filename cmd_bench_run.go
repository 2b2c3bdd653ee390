package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeq/edgeq/transport/httpapi"
)

// benchStats are the counters and histograms the goroutines of a run
// share.
type benchStats struct {
	enqueued, consumed atomic.Int64
	errCount           atomic.Int64

	mu     sync.Mutex
	hists  map[string]*histogram // guarded by mu; merged from each goroutine's at its end
	errors map[string]int64      // guarded by mu
}

func (s *benchStats) addErr(err error) {
	code := "transport"
	var ae *httpapi.APIError
	if errors.As(err, &ae) {
		code = ae.Code
	}
	s.errCount.Add(1)
	s.mu.Lock()
	s.errors[code]++
	s.mu.Unlock()
}

func (s *benchStats) merge(name string, h *histogram) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hists[name] == nil {
		s.hists[name] = newHistogram()
	}
	s.hists[name].merge(h)
}

func runBench(ctx context.Context, cl *httpapi.Client, cfg benchConfig, progress io.Writer) benchResult {
	st := &benchStats{hists: map[string]*histogram{}, errors: map[string]int64{}}
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if cfg.Duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
	}
	defer cancel()
	take := cfg.budget()
	var prodWG, consWG sync.WaitGroup
	start := time.Now()
	for range cfg.Producers {
		prodWG.Go(func() { benchProducer(ctx, runCtx, cl, cfg, st, take) })
	}
	consCtx, consCancel := context.WithCancel(runCtx)
	defer consCancel()
	for range cfg.Consumers {
		consWG.Go(func() { benchConsumer(ctx, consCtx, cl, cfg, st) })
	}
	prodDone := make(chan struct{})
	go func() { prodWG.Wait(); close(prodDone) }()
	st.watch(runCtx, cfg, prodDone, start, progress)
	consCancel()
	prodWG.Wait()
	consWG.Wait()
	return st.result(cfg, time.Since(start), progress)
}

// budget answers how many of n jobs a producer may enqueue: all of them in
// --duration mode; in --count mode what is left of the count.
func (cfg benchConfig) budget() func(n int) int {
	var left atomic.Int64
	left.Store(int64(cfg.Count))
	return func(n int) int {
		if cfg.Count == 0 {
			return n
		}
		l := left.Add(-int64(n))
		if l >= 0 {
			return n
		}
		return max(0, n+int(l))
	}
}

// watch prints progress every second until the producers are done
// (prodDone) and, in --count mode, the consumers have consumed what was
// asked, or the run (runCtx) ends.
func (st *benchStats) watch(runCtx context.Context, cfg benchConfig, prodDone <-chan struct{}, start time.Time, progress io.Writer) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastEnq, lastCons int64
	report := func() {
		enq, cons := st.enqueued.Load(), st.consumed.Load()
		fmt.Fprintf(progress, "\r%5.0fs  enqueued %d (%d/s)  consumed %d (%d/s)  errors %d   ",
			time.Since(start).Seconds(), enq, enq-lastEnq, cons, cons-lastCons, st.errCount.Load())
		lastEnq, lastCons = enq, cons
	}
	producing := cfg.Producers > 0
	for {
		if !producing {
			wantConsumed := int64(cfg.Count)
			if cfg.Producers > 0 {
				wantConsumed = st.enqueued.Load()
			}
			if cfg.Consumers == 0 || runCtx.Err() != nil || (cfg.Count > 0 && st.consumed.Load() >= wantConsumed) {
				return
			}
		}
		select {
		case <-prodDone:
			producing = false
			prodDone = nil
			if cfg.Consumers > 0 && cfg.Count == 0 {
				// Duration mode: consumers run to the deadline.
				continue
			}
		case <-tick.C:
			report()
		case <-runCtx.Done():
			producing = false
		}
	}
}

// result prints the averages of the whole run as the last progress line
// and answers the run's outcome.
func (st *benchStats) result(cfg benchConfig, elapsed time.Duration, progress io.Writer) benchResult {
	enq, cons := st.enqueued.Load(), st.consumed.Load()
	fmt.Fprintf(progress, "\r%5.0fs  enqueued %d (%.0f/s)  consumed %d (%.0f/s)  errors %d   \n",
		elapsed.Seconds(), enq, float64(enq)/elapsed.Seconds(), cons, float64(cons)/elapsed.Seconds(), st.errCount.Load())
	r := benchResult{
		Config: cfg, ElapsedS: elapsed.Seconds(),
		Enqueued: enq, Consumed: cons,
		Latency: map[string]latencySum{}, Errors: st.errors,
	}
	r.EnqueueRate = float64(r.Enqueued) / elapsed.Seconds()
	r.ConsumeRate = float64(r.Consumed) / elapsed.Seconds()
	for name, h := range st.hists {
		r.Latency[name] = h.summary()
	}
	return r
}

// benchProducer enqueues until the run (until) ends. Its requests run under ctx, not
// until: one in flight at the end completes and is counted, so that the
// count matches what the queue holds.
func benchProducer(ctx, until context.Context, cl *httpapi.Client, cfg benchConfig, st *benchStats, take func(int) int) {
	h := newHistogram()
	name := "enqueue"
	if cfg.Batch > 0 {
		name = "batch"
	}
	defer st.merge(name, h)
	payload := make([]byte, cfg.Payload)
	_, _ = rand.Read(payload)
	var lines []httpapi.BatchLine
	for until.Err() == nil {
		n := take(max(cfg.Batch, 1))
		if n == 0 {
			return
		}
		t0 := time.Now()
		var err error
		if cfg.Batch > 0 {
			lines = lines[:0]
			for range n {
				lines = append(lines, httpapi.BatchLine{Payload: payload})
			}
			_, err = cl.EnqueueBatch(ctx, cfg.Queue, lines)
		} else {
			_, err = cl.Enqueue(ctx, cfg.Queue, payload, httpapi.EnqueueOptions{})
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			st.addErr(err)
			var ae *httpapi.APIError
			if errors.As(err, &ae) && ae.Temporary() {
				pause(ctx, 10*time.Millisecond) // refused: do not spin
			}
			continue
		}
		h.record(time.Since(t0))
		st.enqueued.Add(int64(n))
	}
}

// benchConsumer leases and acks until the run (until) ends. Like the
// producers' its requests run under ctx: a lease cancelled in flight could
// leave its jobs leased until their TTR.
func benchConsumer(ctx, until context.Context, cl *httpapi.Client, cfg benchConfig, st *benchStats) {
	lh, ah := newHistogram(), newHistogram()
	defer st.merge("lease", lh)
	defer st.merge("ack", ah)
	for until.Err() == nil {
		t0 := time.Now()
		jobs, err := cl.Lease(ctx, cfg.Queue, 100, time.Second, 0)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			st.addErr(err)
			pause(ctx, 100*time.Millisecond)
			continue
		}
		if len(jobs) > 0 {
			lh.record(time.Since(t0))
		}
		actx, cancel := context.WithTimeout(ctx, clientTimeout)
		for _, j := range jobs {
			t0 := time.Now()
			if j.Lease == nil {
				continue
			}
			if err := cl.Ack(actx, j.ID, j.Lease.ID); err != nil {
				st.addErr(err)
				continue
			}
			ah.record(time.Since(t0))
			st.consumed.Add(1)
		}
		cancel()
	}
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
