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
		return nil, fmt.Errorf("%w: acks: %d, at most %d in one call", job.ErrTooLarge, len(acks), MaxBatchJobs)
	}
	o := &op{kind: opAckBatch, acks: make([]op, len(acks))}
	for i, a := range acks {
		o.acks[i] = op{kind: opAck, id: a.ID, lease: a.Lease, pull: true, result: a.Result}
	}
	if err := e.submit(ctx, o); err != nil {
		return nil, err
	}
	errs := make([]error, len(acks))
	for i := range o.acks {
		errs[i] = o.acks[i].err
	}
	return errs, nil
}

// applyAckBatch applies each ack of o in order, as applyLeased applies a
// single one; a refused ack leaves its own error and the others go on.
func (e *Engine) applyAckBatch(b *batch, o *op) error {
	for i := range o.acks {
		if err := e.applyLeased(b, &o.acks[i]); err != nil {
			return err
		}
	}
	return nil
}
