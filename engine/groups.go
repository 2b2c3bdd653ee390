package engine

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// groupSet is a queue's ordered groups: the jobs that carry a Group run in
// their group's ReadySeq order, at most the queue's GroupConcurrency of a
// group at once (leased, or waiting to retry: a retry keeps its ReadySeq,
// its place, and holds its slot until it runs again). The store keeps a
// group's ready jobs in its group-ready index, by (group, ReadySeq); the
// engine keeps, per group with work, its counts, its position in that
// index and the entries added in the open transaction (index reads see
// committed data only), and a FIFO of the groups that may take a lease now
// (runnable), so a lease pops a group, reads its head and never looks at a
// blocked group: O(1) in the number of groups. A queue without groups pays one atomic load
// per lease (ready). engine/doc.go has the rules.
//
// The committer is the only writer; it writes under mu, so that stats read
// under mu. ready and blocked are atomics for the scheduler.
type groupSet struct {
	mu     sync.Mutex
	byName map[string]*group // groups with work: ready, leased or waiting to retry
	fifo   []*group          // runnable groups, in turn; fifo[:head] are taken
	head   int
	limit  int // the group concurrency the groups' blocked counts were computed with

	ready   atomic.Int64 // ready jobs with a group (part of queue.ready)
	blocked atomic.Int64 // of those, the ones no lease may take now
}

// group is one group with work. Owned by the committer (written under
// groupSet.mu).
type group struct {
	name    string
	ready   int       // ready jobs
	busy    int       // leased jobs and retries waiting (delayed with their place)
	cursor  uint64    // ReadySeq of the last entry consumed: reads start after it
	queued  bool      // in fifo
	blocked int       // its part of groupSet.blocked
	headAt  time.Time // RunAt of its oldest ready job (as last seen)
	// fresh are the ready entries added in transaction freshTxn: index
	// reads see committed data only (store.Txn), so a lease in that
	// transaction finds them here.
	freshTxn uint64
	fresh    []store.Ref
}

// groupLimit is q's group concurrency: 1 (strict FIFO) unless configured.
func groupLimit(q *queue) int { return max(1, q.conf().GroupConcurrency) }

// holdsSlot reports whether j, in its state, takes one of its group's
// slots: leased, or a retry waiting with its place (delayed, ReadySeq set).
func holdsSlot(j *job.Job) bool {
	return j.State == job.StateLeased || (j.State == job.StateDelayed && j.ReadySeq != 0)
}

// groupEnter accounts for j, which has a group, arriving in its state.
func (e *Engine) groupEnter(b *batch, q *queue, j *job.Job) {
	if j.State != job.StateReady && !holdsSlot(j) {
		return
	}
	gs := &q.groups
	gs.mu.Lock()
	defer gs.mu.Unlock()
	gs.relimitLocked(b, q)
	g := gs.byName[j.Group]
	if g == nil {
		if gs.byName == nil {
			gs.byName = make(map[string]*group)
		}
		g = &group{name: j.Group}
		gs.byName[j.Group] = g
	}
	if j.State == job.StateReady {
		if g.ready == 0 || j.RunAt.Before(g.headAt) {
			g.headAt = j.RunAt
		}
		g.ready++
		gs.ready.Add(1)
		if b.gen != 0 { // 0: load, where the index lists every entry
			if g.freshTxn != b.gen {
				clear(g.fresh)
				g.fresh, g.freshTxn = g.fresh[:0], b.gen
			}
			g.fresh = append(g.fresh, store.Ref{ID: j.ID, Seq: j.ReadySeq, At: j.RunAt})
		}
		if j.ReadySeq <= g.cursor {
			g.cursor = j.ReadySeq - 1 // a retry back at its place, behind the cursor
		}
	} else {
		g.busy++
	}
	gs.settleLocked(b, q, g)
}

// groupLeave accounts for j, which has a group, leaving its state.
func (e *Engine) groupLeave(b *batch, q *queue, j *job.Job) {
	if j.State != job.StateReady && !holdsSlot(j) {
		return
	}
	gs := &q.groups
	gs.mu.Lock()
	defer gs.mu.Unlock()
	gs.relimitLocked(b, q)
	g := gs.byName[j.Group]
	if g == nil {
		e.log.Error("job leaves a group the engine does not know", "queue", q.name, "group", j.Group, "id", j.ID)
		return
	}
	if j.State == job.StateReady {
		g.ready--
		gs.ready.Add(-1)
	} else {
		g.busy--
	}
	gs.settleLocked(b, q, g)
}

