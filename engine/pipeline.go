package engine

import (
	"sync"
	"time"
)

// committer is the state of the committer goroutine (commitLoop), the
// ring's only consumer: it alone reads and writes these fields (and Start,
// before the goroutine runs). The syncer reaches it only through syncCh and
// syncFree, which carry the token: the committer hands work over only while
// it holds the token, and the syncer gives it back with its report.
type committer struct {
	buf    []*op       // what one PopBatch takes from the ring
	timer  *time.Timer // ends the committer's waits
	seq    uint64      // job sequence high-water mark
	seqSet uint64      // the value last written with SetSeq
	leases *leaseTable
	// finished remembers the leases pull workers finished (Ack, Fail).
	finished *finishedLeases
	delayed  timedScan
	expiry   timedScan
	aged     timedScan // when the head of a queue with a max_age ages out (bound.go)
	done     timedScan // retained done jobs, by the end of their retention
	dirty    bool      // committed but not synced (SyncInterval queues)
	// hotBytes is what every queue's hot tail holds (hot.go).
	hotBytes int
	txns     uint64 // transactions begun (batch.gen)
	synced   time.Time

	open     *batch            // applied, not yet committed
	pending  []*committed      // committed, not yet handed to the syncer
	tok      token             // whether the committer holds the syncer's token
	syncCh   chan []*committed // committer → syncer; set before anything is handed over
	syncFree chan syncReport   // the syncer's token and its report on the last group

	failLogged     time.Time // last "commit failed" line
	failSuppressed int       // failures since then that were not logged
}

