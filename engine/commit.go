package engine

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// committerState is owned by the committer goroutine (and by Start before the
// goroutine runs).
type committerState struct {
	seq    uint64 // job sequence high-water mark
	seqSet uint64 // the value last written with SetSeq
	leases *leaseTable
	// finished remembers the leases pull workers finished (Ack, Fail).
	finished *finishedLeases
	delayed  timedScan
	expiry   timedScan
	dirty    bool // committed but not synced (SyncInterval queues)
	// hotBytes is what every queue's hot tail holds (hot.go).
	hotBytes int
	synced   time.Time

	failLogged     time.Time // last "commit failed" line
	failSuppressed int       // failures since then that were not logged
}

// timedScan is the committer's position in a timed index. from is the last
// entry handled (seek starts after it: no tombstone walks); next is when the
// first unhandled entry falls due, zero when nothing is known to be waiting.
type timedScan struct {
	from  Ref
	next  time.Time
	noted time.Time // earliest entry added since the last scan: not in its snapshot
}

// note records that an entry for t was added.
func (s *timedScan) note(t time.Time) {
	if !s.from.At.IsZero() && !t.After(s.from.At) {
		s.from = Ref{} // added behind the cursor (a clock step, or an equal time)
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

// maxTxnPayload bounds the payload bytes one transaction holds before it is
// committed (large payloads cost the store only a pointer each in Room, but
// all of their bytes in memory until Commit).
const maxTxnPayload = 8 << 20

// recordEstimate bounds the encoded size of a job record's fixed fields.
const recordEstimate = 96

// inlineValueMax is the payload size up to which the store keeps a value in
// its LSM tree (and counts it against a transaction's size); larger payloads
// go to the value log and cost a pointer. storage's small profile uses it.
const inlineValueMax = 1024

// batch is one round of the committer: one or more transactions (a new one
// when the current is full), then at most one sync.
type batch struct {
	txn        Txn
	writes     int       // ops that wrote into txn
	payload    int       // payload bytes written into txn: the store holds them in memory until Commit
	now        time.Time // of the latest round of ops applied
	start      time.Time // of the first
	ops        []*op     // applied so far
	maintained bool      // maintenance ran in this batch
	needSync   bool
	wake       map[*queue]struct{}
	events     []Event
}

var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func (e *Engine) commitLoop() {
	defer close(e.doneCh)
	syncs := make(chan []*committed, 1)
	free := make(chan syncReport, 1) // the syncer's token: taken to hand it work, given back when done
	free <- syncReport{}
	e.syncCh, e.syncFree = syncs, free
	var syncer sync.WaitGroup
	syncer.Go(func() { e.syncLoop(syncs, free) })
	defer syncer.Wait()
	defer close(syncs)
	buf := make([]*op, e.cfg.MaxBatch)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	stopping := false
	for {
		if e.syncLost.Swap(false) {
			e.c.dirty = true
		}
		if len(e.pending) > 0 && e.takeToken(len(e.pending) >= maxPending) && (stopping || e.holdFor(time.Now()) == 0) {
			e.handPending()
		}
		room := e.cfg.MaxBatch
		if e.open != nil {
			room -= len(e.open.ops)
		}
		n := 0
		if room > 0 {
			n = e.ring.PopBatch(buf[:room])
		}
		now := e.clock.Now()
		e.beat.Store(now.UnixNano())
		if n > 0 || (!stopping && e.maintenanceDue(now) && (e.open == nil || !e.open.maintained)) {
			if e.open == nil {
				e.open = &batch{txn: e.store.Begin(), start: now}
			}
			e.open.now = now
			err := e.applyOps(e.open, buf[:n], !stopping && !e.open.maintained)
			clear(buf[:n])
			if err != nil {
				e.abandon(err)
				continue
			}
			// A batch grows while ops keep arriving; when they arrive so
			// steadily that the ring is never empty, it still goes to an
			// idle syncer once it has waited maxBatchWait.
			if now.Sub(e.open.start) >= maxBatchWait && e.takeToken(false) {
				if err := e.commitOpen(); err != nil {
					e.abandon(err)
					continue
				}
				e.handPending()
			}
			continue
		}
		// Nothing more to take now: commit what was applied (its writes go
		// to the store while the syncer may still be busy), and hand every
		// committed batch to the syncer as soon as it is free: one sync for
		// all of them.
		if e.open != nil {
			if err := e.commitOpen(); err != nil {
				e.abandon(err)
				continue
			}
		}
		if len(e.pending) > 0 {
			stop := e.commitStop
			if stopping {
				stop = nil
			}
			var back <-chan syncReport // the token, when the syncer still has it
			var hold <-chan time.Time
			if !e.tok.held {
				back = e.syncFree
			} else if d := e.holdFor(time.Now()); d > 0 && !stopping {
				timer.Reset(d)
				hold = timer.C
			} else {
				continue
			}
			select {
			case r := <-back:
				e.gotToken(r)
			case <-hold:
			case <-e.signal:
			case <-stop:
				stopping = true
			}
			timer.Stop()
			continue
		}
		if e.c.dirty && (stopping || !now.Before(e.c.synced.Add(e.cfg.SyncInterval))) {
			e.syncNow(now)
			continue
		}
		if stopping {
			e.flushSyncs() // a failed last sync was logged and its ops answered with the error
			return
		}
		timer.Reset(e.nextWake(now))
		select {
		case <-e.signal:
		case <-timer.C:
		case <-e.commitStop:
			stopping = true
		}
		timer.Stop()
	}
}

func (e *Engine) maintenanceDue(now time.Time) bool {
	if e.c.delayed.due(now) || e.c.expiry.due(now) {
		return true
	}
	t := e.c.leases.next()
	return !t.IsZero() && !t.After(now)
}

// nextWake is how long the committer may sleep when idle.
func (e *Engine) nextWake(now time.Time) time.Duration {
	wake := now.Add(time.Minute)
	for _, t := range []time.Time{e.c.delayed.next, e.c.expiry.next, e.c.leases.next()} {
		if !t.IsZero() && t.Before(wake) {
			wake = t
		}
	}
	if e.c.dirty {
		if t := e.c.synced.Add(e.cfg.SyncInterval); t.Before(wake) {
			wake = t
		}
	}
	return max(0, wake.Sub(now))
}

// syncNow has the syncer make everything committed so far durable (the
// SyncInterval queues' writes when their interval is up).
func (e *Engine) syncNow(now time.Time) {
	e.c.dirty, e.c.synced = false, now
	e.takeToken(true)
	e.hand([]*committed{{sync: true}})
}

// applyOps applies ops (and, when maintain, due maintenance) to the open
// batch b. While the syncer is busy, the committer applies what arrives and
// commits when nothing more is waiting; the syncer then syncs every batch
// committed meanwhile at once. So batches grow with the load, and an op that
// arrives at an idle engine is committed and synced at once.
func (e *Engine) applyOps(b *batch, ops []*op, maintain bool) error {
	for _, o := range ops {
		b.ops = append(b.ops, o)
		if err := e.apply(b, o); err != nil {
			return err
		}
	}
	if maintain {
		// Once per batch: index reads see the data committed before the
		// batch's transaction began, so a second scan in the same batch
		// would find nothing new (and what this batch added to a timed
		// index is noted for the next one).
		b.maintained = true
		return e.maintain(b)
	}
	return nil
}

// maxPending bounds the batches committed ahead of the syncer, so that due
// maintenance work cannot keep a commit from its sync; maxBatchWait bounds
// how long a batch keeps taking ops while the syncer is idle; maxHold
// bounds how long the committer keeps a free syncer waiting for the callers
// it just answered (holdFor).
const (
	maxPending   = 4
	maxBatchWait = 2 * time.Millisecond
	maxHold      = 2 * time.Millisecond
)

// commitOpen commits the open batch and queues it for the syncer.
func (e *Engine) commitOpen() error {
	b := e.open
	if err := e.commitTxn(b); err != nil {
		return err
	}
	e.open = nil
	doSync := b.needSync || (e.c.dirty && !b.now.Before(e.c.synced.Add(e.cfg.SyncInterval)))
	if doSync {
		e.c.dirty, e.c.synced = false, b.now
	} else if b.writes > 0 || len(b.ops) > 0 {
		e.c.dirty = true
	}
	e.pending = append(e.pending, &committed{b: b, sync: doSync})
	return nil
}

// handPending hands every committed batch to the syncer; the caller took
// its token.
func (e *Engine) handPending() {
	e.hand(e.pending)
	e.pending = nil
}

// abandon fails the open batch: its ops are answered with err once every
// batch committed before it is answered, and the state is rebuilt from the
// store, which holds whatever was committed.
func (e *Engine) abandon(err error) {
	b := e.open
	e.open = nil
	b.txn.Discard()
	if len(e.pending) > 0 {
		e.takeToken(true)
		e.handPending()
	}
	e.flushSyncs()
	e.commitFailed(b.ops, err)
}

// commitFailed answers every op of a failed batch with err and rebuilds the
// in-memory state from the store, which holds whatever was committed.
func (e *Engine) commitFailed(ops []*op, err error) {
	// A full or failing disk fails every batch: log the first failure, then
	// at most one line a minute with how many were not logged.
	if now := e.clock.Now(); now.Sub(e.c.failLogged) >= time.Minute {
		e.log.Error("commit failed", "ops", len(ops), "err", err, "failures_not_logged", e.c.failSuppressed)
		e.c.failLogged, e.c.failSuppressed = now, 0
	} else {
		e.c.failSuppressed++
	}
	e.failed.Store(&err)
	answer := failure("commit", err)
	// Rebuild first, so that a caller who reads stats after its error sees
	// the state the store holds.
	if rerr := e.load(); rerr != nil {
		e.log.Error("reload after failed commit", "err", rerr)
	}
	for _, o := range ops {
		o.err, o.results, o.jobs = answer, nil, nil
		o.answer()
	}
}

// commitTxn commits the current transaction with the sequence mark.
func (e *Engine) commitTxn(b *batch) error {
	if e.c.seq != e.c.seqSet {
		if err := b.txn.SetSeq(e.c.seq); err != nil {
			return fmt.Errorf("set seq: %w", err)
		}
	}
	if err := b.txn.Commit(); err != nil {
		return err
	}
	e.c.seqSet = e.c.seq
	return nil
}

// room makes sure entries writes of about bytes fit, committing the current
// transaction early and starting another when they do not. It reports false
// when they do not fit even an empty transaction.
func (e *Engine) room(b *batch, entries, bytes int) (bool, error) {
	if b.txn.Room(entries, bytes) {
		return true, nil
	}
	if b.writes == 0 {
		return false, nil
	}
	if err := e.rotate(b); err != nil {
		return false, err
	}
	return b.txn.Room(entries, bytes), nil
}

// rotate commits the current transaction early and starts another.
func (e *Engine) rotate(b *batch) error {
	if err := e.commitTxn(b); err != nil {
		return err
	}
	b.txn, b.writes, b.payload = e.store.Begin(), 0, 0
	return nil
}

// jobCost estimates the writes of one job state change.
func jobCost(j *job.Job) int {
	n := 256 + len(j.Key) + len(j.LastError) + len(j.ContentType) + len(j.Queue)
	for k, v := range j.Headers {
		n += len(k) + len(v) + 4
	}
	return n
}

// stepRoom is room for one state change of j; it never reports false (one
// job always fits an empty transaction).
func (e *Engine) stepRoom(b *batch, j *job.Job) error {
	_, err := e.room(b, 6, jobCost(j))
	return err
}

func (b *batch) wakeQueue(q *queue) {
	if b.wake == nil {
		b.wake = make(map[*queue]struct{})
	}
	b.wake[q] = struct{}{}
}

func (b *batch) wrote(q *queue) {
	b.writes++
	if q.conf().Sync == SyncAlways {
		b.needSync = true
	}
}

// apply runs one op. Refusals go to o.err with nothing written; a returned
// error is a store failure that fails the whole batch.
func (e *Engine) apply(b *batch, o *op) error {
	switch o.kind {
	case opEnqueue:
		return e.applyEnqueue(b, o)
	case opLease:
		return e.applyLease(b, o)
	case opAck, opNack, opFail, opExtend:
		return e.applyLeased(b, o)
	case opCancel:
		return e.applyCancel(b, o)
	case opPurge:
		return e.applyPurge(b, o)
	case opDeadRetry, opDeadPurge:
		return e.applyDead(b, o)
	case opMove:
		return e.applyMove(b, o)
	}
	return fmt.Errorf("unknown op kind %d", o.kind)
}

func (e *Engine) applyEnqueue(b *batch, o *op) error {
	// Each job writes its payload, record and state index entry, plus an
	// expiry entry with a deadline and a dedupe entry with a key. Values are
	// counted (the store adds its per-entry key overhead); a payload above
	// inlineValueMax costs the store a pointer, not its bytes.
	entries, bytes, payload := 0, 0, 0
	for i := range o.news {
		n := &o.news[i]
		payload += len(n.Payload)
		entries += 3
		bytes += recordEstimate + min(len(n.Payload), inlineValueMax) + len(n.Key) + len(n.ContentType) + 16
		if n.Key != "" {
			entries++
			bytes += len(n.Key) + 8
		}
		if !n.ExpiresAt.IsZero() {
			entries++
		}
		for k, v := range n.Headers {
			bytes += len(k) + len(v) + 4
		}
	}
	if b.writes > 0 && b.payload+payload > maxTxnPayload {
		if err := e.rotate(b); err != nil {
			return err
		}
	}
	ok, err := e.room(b, entries, bytes)
	if err != nil {
		return err
	}
	b.payload += payload
	if !ok {
		o.err = fmt.Errorf("%w: batch of %d jobs does not fit one transaction; split it", job.ErrTooLarge, len(o.news))
		return nil
	}
	q, err := e.adopt(o.q)
	if err != nil {
		o.err = err
		return nil
	}
	o.q = q
	now := b.now
	o.results = make([]job.Result, len(o.news))
	for i := range o.news {
		n := &o.news[i]
		if n.Key != "" {
			id, dup, err := b.txn.Dedupe(q.name, n.Key)
			if err != nil {
				return fmt.Errorf("dedupe: %w", err)
			}
			if dup {
				state := job.StateDone
				if j, err := b.txn.Job(id, false); err == nil {
					state = j.State
				} else if !errors.Is(err, job.ErrNotFound) {
					return err
				}
				o.results[i] = job.Result{ID: id, Queue: q.name, State: state, Duplicate: true}
				continue
			}
		}
		e.c.seq++
		j := &job.Job{
			ID:          job.ID(e.c.seq),
			Queue:       q.name,
			State:       job.StateReady,
			MaxAttempts: q.maxAttempts(*n),
			CreatedAt:   now,
			RunAt:       now,
			ExpiresAt:   n.ExpiresAt,
			TTR:         cmpOr(n.TTR, q.conf().TTR),
			Key:         n.Key,
			Headers:     n.Headers,
			ContentType: n.ContentType,
			Payload:     n.Payload,
			Size:        len(n.Payload),
		}
		if n.RunAt.After(now) {
			j.State, j.RunAt = job.StateDelayed, n.RunAt
		} else {
			j.ReadySeq = e.c.seq
		}
		if err := b.txn.Create(j); err != nil {
			return fmt.Errorf("create job: %w", err)
		}
		if n.Key != "" {
			if err := b.txn.PutDedupe(q.name, n.Key, j.ID, e.cfg.DedupeWindow); err != nil {
				return fmt.Errorf("put dedupe key: %w", err)
			}
		}
		e.entered(b, q, j)
		q.enqueued.Add(1)
		o.results[i] = job.Result{ID: j.ID, Queue: q.name, State: j.State}
	}
	q.in.add(now, len(o.news))
	b.wrote(q)
	return nil
}

func cmpOr(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

// entered accounts for j arriving in its state: counters, timed scans and
// wake-ups.
func (e *Engine) entered(b *batch, q *queue, j *job.Job) {
	switch j.State {
	case job.StateReady:
		q.ready.Add(1)
		e.hotAdd(q, j)
		b.wakeQueue(q)
	case job.StateDelayed:
		q.delayed.Add(1)
		e.c.delayed.note(j.RunAt)
	case job.StateLeased:
		q.leased.Add(1)
	case job.StateDead:
		q.dead.Add(1)
		q.deadTotal.Add(1)
		q.out.add(b.now, 1)
	}
	if !j.ExpiresAt.IsZero() && (j.State == job.StateReady || j.State == job.StateDelayed) {
		e.c.expiry.note(j.ExpiresAt)
	}
}

// left accounts for job id leaving state s.
func (e *Engine) left(q *queue, s job.State, id job.ID) {
	switch s {
	case job.StateReady:
		e.hotRemove(q, id)
		if q.ready.Add(-1) == 0 && !q.hot.complete {
			e.hotReset(q) // nothing ready: the (empty) tail is complete again
		}
	case job.StateDelayed:
		q.delayed.Add(-1)
	case job.StateLeased:
		q.leased.Add(-1)
	case job.StateDead:
		q.dead.Add(-1)
	}
}

// transition writes prev → next and keeps the accounts.
func (e *Engine) transition(b *batch, q *queue, prev, next *job.Job) error {
	if err := e.stepRoom(b, next); err != nil {
		return err
	}
	if err := b.txn.Update(prev, next); err != nil {
		return err // the store names the job
	}
	e.left(q, prev.State, prev.ID)
	e.entered(b, q, next)
	b.wrote(q)
	return nil
}

// toReady makes j ready now, at the back of its queue.
func (e *Engine) toReady(b *batch, q *queue, j *job.Job, runAt time.Time) *job.Job {
	e.c.seq++
	next := j.Clone()
	next.State, next.ReadySeq, next.RunAt = job.StateReady, e.c.seq, runAt
	next.LeaseID, next.LeaseExpires = "", time.Time{}
	return next
}

// toDead dead-letters j with reason.
func (e *Engine) toDead(b *batch, q *queue, j *job.Job, reason string) error {
	next := j.Clone()
	next.State, next.LastError = job.StateDead, reason
	next.LeaseID, next.LeaseExpires = "", time.Time{}
	b.event(Event{Kind: EventDead, Queue: q.name, ID: j.ID, Attempt: j.Attempt, Error: reason, At: b.now})
	return e.transition(b, q, j, next)
}

func (e *Engine) applyLease(b *batch, o *op) error {
	q := o.q
	if !e.dispatchable(q) {
		return nil
	}
	if q.hot.complete {
		// Every ready job after the cursor is in memory (hot.go).
		for len(o.jobs) < o.max {
			j, ok := e.hotTake(q)
			if !ok {
				return nil
			}
			q.cursor.Store(j.ReadySeq)
			if len(j.Payload) != j.Size {
				// Not kept with its payload (large, or it became ready
				// through a record read without it): the store has it.
				id := j.ID
				var err error
				if j, err = b.txn.Job(id, true); err != nil {
					return fmt.Errorf("lease: %w", err)
				}
			}
			if err := e.leaseOne(b, q, o, j); err != nil {
				return err
			}
		}
		return nil
	}
	for len(o.jobs) < o.max && q.ready.Load() > 0 {
		refs, err := b.txn.Ready(q.name, q.cursor.Load(), o.max-len(o.jobs))
		if err != nil {
			return fmt.Errorf("read ready index: %w", err)
		}
		if len(refs) == 0 {
			break
		}
		for _, ref := range refs {
			q.cursor.Store(ref.Seq)
			j, err := b.txn.Job(ref.ID, true)
			if errors.Is(err, job.ErrNotFound) {
				e.log.Error("ready index names a missing job", "queue", q.name, "id", ref.ID)
				continue
			}
			if err != nil {
				return fmt.Errorf("lease: %w", err)
			}
			if j.State != job.StateReady {
				continue
			}
			if err := e.leaseOne(b, q, o, j); err != nil {
				return err
			}
			if q.hot.complete {
				// The last ready job went: what becomes ready from here on
				// is kept in memory again.
				break
			}
		}
	}
	return nil
}

// leaseOne leases the ready job j for o, or dead-letters it when its
// deadline passed or its attempts are spent.
func (e *Engine) leaseOne(b *batch, q *queue, o *op, j *job.Job) error {
	if !j.ExpiresAt.IsZero() && !j.ExpiresAt.After(b.now) {
		return e.toDead(b, q, j, "expired")
	}
	if j.Attempt >= j.MaxAttempts {
		return e.toDead(b, q, j, exhausted(j))
	}
	next := j.Clone()
	next.State = job.StateLeased
	next.Attempt++
	next.LeaseID = newLeaseID()
	ttr := cmpOr(o.ttr, cmpOr(j.TTR, q.conf().TTR))
	next.LeaseExpires = b.now.Add(ttr)
	if err := e.transition(b, q, j, next); err != nil {
		return err
	}
	e.c.leases.put(j.ID, lease{queue: q, id: next.LeaseID, expires: next.LeaseExpires, attempt: next.Attempt, size: j.Size, ttr: ttr})
	o.jobs = append(o.jobs, next)
	if q.conf().Class <= job.ClassHigh {
		e.waitLat.add(b.now.Sub(j.RunAt), b.now)
	}
	return nil
}

func exhausted(j *job.Job) string {
	if j.LastError != "" {
		return j.LastError
	}
	return fmt.Sprintf("attempts exhausted (%d of %d)", j.Attempt, j.MaxAttempts)
}

// applyLeased runs ack, nack, fail and extend: each needs the caller to hold
// the job's current, unexpired lease.
func (e *Engine) applyLeased(b *batch, o *op) error {
	l, ok := e.c.leases.byJob[o.id]
	if !ok || l.id != o.lease || !l.expires.After(b.now) {
		if f, ok := e.c.finished.get(o.id); ok {
			if f.lease != o.lease || f.kind != o.kind {
				o.err = fmt.Errorf("job %s: %w", o.id, job.ErrLeaseLost)
				return nil
			}
			// A repeat of an answer that was lost: answered like the first
			// one, and only once the first one is durable.
			b.needSync = true
			if o.kind == opFail {
				o.state = job.StateDead
			}
			return nil
		}
		_, err := b.txn.Job(o.id, false)
		switch {
		case errors.Is(err, job.ErrNotFound):
			o.err = fmt.Errorf("job %s: %w", o.id, job.ErrNotFound)
		case err != nil:
			return err
		default:
			o.err = fmt.Errorf("job %s: %w", o.id, job.ErrLeaseLost)
		}
		return nil
	}
	q := l.queue
	if o.kind == opAck {
		if err := e.stepRoom(b, &job.Job{}); err != nil {
			return err
		}
		if err := b.txn.Delete(&job.Job{ID: o.id, Queue: q.name, State: job.StateLeased, Size: l.size}); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
		e.c.leases.remove(o.id)
		if o.pull {
			e.c.finished.add(o.id, o.lease, opAck)
		}
		e.left(q, job.StateLeased, o.id)
		q.completed.Add(1)
		q.out.add(b.now, 1)
		b.wrote(q)
		b.event(Event{Kind: EventDone, Queue: q.name, ID: o.id, Attempt: l.attempt, At: b.now})
		return nil
	}
	j, err := b.txn.Job(o.id, false)
	if err != nil {
		return fmt.Errorf("read leased job: %w", err)
	}
	switch o.kind {
	case opExtend:
		next := j.Clone()
		ttr := cmpOr(o.ttr, cmpOr(l.ttr, cmpOr(j.TTR, q.conf().TTR)))
		next.LeaseExpires = b.now.Add(ttr)
		if err := e.transition(b, q, j, next); err != nil {
			return err
		}
		e.c.leases.put(o.id, lease{queue: q, id: l.id, expires: next.LeaseExpires, attempt: l.attempt, size: l.size, ttr: ttr})
		o.at = next.LeaseExpires
		return nil
	case opFail:
		e.c.leases.remove(o.id)
		if o.pull {
			e.c.finished.add(o.id, o.lease, opFail)
		}
		o.state = job.StateDead
		return e.toDead(b, q, j, o.text)
	}
	// nack
	e.c.leases.remove(o.id)
	if j.Attempt >= j.MaxAttempts {
		o.state = job.StateDead
		return e.toDead(b, q, j, o.text)
	}
	delay := o.delay
	if delay == NackBackoff {
		delay = backoff(q.conf().Backoff, j.Attempt)
	}
	next := e.toReady(b, q, j, b.now.Add(delay))
	next.LastError = o.text
	if delay > 0 {
		next.State, next.ReadySeq = job.StateDelayed, 0
	}
	q.retried.Add(1)
	o.state = next.State
	b.event(Event{Kind: EventRetry, Queue: q.name, ID: j.ID, Attempt: j.Attempt, Error: o.text, At: b.now})
	return e.transition(b, q, j, next)
}

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
	if err := e.stepRoom(b, j); err != nil {
		return err
	}
	if err := b.txn.Delete(j); err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	e.left(q, j.State, j.ID)
	b.wrote(q)
	return nil
}

// internalQueue returns the queue of a stored job, creating its state when
// needed (a stored job's queue exists even under strict_queues).
func (e *Engine) internalQueue(name string) *queue {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	q := e.queues[name]
	if q == nil {
		q = newQueue(name, e.queueConfig(name), e.clock.Now())
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
		if err := e.stepRoom(b, j); err != nil {
			return err
		}
		if err := b.txn.Delete(j); err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		e.left(q, j.State, j.ID)
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
	from := Ref{}
	for o.n < o.max && q.delayed.Load() > 0 {
		refs, _, err := b.txn.Due(IndexDelayed, from, farFuture, maintenanceStep)
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
			if err := e.stepRoom(b, j); err != nil {
				return err
			}
			if err := b.txn.Delete(j); err != nil {
				return fmt.Errorf("purge dead: %w", err)
			}
			e.left(q, job.StateDead, j.ID)
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

// maintain promotes due delayed jobs, dead-letters jobs past their deadline
// and takes back expired leases, a bounded number of each per batch.
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
		err := e.scan(b, &e.c.delayed, IndexDelayed, func(q *queue, j *job.Job) error {
			if j.State != job.StateDelayed {
				return nil
			}
			return e.transition(b, q, j, e.toReady(b, q, j, j.RunAt))
		})
		if err != nil {
			return err
		}
	}
	if e.c.expiry.due(now) {
		err := e.scan(b, &e.c.expiry, IndexExpiry, func(q *queue, j *job.Job) error {
			if (j.State != job.StateReady && j.State != job.StateDelayed) || j.ExpiresAt.After(now) {
				return nil
			}
			return e.toDead(b, q, j, "expired")
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// scan runs fn on the due entries of a timed index, one step's worth.
func (e *Engine) scan(b *batch, s *timedScan, kind TimedIndex, fn func(*queue, *job.Job) error) error {
	refs, next, err := b.txn.Due(kind, s.from, b.now, maintenanceStep)
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
	if len(refs) == maintenanceStep {
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
	next := e.toReady(b, q, j, b.now)
	q.retried.Add(1)
	b.event(Event{Kind: EventRetry, Queue: q.name, ID: j.ID, Attempt: j.Attempt, Error: why, At: b.now})
	return e.transition(b, q, j, next)
}
