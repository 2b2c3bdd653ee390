package main

import (
	"context"
	"sync"

	"github.com/edgeq/edgeq/transport/httpapi"
)

// ackRides hands the acks of `edgeq work`'s finished jobs to the lease
// loop's next request, so that an ack and the next lease cost one request
// and one commit on the daemon. An ack goes alone only while the loop long
// polls an empty queue (its answer would wait for the poll) or after the
// loop stopped. Safe for concurrent use.
type ackRides struct {
	mu      sync.Mutex
	polling bool         // guarded by mu: a lease without acks is waiting for jobs
	stopped bool         // guarded by mu: the loop sends no more requests
	pending []pendingAck // guarded by mu
}

// pendingAck is an ack waiting for the loop's next request; answer gets
// its outcome.
type pendingAck struct {
	id, lease string
	answer    chan error // buffered: the loop never waits on it
}

// offer queues the ack of job id for the loop's next request and answers
// the channel its outcome comes on; nil when it must go alone. The caller
// frees its lease slot after the offer, which wakes the loop.
func (r *ackRides) offer(id, lease string) chan error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.polling || r.stopped {
		return nil
	}
	ch := make(chan error, 1)
	r.pending = append(r.pending, pendingAck{id: id, lease: lease, answer: ch})
	return ch
}

// take answers the acks for the loop's next request; with none, the
// request is a long poll until done is called.
func (r *ackRides) take() []pendingAck {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pending
	r.pending = nil
	r.polling = len(p) == 0
	return p
}

// done says the loop's request came back.
func (r *ackRides) done() {
	r.mu.Lock()
	r.polling = false
	r.mu.Unlock()
}

// stop takes the acks no request will carry; later offers go alone.
func (r *ackRides) stop() []pendingAck {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	p := r.pending
	r.pending = nil
	return p
}

// lease sends the loop's next lease request for n jobs with the acks that
// wait for it, and answers each ack. A request with acks does not wait for
// jobs: its acks' answers would wait with it. When it fails as a whole, the
// acks go alone (an ack the daemon made already answers nil again).
func (w *worker) lease(ctx, jobCtx context.Context, n int) ([]httpapi.Job, error) {
	rides := w.rides.take()
	defer w.rides.done()
	if len(rides) == 0 {
		return w.cl.Lease(ctx, w.queue, n, w.wait, w.ttr)
	}
	acks := make([]httpapi.AckItem, len(rides))
	for i, a := range rides {
		acks[i] = httpapi.AckItem{ID: a.id, Lease: a.lease}
	}
	jobs, errs, err := w.cl.AckLease(ctx, w.queue, n, 0, w.ttr, acks)
	if err != nil {
		w.ackAlone(jobCtx, rides)
		return nil, err
	}
	for i, a := range rides {
		a.answer <- errs[i]
	}
	return jobs, nil
}

// ackAlone sends acks one by one and answers each.
func (w *worker) ackAlone(jobCtx context.Context, acks []pendingAck) {
	for _, a := range acks {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(jobCtx), workResolveTimeout)
		a.answer <- w.cl.Ack(ctx, a.id, a.lease)
		cancel()
	}
}