// settleLocked updates what g's counts decide: its blocked jobs, whether it
// has work, whether it is runnable (then queued, and the queue's waiters
// woken). b is nil at load.
func (gs *groupSet) settleLocked(b *batch, q *queue, g *group) {
	n := gs.limit
	free := max(0, n-g.busy)
	blocked := g.ready - min(g.ready, free)
	gs.blocked.Add(int64(blocked - g.blocked))
	g.blocked = blocked
	if g.ready == 0 && g.busy == 0 {
		delete(gs.byName, g.name) // a queued g is dropped when popped
		return
	}
	if g.queued || g.ready == 0 || g.busy >= n {
		return
	}
	g.queued = true
	gs.fifo = append(gs.fifo, g)
	b.wakeQueue(q)
}

// popLocked takes the next group in turn, nil when none.
func (gs *groupSet) popLocked() *group {
	if gs.head == len(gs.fifo) {
		return nil
	}
	g := gs.fifo[gs.head]
	gs.fifo[gs.head] = nil
	gs.head++
	if gs.head == len(gs.fifo) {
		gs.fifo, gs.head = gs.fifo[:0], 0
	} else if gs.head >= 1024 && gs.head*2 >= len(gs.fifo) {
		gs.fifo = append(gs.fifo[:0], gs.fifo[gs.head:]...)
		gs.head = 0
	}
	g.queued = false
	return g
}

// relimitLocked recomputes every group when q's group concurrency changed
// (a reload): O(groups), once per change.
func (gs *groupSet) relimitLocked(b *batch, q *queue) {
	n := groupLimit(q)
	if gs.limit == n {
		return
	}
	gs.limit = n
	for _, g := range gs.byName {
		gs.settleLocked(b, q, g)
	}
}

// leaseGrouped leases (or dead-letters) the head of the next runnable group
// of q for o. It reports whether it did either.
func (e *Engine) leaseGrouped(b *batch, q *queue, o *op) (bool, error) {
	gs := &q.groups
	gs.mu.Lock()
	gs.relimitLocked(b, q)
	gs.mu.Unlock()
	for {
		gs.mu.Lock()
		g := gs.popLocked()
		gs.mu.Unlock()
		if g == nil {
			return false, nil
		}
		if gs.byName[g.name] != g || g.ready == 0 || g.busy >= gs.limit {
			continue // no longer runnable: settle queues it again when it is
		}
		refs, err := b.txn.GroupReady(q.name, store.Ref{Group: g.name, Seq: g.cursor}, 2)
		if err != nil {
			return false, fmt.Errorf("read group-ready index: %w", err)
		}
		for i, r := range refs {
			if r.Group != g.name {
				refs = refs[:i]
				break
			}
		}
		// The head: the first committed entry, or one added in this
		// transaction before it.
		var head store.Ref
		if len(refs) > 0 {
			head = refs[0]
		}
		if g.freshTxn == b.gen {
			for _, f := range g.fresh {
				if f.Seq > g.cursor && (head.ID == 0 || f.Seq < head.Seq) {
					head = f
				}
			}
		}
		if head.ID == 0 {
			e.log.Error("group has ready jobs the group-ready index does not list", "queue", q.name, "group", g.name, "ready", g.ready)
			continue
		}
		g.cursor = head.Seq
		j, err := b.txn.Job(head.ID, true)
		if errors.Is(err, job.ErrNotFound) {
			e.log.Error("group-ready index names a missing job", "queue", q.name, "id", head.ID)
			err = nil
		}
		if err != nil {
			return false, fmt.Errorf("lease: %w", err)
		}
		if j == nil || j.State != job.StateReady || j.Group != g.name {
			// Changed earlier in this transaction; the cursor is past it.
			gs.mu.Lock()
			gs.settleLocked(b, q, g)
			gs.mu.Unlock()
			continue
		}
		gs.mu.Lock()
		if len(refs) > 1 && refs[0].Seq == head.Seq {
			g.headAt = refs[1].At
		} else {
			g.headAt = b.now
		}
		gs.mu.Unlock()
		return true, e.leaseOne(b, q, o, j)
	}
}

