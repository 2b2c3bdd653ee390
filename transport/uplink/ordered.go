package uplink

import (
	"errors"
	"fmt"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// An ordered queue's jobs go out in enqueue order (engine.QueueConfig.
// Ordered; the engine puts a retry back at its place and holds the queue
// while it waits). The engine hands the uplink each lease whole, in queue
// order (engine.BatchHandler); here:
//   - a batch acks an ordered queue's jobs up to the first that failed;
//     the ones after it are held back (heldBackError: retried at their
//     places, at no attempt) even when the server took them, so they go
//     out again after it; so are the queue's jobs of batches sent while it
//     was in flight (pipeline answers batches in the order sent);
//   - the batcher then holds back the queue's later jobs that were leased
//     before the failure reached the engine, until the failed job comes
//     back (or Timeout passed: it went dead, or was cancelled).
//
// Jobs with a group keep their group's order by the engine's groups.

// heldBackError answers a job of an ordered queue that goes out again
// after an earlier one that failed.
type heldBackError struct{ behind job.ID }

func (e *heldBackError) Error() string {
	return fmt.Sprintf("held back behind job %s, which failed", e.behind)
}

// block is an ordered queue whose job failed: its later jobs are held back
// until that job comes back, or until.
type block struct {
	behind job.ID
	until  time.Time
}

// holdBack answers, and takes out of batch (sorted by id), the jobs of
// ordered queues that a failed job blocks; a job at or before the failed
// one unblocks its queue.
func (u *Uplink) holdBack(now time.Time, batch []*item) []*item {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.blocks) == 0 {
		return batch
	}
	kept := batch[:0]
	for _, it := range batch {
		b, ok := u.blocks[it.j.Queue]
		switch {
		case !ok || !it.ordered || it.j.Group != "":
		case it.j.ID <= b.behind || now.After(b.until):
			delete(u.blocks, it.j.Queue)
		default:
			it.done <- &heldBackError{behind: b.behind}
			continue
		}
		kept = append(kept, it)
	}
	clear(batch[len(kept):])
	return kept
}

// afterFailure holds back the jobs of an ordered queue that follow, in
// batch, one of the queue's that failed, or a failed job that blocks the
// queue, and blocks the queue's later jobs; errs are batch's answers,
// changed in place.
func (u *Uplink) afterFailure(now time.Time, batch []*item, errs []error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	failed := map[string]job.ID{}
	for i, it := range batch {
		if !it.ordered || it.j.Group != "" {
			continue
		}
		if b, ok := u.blocks[it.j.Queue]; ok && it.j.ID > b.behind && !now.After(b.until) {
			failed[it.j.Queue] = b.behind // sent before the failure was known
		}
		if x, ok := failed[it.j.Queue]; ok {
			if errs[i] == nil {
				errs[i] = &heldBackError{behind: x}
			}
			continue
		}
		if errs[i] != nil && !errors.Is(errs[i], errTooLarge) { // a job too large goes dead
			failed[it.j.Queue] = it.j.ID
		}
	}
	for q, x := range failed {
		if b, ok := u.blocks[q]; ok && b.behind == x {
			continue
		}
		if u.blocks == nil {
			u.blocks = make(map[string]block)
		}
		u.blocks[q] = block{behind: x, until: now.Add(u.cfg.Timeout)}
	}
}
