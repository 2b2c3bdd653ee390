package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// committed is what the committer hands the syncer: a committed batch, a
// bare sync (sync with no batch), or a barrier (flush).
type committed struct {
	b     *batch        // nil for a bare sync or a barrier
	sync  bool          // the batch (or the bare sync) needs Store.Sync before its answers
	flush chan struct{} // a barrier: closed once everything handed before it is finished
}

// syncLoop is the second stage of the commit pipeline. The committer
// commits batches and, when it holds the token, hands them over here; this
// goroutine calls Store.Sync once for them, then delivers their events and
// answers their ops, and gives the token back. Meanwhile the committer
// applies and commits the next batches (commitLoop). Answers and events keep
// commit order: one group is in flight at a time.
func (e *Engine) syncLoop(in <-chan []*committed, free chan<- syncReport) {
	for g := range in {
		free <- e.finish(g)
	}
}

// syncReport is what the syncer says of a group when it gives the token
// back: how many ops it answered, when, and how long its sync took.
type syncReport struct {
	ops    int
	pushed uint64        // ring.Pushed when the answers began
	done   time.Time     // when it gave the token back
	took   time.Duration // of the Store.Sync; zero when it did not sync
}

// finish syncs a group of committed batches when any of them needs it, then
// answers them in order.
func (e *Engine) finish(group []*committed) syncReport {
	needSync, wrote := false, false
	for _, c := range group {
		needSync = needSync || c.sync
		wrote = wrote || (c.b != nil && c.b.writes > 0)
	}
	synced := false
	var took time.Duration
	if needSync {
		t0 := time.Now()
		err := e.store.Sync()
		if err != nil {
			e.syncFailed(group, err)
			return syncReport{done: time.Now()}
		}
		synced, took = true, time.Since(t0)
		e.hSync.observe(took.Seconds())
	}
	ops, pushed := 0, e.ring.Pushed()
	if wrote || synced {
		e.failed.Store(nil) // only a write proves the store healthy again
	}
	now := time.Now()
	for _, c := range group {
		if c.b != nil {
			if len(c.b.ops) > 0 {
				took := now.Sub(c.b.start)
				e.commitLat.add(took, c.b.start)
				e.hCommit.observe(took.Seconds())
				e.hBatch.observe(float64(len(c.b.ops)))
			}
			e.deliver(c.b) // durable now; before the answers, so a caller sees its event delivered
			ops += len(c.b.ops)
			for _, o := range c.b.ops {
				for i := range o.results {
					o.results[i].Durable = synced
				}
				o.answer()
			}
			for q := range c.b.wake {
				q.wake()
			}
			if len(c.b.wake) > 0 {
				e.sched.kick()
			}
		}
		if c.flush != nil {
			close(c.flush)
		}
	}
	if synced {
		e.hSyncOps.observe(float64(ops))
	}
	return syncReport{ops: ops, pushed: pushed, done: time.Now(), took: took}
}

// syncFailed answers every op of the group with err. Their writes are
// committed but may not be durable: the in-memory state already matches the
// store, so nothing is rebuilt; the committer marks the store dirty again
// so that the next batch syncs.
func (e *Engine) syncFailed(group []*committed, err error) {
	e.log.Error("sync failed", "batches", len(group), "err", err)
	e.failed.Store(&err)
	e.syncLost.Store(true)
	answer := failure("sync", err)
	for _, c := range group {
		if c.b != nil {
			for _, o := range c.b.ops {
				o.err, o.results, o.jobs = answer, nil, nil
				o.answer()
			}
		}
		if c.flush != nil {
			close(c.flush)
		}
	}
}

// failure is the answer to an op whose batch failed in step (commit, sync):
// a retryable refusal, job.ErrDiskFull when the disk is full.
func failure(step string, err error) error {
	if errors.Is(err, job.ErrDiskFull) {
		return job.Retry(fmt.Errorf("%w: %v", job.ErrDiskFull, err), 5*time.Second)
	}
	return job.Retry(fmt.Errorf("%w: %s: %v", job.ErrUnavailable, step, err), time.Second)
}
