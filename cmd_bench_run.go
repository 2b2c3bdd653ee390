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

func runBench(ctx context.Context, cl jobClient, cfg benchConfig, progress io.Writer) benchResult {
	st := &benchStats{hists: map[string]*histogram{}, errors: map[string]int64{}, allConsumed: make(chan struct{})}
	if cfg.Producers == 0 {
		st.consumeGoal = int64(cfg.Count)
	}
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if cfg.Duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
	}
	defer cancel()
	take := countBudget(cfg.Count)
	var prodWG, consWG sync.WaitGroup
	start := time.Now()
	for range cfg.Producers {
		prodWG.Go(func() { benchProducer(ctx, runCtx, cl, cfg, st, take) })
	}
	consCtx, consCancel := context.WithCancel(runCtx)
	defer consCancel()
	for range cfg.Consumers {
		if cfg.AckLease {
			consWG.Go(func() { benchAckLeaser(ctx, consCtx, cl, cfg, st) })
		} else {
			consWG.Go(func() { benchConsumer(ctx, consCtx, cl, cfg, st) })
		}
	}

	// Progress every second until the producers are done and, in --count
	// mode, the consumers have consumed what was asked.
	prodDone := make(chan struct{})
	go func() { prodWG.Wait(); close(prodDone) }()
	st.waitRun(runCtx, cfg, prodDone, start, progress)
	// Consuming a count ends when the count is consumed, not when the
	// consumers' last long polls give up.
	consumedAt := time.Since(start)
	consCancel()
	prodWG.Wait()
	consWG.Wait()
	elapsed := time.Since(start)
	if st.consumeGoal > 0 && st.consumed.Load() >= st.consumeGoal {
		elapsed = consumedAt
	}
	return st.result(cfg, elapsed, progress)
}

// benchProducer enqueues until the run (until) ends. Its requests run under ctx, not
// until: one in flight at the end completes and is counted, so that the
// count matches what the queue holds.
func benchProducer(ctx, until context.Context, cl jobClient, cfg benchConfig, st *benchStats, take func(int) int) {
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
// leave its jobs leased until their TTR. With cfg.Pipeline the acks of one
// lease's jobs run in a goroutine of their own while the next lease goes
// out; the consumer waits for them before it acks again.
func benchConsumer(ctx, until context.Context, cl jobClient, cfg benchConfig, st *benchStats) {
	lh, ah := newHistogram(), newHistogram()
	defer st.merge("lease", lh)
	defer st.merge("ack", ah)
	var acking sync.WaitGroup // the acks in flight; at most one group
	defer acking.Wait()
	for until.Err() == nil {
		t0 := time.Now()
		jobs, err := cl.Lease(ctx, cfg.Queue, cfg.LeaseMax, time.Second, 0)
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
		acking.Wait() // the histogram is the ack goroutine's until then
		if cfg.Pipeline {
			acking.Go(func() { benchAcks(ctx, cl, jobs, st, ah) })
		} else {
			benchAcks(ctx, cl, jobs, st, ah)
		}
	}
}

// benchAckLeaser is a consumer that acks the jobs it leased in its next
// lease request (--ack-lease), until the run (until) ends; then it acks
// the last ones alone. A request that carries acks does not wait: when it
// leases nothing, a plain long poll follows, so that the acks' answers
// (and the count) are not held back by the wait.
func benchAckLeaser(ctx, until context.Context, cl jobClient, cfg benchConfig, st *benchStats) {
	lh, ah := newHistogram(), newHistogram()
	defer st.merge("ack+lease", lh)
	defer st.merge("ack", ah)
	var held []httpapi.Job // leased, acked by the next request
	defer func() { benchAcks(ctx, cl, held, st, ah) }()
	done := make([]httpapi.AckItem, 0, cfg.LeaseMax)
	for until.Err() == nil {
		done = done[:0]
		for _, j := range held {
			if j.Lease != nil {
				done = append(done, httpapi.AckItem{ID: j.ID, Lease: j.Lease.ID})
			}
		}
		wait := time.Second
		if len(done) > 0 {
			wait = 0
		}
		t0 := time.Now()
		jobs, errs, err := cl.AckLease(ctx, cfg.Queue, cfg.LeaseMax, wait, 0, done)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			st.addErr(err) // held is acked again: a repeated ack answers acked
			pause(ctx, 100*time.Millisecond)
			continue
		}
		for _, err := range errs {
			if err != nil {
				st.addErr(err)
			} else {
				st.consumedOne()
			}
		}
		if len(jobs) > 0 {
			lh.record(time.Since(t0))
		}
		held = jobs
	}
}

// benchAcks acks jobs one by one, recording each ack's latency in h.
func benchAcks(ctx context.Context, cl jobClient, jobs []httpapi.Job, st *benchStats, h *histogram) {
	actx, cancel := context.WithTimeout(ctx, clientTimeout)
	defer cancel()
	for _, j := range jobs {
		t0 := time.Now()
		if j.Lease == nil {
			continue
		}
		if err := cl.Ack(actx, j.ID, j.Lease.ID); err != nil {
			st.addErr(err)
			continue
		}
		h.record(time.Since(t0))
		st.consumedOne()
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

// countBudget hands out jobs to producers: n at a time while count lasts
// (count 0: without end).
func countBudget(count int) func(n int) int {
	var budget atomic.Int64
	budget.Store(int64(count))
	return func(n int) int {
		if count == 0 {
			return n
		}
		left := budget.Add(-int64(n))
		if left >= 0 {
			return n
		}
		return max(0, n+int(left))
	}
}

// waitRun prints progress every second until the producers are done
// (prodDone) and, in --count mode, the consumers have consumed what was
// asked, or the run ends.
func (st *benchStats) waitRun(runCtx context.Context, cfg benchConfig, prodDone chan struct{}, start time.Time, progress io.Writer) {
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
				break
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
		case <-st.allConsumed:
		}
	}
}

// result prints the run's averages as the last progress line and gathers
// what --json prints.
func (st *benchStats) result(cfg benchConfig, elapsed time.Duration, progress io.Writer) benchResult {
	enq, cons := st.enqueued.Load(), st.consumed.Load()
	fmt.Fprintf(progress, "\r%5.0fs  enqueued %d (%.0f/s)  consumed %d (%.0f/s)  errors %d   \n",
		elapsed.Seconds(), enq, float64(enq)/elapsed.Seconds(), cons, float64(cons)/elapsed.Seconds(), st.errCount.Load())

	r := benchResult{
		Config: cfg, ElapsedS: elapsed.Seconds(),
		Enqueued: st.enqueued.Load(), Consumed: st.consumed.Load(),
		Latency: map[string]latencySum{}, Errors: st.errors,
	}
	r.EnqueueRate = float64(r.Enqueued) / elapsed.Seconds()
	r.ConsumeRate = float64(r.Consumed) / elapsed.Seconds()
	for name, h := range st.hists {
		r.Latency[name] = h.summary()
	}
	return r
}
