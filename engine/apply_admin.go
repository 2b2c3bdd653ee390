package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

func (e *Engine) applyCancel(b *batch, o *op) error {
	j, err := b.txn.Job(o.id, false)
	if errors.Is(err, job.ErrNotFound) {
		o.err = fmt.Errorf("job %s: %w", o.id, job.ErrNotFound)
		return nil
	}
	if err != nil {
		return err
	}
	if j.State == job.StateLeased {
		o.err = fmt.Errorf("job %s is leased: %w", o.id, job.ErrConflict)
		return nil
	}
	q := e.internalQueue(j.Queue)
	if err := e.stepFits(b, j); err != nil {
		return err
	}
	if err := b.txn.Delete(j); err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	e.left(b, q, j)
	b.wrote(q)
	return nil
}

// applyRetry moves one dead job back to ready with its attempts reset.
func (e *Engine) applyRetry(b *batch, o *op) error {
	j, err := b.txn.Job(o.id, false)
	if errors.Is(err, job.ErrNotFound) {
		o.err = fmt.Errorf("job %s: %w", o.id, job.ErrNotFound)
		return nil
	}
	if err != nil {
		return err
	}
	if j.State != job.StateDead {
		o.err = fmt.Errorf("job %s is %s, not dead: %w", o.id, j.State, job.ErrConflict)
		return nil
	}
	q := e.internalQueue(j.Queue)
	next := e.toReady(b, q, j, b.now)
	next.Attempt = 0
	return e.transition(b, q, j, next)
}

// internalQueue returns the queue of a stored job, creating its state when
// needed (a stored job's queue exists even under strict_queues).
func (e *Engine) internalQueue(name string) *queue {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	q := e.queues[name]
	if q == nil {
		q = newQueue(name, e.queueConfig(name), time.Now())
		e.addQueueLocked(q)
	}
	return q
}

// applyPurge deletes up to o.max ready and delayed jobs of o.q.
func (e *Engine) applyPurge(b *batch, o *op) error {
	q := o.q
	del := func(id job.ID) error {
		j, err := b.txn.Job(id, false)
		if errors.Is(err, job.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if j.Queue != q.name || (j.State != job.StateReady && j.State != job.StateDelayed) {
			return nil
		}
		if err := e.stepFits(b, j); err != nil {
			return err
		}
		if err := b.txn.Delete(j); err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		e.left(b, q, j)
		b.wrote(q)
		o.n++
		return nil
	}
	if q.ready.Load() > 0 {
		refs, err := b.txn.Ready(q.name, q.cursor.Load(), o.max)
		if err != nil {
			return err
		}
		for _, r := range refs {
			q.cursor.Store(r.Seq)
			if err := del(r.ID); err != nil {
				return err
			}
		}
	}
	if o.n < o.max && q.groups.ready.Load() > 0 {
		ids, err := groupedReady(b, q, o.max-o.n)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := del(id); err != nil {
				return err
			}
		}
	}
	from := store.Ref{}
	for o.n < o.max && q.delayed.Load() > 0 {
		refs, _, err := b.txn.Due(store.IndexDelayed, from, farFuture, maintenanceStep)
		if err != nil {
			return err
		}
		for _, r := range refs {
			from = r
			if r.Queue != q.name {
				continue
			}
			if err := del(r.ID); err != nil {
				return err
			}
			if o.n >= o.max {
				break
			}
		}
		if len(refs) < maintenanceStep {
			break
		}
	}
	return nil
}

// groupedReady lists up to max ready jobs of q that have a group, from the
// start of its group-ready index (admin sweeps: each step is one commit, so
// the next step does not see what this one took).
func groupedReady(b *batch, q *queue, max int) ([]job.ID, error) {
	refs, err := b.txn.GroupReady(q.name, store.Ref{}, max)
	if err != nil {
		return nil, fmt.Errorf("read group-ready index: %w", err)
	}
	ids := make([]job.ID, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
	}
	return ids, nil
}

// applyDead retries or purges up to o.max dead jobs of o.q, oldest first.
func (e *Engine) applyDead(b *batch, o *op) error {
	q := o.q
	ids, err := b.txn.Dead(q.name, 0, o.max)
	if err != nil {
		return err
	}
	for _, id := range ids {
		j, err := b.txn.Job(id, false)
		if errors.Is(err, job.ErrNotFound) {
			continue // deleted earlier in this transaction
		}
		if err != nil {
			return fmt.Errorf("read dead job: %w", err)
		}
		if j.State != job.StateDead || j.Queue != q.name {
			continue // changed earlier in this transaction
		}
		if o.kind == opDeadPurge {
			if err := e.stepFits(b, j); err != nil {
				return err
			}
			if err := b.txn.Delete(j); err != nil {
				return fmt.Errorf("purge dead: %w", err)
			}
			e.left(b, q, j)
			b.wrote(q)
		} else {
			next := e.toReady(b, q, j, b.now)
			next.Attempt = 0
			if err := e.transition(b, q, j, next); err != nil {
				return err
			}
		}
		o.n++
	}
	return nil
}
