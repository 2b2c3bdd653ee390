package engine

import (
	"fmt"
	"sync"
	"time"

	"github.com/edgeq/edgeq/engine/job"
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
	dirty    bool // committed but not synced (SyncInterval queues)
	// hotBytes is what every queue's hot tail holds (hot.go).
	hotBytes int
	synced   time.Time

	open     *batch            // applied, not yet committed
	pending  []*committed      // committed, not yet handed to the syncer
	tok      token             // whether the committer holds the syncer's token
	syncCh   chan []*committed // committer → syncer; set before anything is handed over
	syncFree chan syncReport   // the syncer's token and its report on the last group

	failLogged     time.Time // last "commit failed" line
	failSuppressed int       // failures since then that were not logged
}

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
		e.c.open = &batch{txn: e.store.Begin(), start: now}
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
