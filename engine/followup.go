package engine

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// Follow-up jobs (on_success): a job's success enqueues one more job, in
// the transaction of its ack, so that a crash neither loses it nor makes it
// twice.

// MaxFollowUpPayload bounds the payload given with an on_success follow-up:
// it is kept in its job's record until the job succeeds.
const MaxFollowUpPayload = 64 << 10

// ParentHeader is the header of a follow-up job that names the job whose
// success enqueued it.
const ParentHeader = "edgeq-parent"

// checkFollowUp checks an enqueue's on_success: a valid queue name (under
// strict_queues, a configured queue) and a payload within
// MaxFollowUpPayload and max_payload.
func (e *Engine) checkFollowUp(f *job.FollowUp) error {
	if f == nil {
		return nil
	}
	if !job.ValidQueueName(f.Queue) {
		return fmt.Errorf("%w: on_success.queue: %q must match ^[a-z0-9][a-z0-9_.-]{0,63}$", job.ErrInvalidArgument, f.Queue)
	}
	if e.cfg.StrictQueues {
		e.qmu.RLock()
		_, ok := e.cfg.Queues[f.Queue]
		e.qmu.RUnlock()
		if !ok {
			return fmt.Errorf("%w: on_success.queue: %q is not configured (strict_queues)", job.ErrInvalidArgument, f.Queue)
		}
	}
	if limit := min(MaxFollowUpPayload, e.cfg.MaxPayload); len(f.Payload) > limit {
		return fmt.Errorf("%w: on_success.payload: %d bytes, at most %d", job.ErrInvalidArgument, len(f.Payload), limit)
	}
	return nil
}

// followUp is the job an ack is about to enqueue into q.
type followUp struct {
	q      *queue
	n      job.New
	parent job.ID
}

// prepareFollowUp makes the follow-up of parent, acked by o, before the
// ack writes anything, and makes sure that the ack's writes and its
// follow-up fit one transaction. A follow-up that cannot be made (its
// queue left the configuration, or max_queues is reached) refuses the ack
// through o.err, with nothing written.
func (e *Engine) prepareFollowUp(b *batch, o *op, q *queue, parent *job.Job) (*followUp, error) {
	f := parent.OnSuccess
	payload := f.Payload
	if !f.HasPayload {
		// A copy: the new job may stay in memory (hot.go), the caller's
		// result must not.
		payload = bytes.Clone(o.result[:min(len(o.result), q.conf().MaxResult)])
	}
	ct := "application/octet-stream"
	if len(payload) > 0 && json.Valid(payload) {
		ct = "application/json"
	}
	fu := &followUp{parent: parent.ID, n: job.New{
		Queue:       f.Queue,
		Payload:     payload,
		ContentType: ct,
		Headers:     map[string]string{ParentHeader: parent.ID.String()},
		TraceParent: parent.TraceParent,
		TraceState:  parent.TraceState,
	}}
	if b.writes > 0 && b.payload+len(payload) > maxTxnPayload {
		if err := e.rotate(b); err != nil {
			return nil, err
		}
	}
	change := *parent
	change.Result = o.result
	ok, err := e.fits(b, store.Op{Change: &change, Enqueue: []job.New{fu.n}})
	if err != nil {
		return nil, err
	}
	if !ok {
		o.err = fmt.Errorf("%w: job %s: its ack and its on_success job do not fit one transaction", job.ErrTooLarge, parent.ID)
		return nil, nil
	}
	to, err := e.target(f.Queue)
	if err == nil {
		to, err = e.adopt(to)
	}
	if err != nil {
		o.err = fmt.Errorf("job %s: on_success: %w", parent.ID, err)
		return nil, nil
	}
	fu.q = to
	b.payload += len(payload)
	return fu, nil
}

// createFollowUp creates fu's job, ready, or dead when its queue's bounds
// (max_depth, max_bytes) have no room for it: a follow-up does not evict,
// and is never dropped.
func (e *Engine) createFollowUp(b *batch, fu *followUp) error {
	q := fu.q
	j := e.newJob(q, &fu.n, b.now)
	if dj, db := q.over(1, int64(j.Size)); dj > 0 || db > 0 {
		j.State, j.ReadySeq = job.StateDead, 0
		j.LastError = fmt.Sprintf("on_success of job %s: %v", fu.parent, q.full(1, int64(j.Size), ""))
		b.event(Event{Kind: EventDead, Queue: q.name, ID: j.ID, Error: j.LastError, At: b.now})
	}
	if err := b.txn.Create(j); err != nil {
		return fmt.Errorf("create follow-up: %w", err)
	}
	e.entered(b, q, j)
	q.enqueued.Add(1)
	q.in.add(b.now, 1)
	b.wrote(q)
	return nil
}