// resetGroups forgets q's groups (load rebuilds them).
func (q *queue) resetGroups() {
	q.held.Store(0)
	gs := &q.groups
	gs.mu.Lock()
	gs.byName, gs.fifo, gs.head = nil, nil, 0
	gs.limit = groupLimit(q)
	gs.ready.Store(0)
	gs.blocked.Store(0)
	gs.mu.Unlock()
}

// reloadGroups forgets every queue's groups and rebuilds them from
// committed data (load).
func (e *Engine) reloadGroups(held []*job.Job) error {
	e.qmu.RLock()
	for _, q := range e.queues {
		q.resetGroups()
	}
	e.qmu.RUnlock()
	return e.store.View(func(tx store.ReadTx) error { return e.loadGroups(tx, held) })
}

// loadGroups rebuilds the groups of every queue from committed data: the
// group-ready index, the retries waiting (delayed entries with a group and
// a ReadySeq) and the held leases. It reads index entries, never records.
func (e *Engine) loadGroups(tx store.ReadTx, held []*job.Job) error {
	b := &batch{} // gen 0: no transaction; nothing is fresh
	enter := func(r store.Ref, st job.State) {
		q := e.internalQueue(r.Queue)
		e.groupEnter(b, q, &job.Job{ID: r.ID, Queue: r.Queue, Group: r.Group, State: st, ReadySeq: r.Seq, RunAt: r.At})
	}
	e.qmu.RLock()
	qs := make([]*queue, 0, len(e.queues))
	for _, q := range e.queues {
		qs = append(qs, q)
	}
	e.qmu.RUnlock()
	for _, q := range qs {
		from := store.Ref{}
		for {
			refs, err := tx.GroupReady(q.name, from, 1000)
			if err != nil {
				return fmt.Errorf("list group-ready jobs: %w", err)
			}
			for _, r := range refs {
				enter(r, job.StateReady)
				from = r
			}
			if len(refs) < 1000 {
				break
			}
		}
	}
	from := store.Ref{}
	for {
		refs, _, err := tx.Due(store.IndexDelayed, from, farFuture, 1000)
		if err != nil {
			return fmt.Errorf("list delayed jobs: %w", err)
		}
		for _, r := range refs {
			switch {
			case r.Seq == 0:
			case r.Group != "":
				enter(r, job.StateDelayed)
			default: // a retry waiting in an ordered queue
				e.internalQueue(r.Queue).held.Add(1)
			}
			from = r
		}
		if len(refs) < 1000 {
			break
		}
	}
	for _, j := range held {
		if j.Group != "" {
			e.groupEnter(b, e.internalQueue(j.Queue), j)
		}
	}
	return nil
}

// groupStats answers q's groups with work and its oldest group: the one
// whose head has been ready longest ("" when no group has a ready job).
func (q *queue) groupStats() (groups int, oldest string, headAt time.Time) {
	gs := &q.groups
	gs.mu.Lock()
	defer gs.mu.Unlock()
	for _, g := range gs.byName {
		if g.ready > 0 && (oldest == "" || g.headAt.Before(headAt) || (g.headAt.Equal(headAt) && g.name < oldest)) {
			oldest, headAt = g.name, g.headAt
		}
	}
	return len(gs.byName), oldest, headAt
}

// toRetry makes j ready again after a lease or a retry's delay: a job with
// a group goes back to its place in its group (its ReadySeq), one of an
// ordered queue to its place in the queue (ordered.go), any other to the
// back of its queue.
func (e *Engine) toRetry(b *batch, q *queue, j *job.Job, runAt time.Time) *job.Job {
	if j.ReadySeq == 0 || (j.Group == "" && !q.conf().Ordered) {
		return e.toReady(b, q, j, runAt)
	}
	next := j.Clone()
	next.State, next.RunAt = job.StateReady, runAt
	next.LeaseID, next.LeaseExpires = "", time.Time{}
	return next
}
