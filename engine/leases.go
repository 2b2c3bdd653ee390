package engine

import (
	"container/heap"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// lease is a held lease as the committer tracks it.
type lease struct {
	queue   *queue
	id      string
	expires time.Time
	attempt int
	size    int           // the job's payload size, for Txn.Delete at ack
	group   string        // the job's group, "" when none
	ttr     time.Duration // what extend without a ttr renews by: the lease's TTR, then the last one extend set
	// onSuccess: the job has a follow-up, which its ack enqueues.
	onSuccess bool
}

// leaseTable is the committer's set of held leases with a min-heap of their
// deadlines. Extending a lease pushes a new heap entry; stale entries are
// skipped when popped. Not safe for concurrent use: the committer owns it.
type leaseTable struct {
	byJob map[job.ID]lease
	h     leaseHeap
}

func newLeaseTable() *leaseTable { return &leaseTable{byJob: make(map[job.ID]lease)} }

func (t *leaseTable) put(id job.ID, l lease) {
	t.byJob[id] = l
	heap.Push(&t.h, leaseDeadline{id: id, lease: l.id, at: l.expires})
}

func (t *leaseTable) remove(id job.ID) { delete(t.byJob, id) }

// next is the earliest deadline still held, zero when none.
func (t *leaseTable) next() time.Time {
	for t.h.Len() > 0 {
		top := t.h[0]
		if l, ok := t.byJob[top.id]; ok && l.id == top.lease && l.expires.Equal(top.at) {
			return top.at
		}
		heap.Pop(&t.h)
	}
	return time.Time{}
}

// popExpired removes and returns one lease whose deadline is at or before now.
func (t *leaseTable) popExpired(now time.Time) (job.ID, lease, bool) {
	for t.h.Len() > 0 {
		top := t.h[0]
		l, ok := t.byJob[top.id]
		if !ok || l.id != top.lease || !l.expires.Equal(top.at) {
			heap.Pop(&t.h)
			continue
		}
		if top.at.After(now) {
			return 0, lease{}, false
		}
		heap.Pop(&t.h)
		delete(t.byJob, top.id)
		return top.id, l, true
	}
	return 0, lease{}, false
}

// finishedWindow is how many finished leases finishedLeases remembers.
const finishedWindow = 4096

// finishedLeases remembers the last finishedWindow leases that finished
// their job through Ack or Fail, so that a pull worker whose answer was
// lost can repeat it and get its answer again (SPEC §5) instead of a 404.
// It is memory only: a restart forgets it. Not safe for concurrent use:
// the committer owns it.
type finishedLeases struct {
	byJob map[job.ID]finishedLease
	ring  []finishedRef // oldest at next once full
	next  int
}

type finishedLease struct {
	lease string
	kind  opKind // opAck or opFail
}

type finishedRef struct {
	id    job.ID
	lease string
}

func newFinishedLeases() *finishedLeases {
	return &finishedLeases{byJob: make(map[job.ID]finishedLease)}
}

// add remembers that lease finished job id by kind, forgetting the oldest
// once the window is full.
func (f *finishedLeases) add(id job.ID, lease string, kind opKind) {
	ref := finishedRef{id: id, lease: lease}
	if len(f.ring) < finishedWindow {
		f.ring = append(f.ring, ref)
	} else {
		old := f.ring[f.next]
		// A job may finish again under a later lease (dead, retried,
		// leased again): forget only the entry that old names.
		if l, ok := f.byJob[old.id]; ok && l.lease == old.lease {
			delete(f.byJob, old.id)
		}
		f.ring[f.next] = ref
		f.next = (f.next + 1) % finishedWindow
	}
	f.byJob[id] = finishedLease{lease: lease, kind: kind}
}

// get answers how the job was finished, if it is remembered.
func (f *finishedLeases) get(id job.ID) (finishedLease, bool) {
	l, ok := f.byJob[id]
	return l, ok
}

type leaseDeadline struct {
	id    job.ID
	lease string
	at    time.Time
}

type leaseHeap []leaseDeadline

func (h leaseHeap) Len() int           { return len(h) }
func (h leaseHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h leaseHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *leaseHeap) Push(x any)        { *h = append(*h, x.(leaseDeadline)) }
func (h *leaseHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
