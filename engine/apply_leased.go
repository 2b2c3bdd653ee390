package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// The ops on a held lease: ack, nack, fail, extend.

// applyLeased runs ack, nack, fail and extend: each needs the caller to hold
// the job's current, unexpired lease.
func (e *Engine) applyLeased(b *batch, o *op) error {
	l, ok := e.c.leases.byJob[o.id]
	if !ok || l.id != o.lease || !l.expires.After(b.now) {
		return e.notLeased(b, o)
	}
	if o.kind == opAck {
		return e.applyAck(b, o, l)
	}
	q := l.queue
	j, err := b.txn.Job(o.id, false)
	if err != nil {
		return fmt.Errorf("read leased job: %w", err)
	}
	switch o.kind {
	case opExtend:
		next := j.Clone()
		ttr := cmpOr(o.ttr, cmpOr(l.ttr, cmpOr(j.TTR, q.conf().TTR)))
		next.LeaseExpires = b.now.Add(ttr)
		if err := e.transition(b, q, j, next); err != nil {
			return err
		}
		e.c.leases.put(o.id, lease{queue: q, id: l.id, expires: next.LeaseExpires, attempt: l.attempt, size: l.size, group: l.group, ttr: ttr, onSuccess: l.onSuccess})
		o.at = next.LeaseExpires
		return nil
	case opFail:
		e.c.leases.remove(o.id)
		if o.pull {
			e.c.finished.add(o.id, o.lease, opFail)
		}
		o.state = job.StateDead
		return e.toDead(b, q, j, o.text)
	}
	return e.applyNack(b, o, q, j)
}

// notLeased answers an op on a lease the caller does not hold: like the
// first answer when it repeats one whose answer was lost, else a refusal.
func (e *Engine) notLeased(b *batch, o *op) error {
	if f, ok := e.c.finished.get(o.id); ok {
		if f.lease != o.lease || f.kind != o.kind {
			o.err = fmt.Errorf("job %s: %w", o.id, job.ErrLeaseLost)
			return nil
		}
		// A repeat of an answer that was lost: answered like the first
		// one, and only once the first one is durable.
		b.needSync = true
		if o.kind == opFail {
			o.state = job.StateDead
		}
		return nil
	}
	_, err := b.txn.Job(o.id, false)
	switch {
	case errors.Is(err, job.ErrNotFound):
		o.err = fmt.Errorf("job %s: %w", o.id, job.ErrNotFound)
	case err != nil:
		return err
	default:
		o.err = fmt.Errorf("job %s: %w", o.id, job.ErrLeaseLost)
	}
	return nil
}

// applyAck deletes the job leased under l, or keeps it done with its
// result when its queue retains finished jobs, and enqueues its follow-up
// (on_success) in the same transaction.
func (e *Engine) applyAck(b *batch, o *op, l lease) error {
	q := l.queue
	var j *job.Job
	if q.conf().RetainDone > 0 || l.onSuccess {
		var err error
		if j, err = b.txn.Job(o.id, false); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
	}
	var fu *followUp
	if l.onSuccess && j.OnSuccess != nil {
		var err error
		if fu, err = e.prepareFollowUp(b, o, q, j); err != nil || o.err != nil {
			return err
		}
	}
	ev := Event{Kind: EventDone, Queue: q.name, ID: o.id, Attempt: l.attempt, At: b.now}
	if retain := q.conf().RetainDone; retain > 0 {
		next := j.Clone()
		next.State, next.LeaseID, next.LeaseExpires = job.StateDone, "", time.Time{}
		next.ExpiresAt = b.now.Add(retain)
		next.Result, next.ResultTruncated = o.result, false
		if m := q.conf().MaxResult; len(o.result) > m {
			next.Result, next.ResultTruncated = o.result[:m:m], true
		}
		if err := e.transition(b, q, j, next); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
		ev.Result, ev.ResultTruncated = next.Result, next.ResultTruncated
	} else {
		j := &job.Job{ID: o.id, Queue: q.name, State: job.StateLeased, Size: l.size, Group: l.group}
		if err := e.stepFits(b, j); err != nil {
			return err
		}
		if err := b.txn.Delete(j); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
		e.left(b, q, j)
		b.wrote(q)
	}
	if fu != nil {
		if err := e.createFollowUp(b, fu); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
	}
	e.c.leases.remove(o.id)
	if o.pull {
		e.c.finished.add(o.id, o.lease, opAck)
	}
	q.completed.Add(1)
	q.out.add(b.now, 1)
	b.event(ev)
	return nil
}

// applyNack retries the leased job j after its delay, or dead-letters it
// when its attempts are spent. A job that never reached the target (keep)
// gets its attempt back and is always retried.
func (e *Engine) applyNack(b *batch, o *op, q *queue, j *job.Job) error {
	e.c.leases.remove(o.id)
	if j.Attempt >= j.MaxAttempts && !o.keep {
		o.state = job.StateDead
		return e.toDead(b, q, j, o.text)
	}
	delay := o.delay
	if delay == NackBackoff {
		delay = backoff(q.conf().Backoff, j.Attempt)
	}
	next := e.toRetry(b, q, j, b.now.Add(delay))
	next.LastError = o.text
	if o.keep && next.Attempt > 0 {
		next.Attempt--
	}
	if delay > 0 {
		next.State = job.StateDelayed
		if next.Group == "" && !q.conf().Ordered {
			next.ReadySeq = 0
		} // else it waits with its place, holding its group's slot or its queue
	}
	q.retried.Add(1)
	o.state = next.State
	b.event(Event{Kind: EventRetry, Queue: q.name, ID: j.ID, Attempt: j.Attempt, Error: o.text, At: b.now})
	return e.transition(b, q, j, next)
}
