package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// maxTxnPayload bounds the payload bytes one transaction holds before it is
// committed: a store holds a transaction's writes in memory until Commit,
// whatever their cost in Txn.Fits.
const maxTxnPayload = 8 << 20

// apply runs one op. Refusals go to o.err with nothing written; a returned
// error is a store failure that fails the whole batch.
func (e *Engine) apply(b *batch, o *op) error {
	switch o.kind {
	case opEnqueue:
		return e.applyEnqueue(b, o)
	case opLease:
		return e.applyLease(b, o)
	case opAck, opNack, opFail, opExtend:
		return e.applyLeased(b, o)
	case opAckBatch:
		return e.applyAckBatch(b, o)
	case opAckLease:
		return e.applyAckLease(b, o)
	case opCancel:
		return e.applyCancel(b, o)
	case opRetry:
		return e.applyRetry(b, o)
	case opPurge:
		return e.applyPurge(b, o)
	case opDeadRetry, opDeadPurge:
		return e.applyDead(b, o)
	case opMove:
		return e.applyMove(b, o)
	case opSchedule:
		return e.applySchedule(b, o)
	}
	return fmt.Errorf("unknown op kind %d", o.kind)
}

func (e *Engine) applyEnqueue(b *batch, o *op) error {
	payload := payloadBytes(o.news)
	if b.writes > 0 && b.payload+payload > maxTxnPayload {
		if err := e.rotate(b); err != nil {
			return err
		}
	}
	ok, err := e.fits(b, store.Op{Enqueue: o.news})
	if err != nil {
		return err
	}
	b.payload += payload
	if !ok {
		o.err = fmt.Errorf("%w: batch of %d jobs does not fit one transaction; split it", job.ErrTooLarge, len(o.news))
		return nil
	}
	q, err := e.adopt(o.q)
	if err != nil {
		o.err = err
		return nil
	}
	o.q = q
	victims, refusal, err := e.makeRoom(b, q, o.news)
	if err != nil {
		return err
	}
	if refusal != nil {
		o.err = refusal
		return nil
	}
	if len(victims) > 0 {
		ok, err := e.evictFor(b, q, o.news, victims)
		if err != nil {
			return err
		}
		if !ok {
			o.err = fmt.Errorf("%w: evicting %d jobs for these does not fit one transaction; send fewer at once", job.ErrTooLarge, len(victims))
			return nil
		}
	}
	o.results = make([]job.Result, len(o.news))
	for i := range o.news {
		if o.results[i], err = e.enqueueOne(b, q, &o.news[i]); err != nil {
			return err
		}
	}
	q.in.add(b.now, len(o.news))
	b.wrote(q)
	return nil
}

// payloadBytes is what enqueueing news adds to the payload a transaction
// holds in memory until Commit.
func payloadBytes(news []job.New) int {
	n := 0
	for i := range news {
		n += len(news[i].Payload)
	}
	return n
}

// enqueueOne creates the job n in q, or answers the job that holds its
// dedupe key (replacing its payload, with job.KeyReplace).
func (e *Engine) enqueueOne(b *batch, q *queue, n *job.New) (job.Result, error) {
	mode := keyModeOf(n, q)
	if n.Key != "" {
		res, done, err := e.dedupe(b, q, n, mode)
		if done || err != nil {
			return res, err
		}
	}
	now := b.now
	j := e.newJob(q, n, now)
	if err := b.txn.Create(j); err != nil {
		return job.Result{}, fmt.Errorf("create job: %w", err)
	}
	if n.Key != "" {
		if err := b.txn.PutDedupe(q.name, n.Key, j.ID, e.keyTTL(mode, j, now)); err != nil {
			return job.Result{}, fmt.Errorf("put dedupe key: %w", err)
		}
	}
	e.entered(b, q, j)
	q.enqueued.Add(1)
	return job.Result{ID: j.ID, Queue: q.name, State: j.State}, nil
}

