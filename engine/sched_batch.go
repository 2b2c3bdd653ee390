package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// BatchHandler is a Handler that takes several jobs of one queue in one
// call (an uplink, which sends them upstream together). The scheduler
// leases up to BatchMax jobs of such a queue in one op, runs them in one
// worker with one HandleBatch call, and records their outcomes in one op:
// a lease and an answer cost one durable commit per batch, not per job.
// A batch holds one worker slot (governor.concurrency) and as many of its
// queue's concurrency as it has jobs; an ordered queue (QueueConfig.
// Ordered) has one batch in flight at a time, so that its calls come in
// lease order. Handle still serves single jobs.
type BatchHandler interface {
	Handler
	// BatchMax is the most jobs one HandleBatch call takes (at least 1).
	BatchMax() int
	// HandleBatch runs jobs, all of one queue in the order they were
	// leased, and answers one Outcome per job, in the same order. It must
	// return when ctx is done and be safe for concurrent use.
	HandleBatch(ctx context.Context, jobs []*job.Job) []Outcome
}

// batchHandler answers q's handler when it takes batches, else nil.
func batchHandler(q *queue) BatchHandler {
	bh, _ := q.conf().Handler.(BatchHandler)
	return bh
}

// takeBatchLocked takes one worker slot for a batch of d's queue: as many
// jobs as BatchMax, the ready jobs not yet being leased and the queue's
// concurrency allow; one while its breaker probes.
func (s *sched) takeBatchLocked(d *queueSlots, bh BatchHandler) alloc {
	q := d.q
	n := max(1, bh.BatchMax())
	n = min(n, int(q.runnable())-d.pending)
	if c := q.conf().Concurrency; c > 0 {
		n = min(n, c-d.running)
	}
	if d.breaker == BreakerHalfOpen {
		n, d.probing = 1, true
	}
	n = max(n, 1) // eligibleLocked saw room for one
	d.running += n
	d.pending += n
	s.running++
	return alloc{d: d, n: n, bh: bh}
}

// leaseBatch asks the committer for a's jobs in one op; leasedBatch takes
// the answer (on the syncer goroutine).
func (s *sched) leaseBatch(a alloc) {
	s.mu.Lock()
	s.inflight++
	s.mu.Unlock()
	o := &op{kind: opLease, q: a.d.q, max: a.n}
	o.then = func(o *op) { s.leasedBatch(a, o) }
	if err := s.e.submitInternal(o); err != nil {
		o.err = err
		s.leasedBatch(a, o)
	}
}

// leasedBatch takes a batch's lease answer: it starts one worker for the
// jobs, and gives back the slots that found no job (the worker's too when
// none did).
func (s *sched) leasedBatch(a alloc, o *op) {
	d := a.d
	s.mu.Lock()
	d.pending -= a.n
	unused := a.n - len(o.jobs)
	d.running -= unused
	if len(o.jobs) == 0 {
		s.running--
		if d.breaker == BreakerHalfOpen {
			d.probing = false
		}
	} else {
		s.workers.Add(1)
		go s.runBatch(d, a.bh, o.jobs)
	}
	s.inflight--
	if s.inflight == 0 {
		s.idle.Broadcast()
	}
	s.mu.Unlock()
	if o.err != nil {
		s.e.log.Warn("dispatch lease failed", "queue", d.q.name, "err", o.err)
	}
	if unused > 0 {
		s.kick()
	}
}

// runBatch is a worker for one batch: it runs the jobs in one call and
// records their outcomes in one op.
func (s *sched) runBatch(d *queueSlots, bh BatchHandler, jobs []*job.Job) {
	defer s.workers.Done()
	ctx, cancel := context.WithCancel(s.runCtx)
	outs := safeHandleBatch(ctx, bh, jobs)
	interrupted := s.runCtx.Err() != nil // shutdown, not the target's doing
	cancel()
	o := &op{kind: opAckBatch, acks: make([]op, len(jobs))}
	for i, j := range jobs {
		o.acks[i] = outcomeOp(j, outs[i])
	}
	if err := s.e.submitInternal(o); err != nil {
		s.e.log.Warn("batch outcomes not recorded; their leases will expire", "queue", d.q.name, "jobs", len(jobs), "err", err)
	}
	now := time.Now()
	s.mu.Lock()
	d.running -= len(jobs)
	s.running--
	if !interrupted {
		for _, out := range outs {
			s.breakerLocked(d, out, now)
		}
	}
	s.mu.Unlock()
	s.kick()
}

// outcomeOp is the op that records a handler's outcome for the leased j.
func outcomeOp(j *job.Job, out Outcome) op {
	o := op{id: j.ID, lease: j.LeaseID}
	switch out.Verdict {
	case Ack:
		o.kind, o.result = opAck, []byte(out.Result)
	case Dead:
		o.kind, o.text = opFail, truncate(out.Error, maxErrorLen)
	default:
		o.kind, o.text, o.delay, o.keep = opNack, truncate(out.Error, maxErrorLen), out.NackDelay(), out.Unreached
	}
	return o
}

// safeHandleBatch runs h on jobs as safeHandle runs a Handler: a panic
// retries every job of the batch, a missing verdict is a Retry, and a
// handler that answers the wrong number of outcomes retries the jobs it
// did not answer.
func safeHandleBatch(ctx context.Context, h BatchHandler, jobs []*job.Job) (outs []Outcome) {
	defer func() {
		if r := recover(); r != nil {
			outs = make([]Outcome, len(jobs))
			for i := range outs {
				outs[i] = Outcome{Verdict: Retry, Error: fmt.Sprintf("handler panic: %v", r)}
			}
		}
	}()
	got := h.HandleBatch(ctx, jobs)
	outs = make([]Outcome, len(jobs))
	for i := range outs {
		if i >= len(got) {
			outs[i] = Outcome{Verdict: Retry, Error: "handler answered no outcome"}
			continue
		}
		outs[i] = got[i]
		if outs[i].Verdict == 0 {
			outs[i].Verdict = Retry
		}
	}
	return outs
}
