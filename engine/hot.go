package engine

import (
	"github.com/edgeq/edgeq/engine/job"
)

// hotBudget bounds the memory that all queues' hot tails hold together.
const hotBudget = 2 << 20

// hotPayloadMax is the largest payload a hot tail keeps; a larger job is
// kept without its payload, which is read from the store when leased.
const hotPayloadMax = 4 << 10

// hotTail is a queue's ready jobs after its cursor, in ReadySeq order, kept
// in memory while they fit in the engine's budget, so that a lease takes
// them without reading the store's ready index or the job's record: on a
// queue that keeps up, every job is leased from memory. It is complete when
// it holds every ready job of the queue after the cursor; it stops being
// complete when the budget runs out or a job cannot be kept, drops what it
// held, and is complete again (and empty) once the queue has no ready job.
// Then leases read the store, as they do for a backlog. Owned by the
// committer.
type hotTail struct {
	complete bool
	jobs     []*job.Job // as last written to the store; Payload nil when not kept
	head     int        // jobs[:head] are taken
	bytes    int
	taken    job.ID // the last job hotTake returned
}

// hotCost is what a kept job counts against the budget.
func hotCost(j *job.Job) int {
	n := 320 + len(j.Payload) + len(j.Key) + len(j.ContentType) + len(j.LastError)
	for k, v := range j.Headers {
		n += len(k) + len(v) + 32
	}
	return n
}

// hotAdd keeps j, which just became ready in q, when q's tail is complete.
func (e *Engine) hotAdd(q *queue, j *job.Job) {
	t := &q.hot
	if j.ID == t.taken {
		t.taken = 0 // ready again (a nack): it leaves ready through hotRemove
	}
	if !t.complete {
		return
	}
	if n := len(t.jobs); n > t.head && t.jobs[n-1].ReadySeq >= j.ReadySeq {
		e.hotDrop(q) // out of order: never expected; the store has it right
		return
	}
	k := j
	if len(j.Payload) > hotPayloadMax {
		k = j.Clone()
		k.Payload = nil
	} else if j.Payload != nil {
		// The caller's bytes may be reused once it is answered.
		k = j.Clone()
		k.Payload = append(make([]byte, 0, len(j.Payload)), j.Payload...)
	}
	c := hotCost(k)
	if e.c.hotBytes+c > hotBudget {
		e.hotDrop(q)
		return
	}
	if t.head > 0 && t.head == len(t.jobs) {
		clear(t.jobs)
		t.jobs, t.head = t.jobs[:0], 0
	}
	t.jobs = append(t.jobs, k)
	t.bytes += c
	e.c.hotBytes += c
}

// hotTake removes and returns q's oldest kept job; ok is false when the
// tail holds none.
func (e *Engine) hotTake(q *queue) (j *job.Job, ok bool) {
	t := &q.hot
	if t.head >= len(t.jobs) {
		return nil, false
	}
	j = t.jobs[t.head]
	t.jobs[t.head] = nil
	t.head++
	t.taken = j.ID
	c := hotCost(j)
	t.bytes -= c
	e.c.hotBytes -= c
	if t.head == len(t.jobs) {
		t.jobs, t.head = t.jobs[:0], 0
	}
	return j, true
}

// hotRemove forgets a kept job of q that stopped being ready some other way
// than hotTake (cancel, purge, move, a deadline).
func (e *Engine) hotRemove(q *queue, id job.ID) {
	t := &q.hot
	if id == t.taken {
		return // leaving ready by the lease that took it
	}
	for i := t.head; i < len(t.jobs); i++ {
		if t.jobs[i].ID == id {
			c := hotCost(t.jobs[i])
			t.bytes -= c
			e.c.hotBytes -= c
			if i == t.head {
				// The head (an eviction, an aged-out job): no copy.
				t.jobs[i] = nil
				t.head++
			} else {
				t.jobs = append(t.jobs[:i], t.jobs[i+1:]...)
			}
			return
		}
	}
}

// hotReplace puts j, a kept ready job of q whose payload was replaced,
// in place of its old copy.
func (e *Engine) hotReplace(q *queue, j *job.Job) {
	t := &q.hot
	for i := t.head; i < len(t.jobs); i++ {
		if t.jobs[i].ID != j.ID {
			continue
		}
		k := j.Clone()
		if len(j.Payload) > hotPayloadMax {
			k.Payload = nil
		} else if j.Payload != nil {
			k.Payload = append(make([]byte, 0, len(j.Payload)), j.Payload...)
		}
		d := hotCost(k) - hotCost(t.jobs[i])
		if e.c.hotBytes+d > hotBudget {
			e.hotDrop(q)
			return
		}
		t.jobs[i] = k
		t.bytes += d
		e.c.hotBytes += d
		return
	}
}

// hotDrop makes q's tail incomplete and releases what it held.
func (e *Engine) hotDrop(q *queue) {
	t := &q.hot
	e.c.hotBytes -= t.bytes
	*t = hotTail{taken: t.taken}
}

// hotReset restarts q's tail: complete and empty when q has no ready job,
// incomplete otherwise (after a load).
func (e *Engine) hotReset(q *queue) {
	e.hotDrop(q)
	q.hot.complete = q.ready.Load() == q.groups.ready.Load()
}