// newJob makes the job that n creates in q at now, with the next id.
func (e *Engine) newJob(q *queue, n *job.New, now time.Time) *job.Job {
	e.c.seq++
	j := &job.Job{
		ID:          job.ID(e.c.seq),
		Queue:       q.name,
		State:       job.StateReady,
		MaxAttempts: q.maxAttempts(*n),
		CreatedAt:   now,
		RunAt:       now,
		ExpiresAt:   n.ExpiresAt,
		TTR:         cmpOr(n.TTR, q.conf().TTR),
		Key:         n.Key,
		Group:       n.Group,
		Headers:     n.Headers,
		ContentType: n.ContentType,
		Payload:     n.Payload,
		Size:        len(n.Payload),
		TraceParent: n.TraceParent,
		TraceState:  n.TraceState,
		OnSuccess:   n.OnSuccess,
	}
	if n.RunAt.After(now) {
		j.State, j.RunAt = job.StateDelayed, n.RunAt
	} else {
		j.ReadySeq = e.c.seq
	}
	return j
}

func cmpOr(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

// entered accounts for j arriving in its state: counters, timed scans and
// wake-ups.
func (e *Engine) entered(b *batch, q *queue, j *job.Job) {
	if j.State != job.StateDead && j.State != job.StateDone { // bytes: ready, delayed, leased
		q.bytes.Add(int64(j.Size))
	}
	switch j.State {
	case job.StateReady:
		q.ready.Add(1)
		if j.Group == "" {
			placeReady(q, j)
			e.hotAdd(q, j)
		}
		b.wakeQueue(q)
		if maxAge := q.conf().MaxAge; maxAge > 0 {
			e.c.aged.note(j.CreatedAt.Add(maxAge))
		}
	case job.StateDelayed:
		q.delayed.Add(1)
		e.c.delayed.note(j.RunAt)
		if holdsQueue(j) {
			q.held.Add(1)
		}
	case job.StateLeased:
		q.leased.Add(1)
	case job.StateDead:
		q.dead.Add(1)
		q.deadTotal.Add(1)
		q.out.add(b.now, 1)
	case job.StateDone:
		q.done.Add(1)
		e.c.done.note(j.ExpiresAt)
	}
	if !j.ExpiresAt.IsZero() && (j.State == job.StateReady || j.State == job.StateDelayed) {
		e.c.expiry.note(j.ExpiresAt)
	}
	if j.Group != "" {
		e.groupEnter(b, q, j)
	}
}

// left accounts for j leaving its state: only ID, State, Size, Group and
// ReadySeq are read.
func (e *Engine) left(b *batch, q *queue, j *job.Job) {
	if j.State != job.StateDead && j.State != job.StateDone {
		q.bytes.Add(-int64(j.Size))
	}
	if j.Group != "" {
		e.groupLeave(b, q, j)
	}
	switch j.State {
	case job.StateReady:
		if j.Group != "" {
			q.ready.Add(-1)
			return
		}
		e.hotRemove(q, j.ID)
		if q.ready.Add(-1) == q.groups.ready.Load() && !q.hot.complete {
			e.hotReset(q) // nothing ready: the (empty) tail is complete again
		}
	case job.StateDelayed:
		q.delayed.Add(-1)
		if holdsQueue(j) {
			q.held.Add(-1)
		}
	case job.StateLeased:
		q.leased.Add(-1)
	case job.StateDead:
		q.dead.Add(-1)
	case job.StateDone:
		q.done.Add(-1)
	}
}

// transition writes prev → next and keeps the accounts.
func (e *Engine) transition(b *batch, q *queue, prev, next *job.Job) error {
	if err := e.stepFits(b, next); err != nil {
		return err
	}
	if err := b.txn.Update(prev, next); err != nil {
		return err // the store names the job
	}
	e.left(b, q, prev)
	e.entered(b, q, next)
	b.wrote(q)
	return nil
}

// toReady makes j ready now, at the back of its queue.
func (e *Engine) toReady(b *batch, q *queue, j *job.Job, runAt time.Time) *job.Job {
	e.c.seq++
	next := j.Clone()
	next.State, next.ReadySeq, next.RunAt = job.StateReady, e.c.seq, runAt
	next.LeaseID, next.LeaseExpires = "", time.Time{}
	return next
}

// toDead dead-letters j with reason.
func (e *Engine) toDead(b *batch, q *queue, j *job.Job, reason string) error {
	next := j.Clone()
	next.State, next.LastError = job.StateDead, reason
	next.LeaseID, next.LeaseExpires = "", time.Time{}
	b.event(Event{Kind: EventDead, Queue: q.name, ID: j.ID, Attempt: j.Attempt, Error: reason, At: b.now})
	return e.transition(b, q, j, next)
}

func (e *Engine) applyLease(b *batch, o *op) error {
	q := o.q
	if !e.dispatchable(q) {
		return nil
	}
	if q.groups.ready.Load() == 0 {
		return e.leaseQueue(b, q, o, o.max)
	}
	// Groups and the jobs without one take turns.
	for len(o.jobs) < o.max {
		n := len(o.jobs)
		did, err := e.leaseGrouped(b, q, o)
		if err != nil {
			return err
		}
		if len(o.jobs) < o.max && q.ready.Load() > q.groups.ready.Load() {
			if err := e.leaseQueue(b, q, o, len(o.jobs)+1); err != nil {
				return err
			}
		}
		if !did && len(o.jobs) == n {
			return nil
		}
	}
	return nil
}

// leaseQueue leases ready jobs without a group for o until it holds max;
// none while a retry holds an ordered q.
func (e *Engine) leaseQueue(b *batch, q *queue, o *op, max int) error {
	if q.heldBack() {
		return nil
	}
	if q.hot.complete {
		// Every ready job after the cursor is in memory (hot.go).
		for len(o.jobs) < max {
			j, ok := e.hotTake(q)
			if !ok {
				return nil
			}
			q.cursor.Store(j.ReadySeq)
			if len(j.Payload) != j.Size {
				// Not kept with its payload (large, or it became ready
				// through a record read without it): the store has it.
				id := j.ID
				var err error
				if j, err = b.txn.Job(id, true); err != nil {
					return fmt.Errorf("lease: %w", err)
				}
			}
			if err := e.leaseOne(b, q, o, j); err != nil {
				return err
			}
		}
		return nil
	}
	for len(o.jobs) < max && q.ready.Load() > q.groups.ready.Load() {
		refs, err := b.txn.Ready(q.name, q.cursor.Load(), max-len(o.jobs))
		if err != nil {
			return fmt.Errorf("read ready index: %w", err)
		}
		if len(refs) == 0 {
			break
		}
		for _, ref := range refs {
			q.cursor.Store(ref.Seq)
			j, err := b.txn.Job(ref.ID, true)
			if errors.Is(err, job.ErrNotFound) {
				e.log.Error("ready index names a missing job", "queue", q.name, "id", ref.ID)
				continue
			}
			if err != nil {
				return fmt.Errorf("lease: %w", err)
			}
			if j.State != job.StateReady {
				continue
			}
			if err := e.leaseOne(b, q, o, j); err != nil {
				return err
			}
			if q.hot.complete {
				// The last ready job went: what becomes ready from here on
				// is kept in memory again.
				break
			}
		}
	}
	return nil
}

// leaseOne leases the ready job j for o, or dead-letters it when its
// deadline passed or its attempts are spent.
func (e *Engine) leaseOne(b *batch, q *queue, o *op, j *job.Job) error {
	if !j.ExpiresAt.IsZero() && !j.ExpiresAt.After(b.now) {
		return e.toDead(b, q, j, "expired")
	}
	if j.Attempt >= j.MaxAttempts {
		return e.toDead(b, q, j, exhausted(j))
	}
	next := j.Clone()
	next.State = job.StateLeased
	next.Attempt++
	next.LeaseID = newLeaseID()
	ttr := cmpOr(o.ttr, cmpOr(j.TTR, q.conf().TTR))
	next.LeaseExpires = b.now.Add(ttr)
	if err := e.transition(b, q, j, next); err != nil {
		return err
	}
	e.c.leases.put(j.ID, lease{queue: q, id: next.LeaseID, expires: next.LeaseExpires, attempt: next.Attempt, size: j.Size, group: j.Group, ttr: ttr, onSuccess: j.OnSuccess != nil})
	o.jobs = append(o.jobs, next)
	if q.conf().Class <= job.ClassHigh {
		e.waitLat.add(b.now.Sub(j.RunAt), b.now)
	}
	return nil
}

func exhausted(j *job.Job) string {
	if j.LastError != "" {
		return j.LastError
	}
	return fmt.Sprintf("attempts exhausted (%d of %d)", j.Attempt, j.MaxAttempts)
}
