package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// timedScan is the committer's position in a timed index. from is the last
// entry handled (seek starts after it: no tombstone walks); next is when the
// first unhandled entry falls due, zero when nothing is known to be waiting.
type timedScan struct {
	from  store.Ref
	next  time.Time
	noted time.Time // earliest entry added since the last scan: not in its snapshot
}

// note records that an entry for t was added.
func (s *timedScan) note(t time.Time) {
	if !s.from.At.IsZero() && !t.After(s.from.At) {
		s.from = store.Ref{} // added behind the cursor (a clock step, or an equal time)
	}
	s.next = earliest(s.next, t)
	s.noted = earliest(s.noted, t)
}

// earliest is the earlier of two times, a zero time counting as none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func (s *timedScan) due(now time.Time) bool { return !s.next.IsZero() && !s.next.After(now) }

// Work done per batch by maintenance, per kind, so one batch stays short.
const maintenanceStep = 256

// doneStep and donePace bound the deletes of retained done jobs at the
// end of their retention: at most doneStep a batch, and when more are due,
// the next sweep waits donePace, so a million that expire together are
// deleted at up to 1,600 a second (about ten minutes) beside ingest instead
// of taking its batches. The scan seeks past what it deleted, never walking
// the tombstones.
const (
	doneStep = 16
	donePace = 10 * time.Millisecond
)

var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func (e *Engine) maintenanceDue(now time.Time) bool {
	if e.c.delayed.due(now) || e.c.expiry.due(now) || e.c.aged.due(now) || e.ageRescan.Load() || e.c.done.due(now) {
		return true
	}
	t := e.c.leases.next()
	return !t.IsZero() && !t.After(now)
}

// maintain promotes due delayed jobs, dead-letters jobs past their
// deadline, takes back expired leases and drops jobs past their queue's
// max_age, a bounded number of each per batch.
func (e *Engine) maintain(b *batch) error {
	now := b.now
	for i := 0; i < maintenanceStep; i++ {
		id, l, ok := e.c.leases.popExpired(now)
		if !ok {
			break
		}
		j, err := b.txn.Job(id, false)
		if errors.Is(err, job.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if j.State != job.StateLeased || j.LeaseID != l.id {
			continue
		}
		if err := e.requeue(b, l.queue, j, "lease expired"); err != nil {
			return err
		}
	}
	if e.c.delayed.due(now) {
		err := e.scan(b, &e.c.delayed, store.IndexDelayed, func(q *queue, j *job.Job) error {
			if j.State != job.StateDelayed {
				return nil
			}
			return e.transition(b, q, j, e.toRetry(b, q, j, j.RunAt))
		})
		if err != nil {
			return err
		}
	}
	if e.c.expiry.due(now) {
		err := e.scan(b, &e.c.expiry, store.IndexExpiry, func(q *queue, j *job.Job) error {
			if (j.State != job.StateReady && j.State != job.StateDelayed) || j.ExpiresAt.After(now) {
				return nil
			}
			return e.toDead(b, q, j, "expired")
		})
		if err != nil {
			return err
		}
	}
	if e.c.done.due(now) {
		err := e.scanN(b, &e.c.done, store.IndexDone, doneStep, func(q *queue, j *job.Job) error {
			if j.State != job.StateDone || j.ExpiresAt.After(now) {
				return nil
			}
			if err := e.stepFits(b, j); err != nil {
				return err
			}
			if err := b.txn.Delete(j); err != nil {
				return fmt.Errorf("end retention: %w", err)
			}
			e.left(b, q, j)
			b.wrote(q)
			return nil
		})
		if err != nil {
			return err
		}
		if e.c.done.next.Equal(now) { // more due: pace the deletes
			e.c.done.next = now.Add(donePace)
		}
	}
	if e.ageRescan.Swap(false) || e.c.aged.due(now) {
		return e.dropAged(b)
	}
	return nil
}

// scan runs fn on the due entries of a timed index, one step's worth.
func (e *Engine) scan(b *batch, s *timedScan, kind store.TimedIndex, fn func(*queue, *job.Job) error) error {
	return e.scanN(b, s, kind, maintenanceStep, fn)
}

// scanN runs fn on up to step due entries of a timed index.
func (e *Engine) scanN(b *batch, s *timedScan, kind store.TimedIndex, step int, fn func(*queue, *job.Job) error) error {
	refs, next, err := b.txn.Due(kind, s.from, b.now, step)
	if err != nil {
		return fmt.Errorf("scan timed index: %w", err)
	}
	for _, r := range refs {
		s.from = r
		j, err := b.txn.Job(r.ID, false)
		if errors.Is(err, job.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := fn(e.internalQueue(j.Queue), j); err != nil {
			return err
		}
	}
	// Index reads see committed data: entries added in this batch are not
	// in refs or next, only in noted.
	if len(refs) == step {
		s.next = b.now // more to do in the next batch
	} else {
		s.next = earliest(next, s.noted)
	}
	s.noted = time.Time{}
	return nil
}

// requeue puts a job whose lease ended without an answer back to ready, or
// dead-letters it when its attempts are spent: the attempt counter was made
// durable at lease time, so a job that crashes the process cannot loop.
func (e *Engine) requeue(b *batch, q *queue, j *job.Job, why string) error {
	e.c.leases.remove(j.ID)
	if j.Attempt >= j.MaxAttempts {
		return e.toDead(b, q, j, fmt.Sprintf("%s after attempt %d of %d", why, j.Attempt, j.MaxAttempts))
	}
	next := e.toRetry(b, q, j, b.now)
	q.retried.Add(1)
	b.event(Event{Kind: EventRetry, Queue: q.name, ID: j.ID, Attempt: j.Attempt, Error: why, At: b.now})
	return e.transition(b, q, j, next)
}
