package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// load rebuilds the committer's in-memory state from committed data: the
// sequence, every queue's counters and the held leases. Cursors restart at
// the beginning of each index.
func (e *Engine) load() error {
	now := time.Now()
	var (
		seq    uint64
		counts map[string]store.Counts
		held   []*job.Job
	)
	err := e.store.View(func(tx store.ReadTx) error {
		var err error
		if seq, err = tx.Seq(); err != nil {
			return fmt.Errorf("read seq: %w", err)
		}
		// Bytes are counted for the queues bounded by bytes only: counting
		// reads each job's record, and a restart must not read a large
		// backlog of a queue that does not need it.
		bytesOf := func(q string) bool { return e.queueConfig(q).MaxBytes > 0 }
		if counts, err = tx.Counts(bytesOf); err != nil {
			return fmt.Errorf("count jobs: %w", err)
		}
		var after job.ID
		for {
			refs, err := tx.Leased(after, 1000)
			if err != nil {
				return fmt.Errorf("list leased jobs: %w", err)
			}
			for _, r := range refs {
				j, err := tx.Job(r.ID, false)
				if err != nil {
					return fmt.Errorf("read leased jobs: %w", err)
				}
				held = append(held, j)
				after = r.ID
			}
			if len(refs) < 1000 {
				return nil
			}
		}
	})
	if err != nil {
		return err
	}
	e.c.seq, e.c.seqSet = seq, seq
	e.setCounts(counts)
	if err := e.reloadGroups(held); err != nil {
		return err
	}
	e.qmu.RLock()
	for _, q := range e.queues {
		e.hotReset(q)
	}
	e.qmu.RUnlock()
	e.c.hotBytes = 0
	e.c.leases = newLeaseTable()
	// What a failed batch finished is not in the store: forget it all
	// (a repeated answer then gets the 404 of an unknown job).
	e.c.finished = newFinishedLeases()
	// A lease's own TTR is not stored: after a restart, extend without a
	// ttr renews by the job's (or its queue's) TTR.
	for _, j := range held {
		e.c.leases.put(j.ID, lease{queue: e.internalQueue(j.Queue), id: j.LeaseID, expires: j.LeaseExpires, attempt: j.Attempt, size: j.Size, group: j.Group, onSuccess: j.OnSuccess != nil})
	}
	e.c.delayed = timedScan{next: now}
	e.c.expiry = timedScan{next: now}
	e.c.aged = timedScan{next: now}
	e.c.done = timedScan{next: now}
	return nil
}

// setCounts sets every queue's counts to what the store counted at start:
// zero for the queues it holds no job of, and the bytes unknown for those
// that hold jobs but were not counted (load counts bounded queues only).
func (e *Engine) setCounts(counts map[string]store.Counts) {
	e.qmu.RLock()
	for _, q := range e.queues {
		q.ready.Store(0)
		q.delayed.Store(0)
		q.leased.Store(0)
		q.dead.Store(0)
		q.bytes.Store(0)
		q.bytesUnknown.Store(false)
		q.done.Store(0)
		q.cursor.Store(0)
	}
	e.qmu.RUnlock()
	for name, c := range counts {
		q := e.internalQueue(name)
		q.ready.Store(c.Ready)
		q.delayed.Store(c.Delayed)
		q.leased.Store(c.Leased)
		q.dead.Store(c.Dead)
		q.bytes.Store(c.Bytes)
		q.done.Store(c.Done)
		q.bytesUnknown.Store(c.Ready+c.Delayed+c.Leased > 0 && e.queueConfig(name).MaxBytes == 0)
	}
}

// recover loads the state at start and gives back every lease: no worker
// holds one across a restart. A job whose attempts are spent is dead-lettered
// instead (the poison-job rule).
func (e *Engine) recover(ctx context.Context) error {
	if err := e.load(); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	if n := len(e.c.leases.byJob); n > 0 {
		e.log.Info("requeueing jobs leased before the restart", "jobs", n)
	}
	for len(e.c.leases.byJob) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := &batch{txn: e.store.Begin(), gen: e.c.nextTxn(), now: time.Now()}
		err := func() error {
			n := 0
			for id, l := range e.c.leases.byJob {
				j, err := b.txn.Job(id, false)
				if err != nil {
					return fmt.Errorf("requeue leased jobs: %w", err)
				}
				if err := e.requeue(b, l.queue, j, "lease lost in restart"); err != nil {
					return err
				}
				if n++; n == 1000 {
					break
				}
			}
			if err := e.commitTxn(b); err != nil {
				return err
			}
			return e.store.Sync()
		}()
		if err != nil {
			b.txn.Discard()
			return fmt.Errorf("requeue leased jobs: %w", err)
		}
	}
	e.c.synced = time.Now()
	return nil
}
