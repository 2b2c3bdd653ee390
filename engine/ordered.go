package engine

import "github.com/edgeq/edgeq/engine/job"

// Ordered queues (QueueConfig.Ordered) keep the order of their jobs
// without a group across retries, on the machinery of ordered groups: a
// retry keeps its ReadySeq (toRetry), so it goes back to its place in the
// ready index, and while it waits for its delay (delayed with its
// ReadySeq, holdsQueue) it holds the whole queue, as a retry holds its
// group's slot: no job without a group is leased until it is ready again,
// and then it comes first. The engine counts these retries per queue
// (queue.held), from the delayed index at start.

// holdsQueue reports whether j, delayed, is a retry waiting with its place
// in an ordered queue.
func holdsQueue(j *job.Job) bool {
	return j.State == job.StateDelayed && j.Group == "" && j.ReadySeq != 0
}

// placeReady moves q's ready cursor back before j, which became ready
// without a group, when j went back to a place behind it (a retry of an
// ordered queue): the ready index is read from the cursor.
func placeReady(q *queue, j *job.Job) {
	if j.ReadySeq <= q.cursor.Load() {
		q.cursor.Store(j.ReadySeq - 1)
	}
}

// heldBack reports whether a retry waiting holds q's jobs without a group.
func (q *queue) heldBack() bool { return q.held.Load() > 0 && q.conf().Ordered }

// runnable answers q's ready jobs that a lease may take now: not those of
// a blocked group, nor those without a group while a retry holds q.
func (q *queue) runnable() int64 {
	if q.heldBack() {
		return q.groups.ready.Load() - q.groups.blocked.Load()
	}
	return q.ready.Load() - q.groups.blocked.Load()
}
