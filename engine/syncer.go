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

// token is the committer's hold on the syncer. The committer takes the
// token to hand the syncer work; until it does, the syncer is idle.
type token struct {
	held bool
	last syncReport
}

// takeToken takes the syncer's token, waiting for it when wait is set. It
// reports whether the committer holds it.
func (e *Engine) takeToken(wait bool) bool {
	if e.c.tok.held {
		return true
	}
	if wait {
		e.gotToken(<-e.c.syncFree)
		return true
	}
	select {
	case r := <-e.c.syncFree:
		e.gotToken(r)
		return true
	default:
		return false
	}
}

func (e *Engine) gotToken(r syncReport) {
	e.c.tok = token{held: true, last: r}
}

// hand gives the syncer a group; the committer must hold the token.
func (e *Engine) hand(g []*committed) {
	e.c.tok.held = false
	e.c.syncCh <- g
}

// holdFor is how much longer the committer keeps a free syncer waiting
// before it hands over what is pending; 0 means hand it over now.
//
// Callers answered by a sync usually come straight back with their next op
// (closed-loop callers: producers waiting on Enqueue, HTTP clients, workers,
// devices waiting for their PUBACK). If the next sync went out at once, it
// would carry only the ops that arrived during the last one, the callers
// just answered would wait for it and then for their own, and the callers
// would split into two groups that alternate, each about half the size: the
// same fsyncs for half the jobs. So the committer holds the syncer until as
// many ops as the last sync answered have been committed on top of those
// already pushed when it answered them, for at most the duration of that
// sync (and maxHold): a caller who does not come back costs at most one
// more sync's time. A group that did not sync, or answered nothing, is not
// waited on.
func (e *Engine) holdFor(now time.Time) time.Duration {
	t := e.c.tok
	if !t.held || t.last.took <= 0 || t.last.ops == 0 {
		return 0
	}
	committed := e.ring.Popped() // the committer is the ring's only consumer
	if e.c.open != nil {
		committed -= uint64(len(e.c.open.ops))
	}
	if committed >= t.last.pushed+uint64(t.last.ops) {
		return 0
	}
	return max(0, t.last.done.Add(min(t.last.took, maxHold)).Sub(now))
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

// flushSyncs waits until the syncer has finished everything handed to it.
func (e *Engine) flushSyncs() {
	done := make(chan struct{})
	e.takeToken(true)
	e.hand([]*committed{{flush: done}})
	<-done
}
