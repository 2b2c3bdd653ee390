package engine

import (
	"context"
	"fmt"

	"github.com/edgeq/edgeq/engine/job"
)

// AckRequest names a leased job and the lease it is held under.
type AckRequest struct {
	ID     job.ID
	Lease  string
	Result []byte // kept when the queue retains done jobs (Ack)
}

// AckBatch acks up to MaxBatchJobs leased jobs in one op: one commit and at
// most one sync for all of them. It answers one error per ack, in order,
// each what Ack would have answered (nil, job.ErrLeaseLost,
// job.ErrNotFound); an ack repeated with the same lease answers nil, as
// Ack does. The error it returns is the whole call's: the batch is refused
// (none, or too many) or its commit failed, and then no answers.
func (e *Engine) AckBatch(ctx context.Context, acks []AckRequest) ([]error, error) {
	switch {
	case len(acks) == 0:
		return nil, fmt.Errorf("%w: acks: none", job.ErrInvalidArgument)
	case len(acks) > MaxBatchJobs:
		return nil, tooManyAcks(len(acks))
	}
	o := &op{kind: opAckBatch, acks: ackOps(acks)}
	if err := e.submit(ctx, o); err != nil {
		return nil, err
	}
	return o.ackErrs(), nil
}

// AckLease acks acks, each answered as AckBatch answers it, and leases as
// Lease does, in one op: one commit and at most one sync for both, so that
// a worker that finished its jobs and wants the next pays one round trip
// and one fsync for the two. A refused ack never holds the lease back. When
// nothing is ready at once and r.Wait is set, it long-polls as Lease does,
// the acks committed and durable by then. The error it returns is the
// whole call's: r or acks refused (nothing done), or the commit failed
// (no answers; the acks may or may not have been made). Without acks it is
// Lease.
func (e *Engine) AckLease(ctx context.Context, acks []AckRequest, r LeaseRequest) ([]error, []*job.Job, error) {
	if len(acks) == 0 {
		jobs, err := e.Lease(ctx, r)
		return nil, jobs, err
	}
	if len(acks) > MaxBatchJobs {
		return nil, nil, tooManyAcks(len(acks))
	}
	q, err := e.checkLease(r)
	if err != nil {
		return nil, nil, err
	}
	if q == nil {
		q = e.registered(r.Queue)
	}
	o := &op{kind: opAckLease, acks: ackOps(acks), q: q, max: r.Max, ttr: r.TTR}
	if err := e.submit(ctx, o); err != nil {
		return nil, nil, err
	}
	switch {
	case len(o.jobs) > 0:
		return o.ackErrs(), o.jobs, nil
	case r.Wait <= 0:
		return o.ackErrs(), []*job.Job{}, nil
	}
	jobs, err := e.Lease(ctx, r)
	return o.ackErrs(), jobs, err
}

// tooManyAcks refuses a call of n acks, over MaxBatchJobs.
func tooManyAcks(n int) error {
	return fmt.Errorf("%w: acks: %d, at most %d in one call", job.ErrTooLarge, n, MaxBatchJobs)
}

// ackOps are the opAck ops of acks.
func ackOps(acks []AckRequest) []op {
	ops := make([]op, len(acks))
	for i, a := range acks {
		ops[i] = op{kind: opAck, id: a.ID, lease: a.Lease, pull: true, result: a.Result}
	}
	return ops
}

// ackErrs answers the error of each of o.acks, in order.
func (o *op) ackErrs() []error {
	errs := make([]error, len(o.acks))
	for i := range o.acks {
		errs[i] = o.acks[i].err
	}
	return errs
}

// applyAckBatch applies each op of o in order (acks from AckBatch; acks,
// nacks and fails from a batch worker, sched_batch.go), as applyLeased
// applies a single one; a refused one leaves its own error and the others
// go on.
func (e *Engine) applyAckBatch(b *batch, o *op) error {
	for i := range o.acks {
		if err := e.applyLeased(b, &o.acks[i]); err != nil {
			return err
		}
	}
	return nil
}

// applyAckLease applies o's acks, then its lease when its queue exists.
func (e *Engine) applyAckLease(b *batch, o *op) error {
	if err := e.applyAckBatch(b, o); err != nil {
		return err
	}
	if o.q == nil {
		return nil
	}
	return e.applyLease(b, o)
}