// commitLoop is the committer goroutine: it applies the ops it takes from
// the ring to the open batch, commits the batch when nothing more is
// waiting, and hands committed batches to the syncer, which it starts and
// stops. It exits once Stop closed commitStop and the ring is drained.
func (e *Engine) commitLoop() {
	defer close(e.doneCh)
	syncs := make(chan []*committed, 1)
	free := make(chan syncReport, 1) // the syncer's token: taken to hand it work, given back when done
	free <- syncReport{}
	e.c.syncCh, e.c.syncFree = syncs, free
	var syncer sync.WaitGroup
	syncer.Go(func() { e.syncLoop(syncs, free) })
	defer syncer.Wait()
	defer close(syncs)
	e.c.buf = make([]*op, e.cfg.MaxBatch)
	e.c.timer = time.NewTimer(time.Hour)
	defer e.c.timer.Stop()
	stopping := false
	for {
		if e.syncLost.Swap(false) {
			e.c.dirty = true
		}
		if len(e.c.pending) > 0 && e.takeToken(len(e.c.pending) >= maxPending) && (stopping || e.holdFor(time.Now()) == 0) {
			e.handPending()
		}
		now, busy := e.takeOps(stopping)
		if busy {
			continue
		}
		// Nothing more to take now: commit what was applied (its writes go
		// to the store while the syncer may still be busy), and hand every
		// committed batch to the syncer as soon as it is free: one sync for
		// all of them.
		if e.c.open != nil {
			if err := e.commitOpen(); err != nil {
				e.abandon(err)
				continue
			}
		}
		if len(e.c.pending) > 0 {
			stopping = e.awaitSyncer(stopping)
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
		stopping = e.sleep(e.nextWake(now))
	}
}

// takeOps applies what the ring holds (and due maintenance) to the open
// batch, and commits the batch early when it has waited long enough for an
// idle syncer. It reports the time of the round and whether it did anything.
func (e *Engine) takeOps(stopping bool) (now time.Time, busy bool) {
	room := e.cfg.MaxBatch
	if e.c.open != nil {
		room -= len(e.c.open.ops)
	}
	n := 0
	if room > 0 {
		n = e.ring.PopBatch(e.c.buf[:room])
	}
	now = time.Now()
	e.beat.Store(now.UnixNano())
	if n == 0 && (stopping || !e.maintenanceDue(now) || (e.c.open != nil && e.c.open.maintained)) {
		return now, false
	}
	if e.c.open == nil {
		e.c.open = &batch{txn: e.store.Begin(), gen: e.c.nextTxn(), start: now}
	}
	e.c.open.now = now
	err := e.applyOps(e.c.open, e.c.buf[:n], !stopping && !e.c.open.maintained)
	clear(e.c.buf[:n])
	if err != nil {
		e.abandon(err)
		return now, true
	}
	// A batch grows while ops keep arriving; when they arrive so steadily
	// that the ring is never empty, it still goes to an idle syncer once it
	// has waited maxBatchWait.
	if now.Sub(e.c.open.start) >= maxBatchWait && e.takeToken(false) {
		if err := e.commitOpen(); err != nil {
			e.abandon(err)
			return now, true
		}
		e.handPending()
	}
	return now, true
}

// awaitSyncer waits, with batches pending, for the syncer's token or for
// the end of holdFor, or for a new op. It reports whether the engine is
// stopping.
func (e *Engine) awaitSyncer(stopping bool) bool {
	stop := e.commitStop
	if stopping {
		stop = nil
	}
	var back <-chan syncReport // the token, when the syncer still has it
	var hold <-chan time.Time
	if !e.c.tok.held {
		back = e.c.syncFree
	} else if d := e.holdFor(time.Now()); d > 0 && !stopping {
		e.c.timer.Reset(d)
		hold = e.c.timer.C
	} else {
		return stopping
	}
	defer e.c.timer.Stop()
	select {
	case r := <-back:
		e.gotToken(r)
	case <-hold:
	case <-e.signal:
	case <-stop:
		return true
	}
	return stopping
}

// sleep waits, idle, for d, a new op or Stop. It reports whether the
// engine is stopping.
func (e *Engine) sleep(d time.Duration) bool {
	e.c.timer.Reset(d)
	defer e.c.timer.Stop()
	select {
	case <-e.signal:
	case <-e.c.timer.C:
	case <-e.commitStop:
		return true
	}
	return false
}

// nextWake is how long the committer may sleep when idle.
func (e *Engine) nextWake(now time.Time) time.Duration {
	wake := now.Add(time.Minute)
	for _, t := range []time.Time{e.c.delayed.next, e.c.expiry.next, e.c.aged.next, e.c.done.next, e.c.leases.next()} {
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
// it just answered (holdFor), which is otherwise as long as the last sync
// took: a slow card (an SD card's sync takes 5 to 50 ms) gets the time its
// callers need to come back, a fast disk's hold stays under a millisecond.
const (
	maxPending   = 4
	maxBatchWait = 2 * time.Millisecond
	maxHold      = 20 * time.Millisecond
)

// commitOpen commits the open batch and queues it for the syncer.
func (e *Engine) commitOpen() error {
	b := e.c.open
	if err := e.commitTxn(b); err != nil {
		return err
	}
	e.c.open = nil
	doSync := b.needSync || (e.c.dirty && !b.now.Before(e.c.synced.Add(e.cfg.SyncInterval)))
	if doSync {
		e.c.dirty, e.c.synced = false, b.now
	} else if b.writes > 0 || len(b.ops) > 0 {
		e.c.dirty = true
	}
	e.c.pending = append(e.c.pending, &committed{b: b, sync: doSync})
	return nil
}

// handPending hands every committed batch to the syncer; the caller took
// its token.
func (e *Engine) handPending() {
	e.hand(e.c.pending)
	e.c.pending = nil
}

// abandon fails the open batch: its ops are answered with err once every
// batch committed before it is answered, and the state is rebuilt from the
// store, which holds whatever was committed.
func (e *Engine) abandon(err error) {
	b := e.c.open
	e.c.open = nil
	b.txn.Discard()
	if len(e.c.pending) > 0 {
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
	if now := time.Now(); now.Sub(e.c.failLogged) >= time.Minute {
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

// flushSyncs waits until the syncer has finished everything handed to it.
func (e *Engine) flushSyncs() {
	done := make(chan struct{})
	e.takeToken(true)
	e.hand([]*committed{{flush: done}})
	<-done
}
