package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// OnFull policies of a queue (QueueConfig.OnFull): what an enqueue that
// would take the queue over max_depth or max_bytes does.
const (
	// OnFullReject refuses the new jobs with job.ErrQueueFull (the default).
	OnFullReject = "reject"
	// OnFullEvictOldest deletes the queue's oldest waiting jobs to make
	// room, in the commit that stores the new ones.
	OnFullEvictOldest = "evict_oldest"
)

// Reasons a queue drops a job it accepted (SPEC 3's opt-in exception), as
// Event.Error of an EventEvicted and the metrics label them.
const (
	ReasonEvicted    = "evicted"     // made room under on_full evict_oldest
	ReasonExpiredAge = "expired_age" // waited longer than max_age
)

// EvictReasons are the reasons a job is dropped, in QueueStats.Evicted.
var EvictReasons = [...]string{ReasonEvicted, ReasonExpiredAge}

// evictLogEvery bounds the "jobs dropped" lines to one a minute per queue.
const evictLogEvery = time.Minute

// evictLog is what a queue dropped since its last "jobs dropped" line.
// Owned by the committer.
type evictLog struct {
	at time.Time
	n  [len(EvictReasons)]int
}

func (c *QueueConfig) bounded() bool { return c.MaxDepth > 0 || c.MaxBytes > 0 }

func (c *QueueConfig) evicts() bool { return c.OnFull == OnFullEvictOldest }

// over is how far jobs more jobs of bytes payload bytes would take q past
// its max_depth and max_bytes; each is at most 0 when within.
func (q *queue) over(jobs, bytes int64) (dj, db int64) {
	c := q.conf()
	if c.MaxDepth > 0 {
		dj = q.depth() + jobs - c.MaxDepth
	}
	if c.MaxBytes > 0 {
		db = q.bytes.Load() + bytes - c.MaxBytes
	}
	return dj, db
}

// full is the refusal of jobs more jobs of bytes payload bytes into q,
// naming the bound they cross; why says more when it is set.
func (q *queue) full(jobs, bytes int64, why string) error {
	c := q.conf()
	var err error
	if dj, _ := q.over(jobs, bytes); dj > 0 {
		err = fmt.Errorf("%w: queue %q holds %d jobs, max_depth is %d%s", job.ErrQueueFull, q.name, q.depth(), c.MaxDepth, why)
	} else {
		err = fmt.Errorf("%w: queue %q holds %d payload bytes, max_bytes is %d, the jobs add %d%s", job.ErrQueueFull, q.name, q.bytes.Load(), c.MaxBytes, bytes, why)
	}
	return job.Retry(err, time.Second)
}

// admitBounds is admission's early look at the bounds, before the ring:
// the committer decides (makeRoom), as their only writer.
func (q *queue) admitBounds(n int, bytes int64) error {
	c := q.conf()
	if !c.bounded() {
		return nil
	}
	if c.evicts() {
		if (c.MaxDepth > 0 && int64(n) > c.MaxDepth) || (c.MaxBytes > 0 && bytes > c.MaxBytes) {
			return q.full(int64(n), bytes, "; the jobs alone are over it")
		}
		return nil
	}
	if dj, db := q.over(int64(n), bytes); dj > 0 || db > 0 {
		return q.full(int64(n), bytes, "")
	}
	return nil
}

// makeRoom checks an enqueue of news into q against its bounds, in the
// committer, where depth and bytes are exact. It answers the jobs to evict
// first (on_full evict_oldest) or the refusal; a returned error is a store
// failure.
func (e *Engine) makeRoom(b *batch, q *queue, news []job.New) (victims []*job.Job, refusal error, err error) {
	c := q.conf()
	if !c.bounded() {
		return nil, nil, nil
	}
	jobs, bytes, err := adds(b, q, news)
	if err != nil {
		return nil, nil, err
	}
	dj, db := q.over(jobs, bytes)
	switch {
	case dj <= 0 && db <= 0:
		return nil, nil, nil
	case !c.evicts():
		return nil, q.full(jobs, bytes, ""), nil
	case (c.MaxDepth > 0 && jobs > c.MaxDepth) || (c.MaxBytes > 0 && bytes > c.MaxBytes):
		return nil, q.full(jobs, bytes, "; the jobs alone are over it"), nil
	}
	for try := 0; ; try++ {
		victims, ok, err := e.oldest(b, q, dj, db)
		if err != nil || ok {
			return victims, nil, err
		}
		if try > 0 || b.writes == 0 {
			return nil, q.full(jobs, bytes, "; leased jobs are never evicted"), nil
		}
		// Jobs this transaction wrote are not in the indexes it reads:
		// commit it and look again.
		if err := e.rotate(b); err != nil {
			return nil, nil, err
		}
	}
}

// adds is what enqueueing news adds to q: the jobs it creates (a duplicate
// of a dedupe key creates none) and their payload bytes.
func adds(b *batch, q *queue, news []job.New) (jobs, bytes int64, err error) {
	var keys map[string]bool
	for i := range news {
		n := &news[i]
		if n.Key != "" {
			if keys[n.Key] {
				continue
			}
			_, dup, err := b.txn.Dedupe(q.name, n.Key)
			if err != nil {
				return 0, 0, fmt.Errorf("dedupe: %w", err)
			}
			if dup {
				continue
			}
			if keys == nil {
				keys = make(map[string]bool)
			}
			keys[n.Key] = true
		}
		jobs++
		bytes += int64(len(n.Payload))
	}
	return jobs, bytes, nil
}

// oldest picks the waiting jobs of q to evict so that dj fewer jobs and db
// fewer bytes remain: ready jobs in the order they would be leased, then
// delayed ones by the time they fall due; never a leased one. ok is false
// when the waiting jobs it can see are not enough.
func (e *Engine) oldest(b *batch, q *queue, dj, db int64) (victims []*job.Job, ok bool, err error) {
	take := func(j *job.Job) bool {
		victims = append(victims, j)
		dj--
		db -= int64(j.Size)
		return dj <= 0 && db <= 0
	}
	err = e.readyHead(b, q, func(j *job.Job) (bool, error) { return !take(j), nil })
	if err != nil || dj <= 0 && db <= 0 {
		return victims, err == nil, err
	}
	from := store.Ref{}
	for q.delayed.Load() > 0 {
		refs, _, err := b.txn.Due(store.IndexDelayed, from, farFuture, maintenanceStep)
		if err != nil {
			return nil, false, fmt.Errorf("read delayed index: %w", err)
		}
		for _, r := range refs {
			from = r
			if r.Queue != q.name {
				continue
			}
			j, err := b.txn.Job(r.ID, false)
			if errors.Is(err, job.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, false, err
			}
			if j.State == job.StateDelayed && j.Queue == q.name && take(j) {
				return victims, true, nil
			}
		}
		if len(refs) < maintenanceStep {
			break
		}
	}
	return victims, false, nil
}

// readyHead calls fn on q's ready jobs in the order they would be leased
// (from its hot tail when that is complete, which holds the jobs this
// transaction made ready, else from the store's index), while fn answers
// true.
func (e *Engine) readyHead(b *batch, q *queue, fn func(*job.Job) (bool, error)) error {
	if q.hot.complete {
		for _, j := range q.hot.jobs[q.hot.head:] {
			if more, err := fn(j); !more || err != nil {
				return err
			}
		}
		return nil
	}
	after := q.cursor.Load()
	for q.ready.Load() > 0 {
		refs, err := b.txn.Ready(q.name, after, maintenanceStep)
		if err != nil {
			return fmt.Errorf("read ready index: %w", err)
		}
		for _, r := range refs {
			after = r.Seq
			j, err := b.txn.Job(r.ID, false)
			if errors.Is(err, job.ErrNotFound) {
				continue // deleted earlier in this transaction
			}
			if err != nil {
				return err
			}
			if j.State != job.StateReady || j.Queue != q.name {
				continue
			}
			if more, err := fn(j); !more || err != nil {
				return err
			}
		}
		if len(refs) < maintenanceStep {
			return nil
		}
	}
	return nil
}

// evict deletes the waiting job j of q, which it drops for reason (an
// EvictReasons index), and counts, announces and logs it.
func (e *Engine) evict(b *batch, q *queue, j *job.Job, reason int) error {
	if err := b.txn.Delete(j); err != nil {
		return fmt.Errorf("evict: %w", err)
	}
	if j.State == job.StateReady && j.ReadySeq > q.cursor.Load() {
		// Taken from the head: every ready entry before it is consumed.
		q.cursor.Store(j.ReadySeq)
	}
	e.left(b, q, j)
	b.wrote(q)
	q.evictedBy[reason].Add(1)
	b.event(Event{Kind: EventEvicted, Queue: q.name, ID: j.ID, Attempt: j.Attempt, Error: EvictReasons[reason], At: b.now})
	l := &q.evictLog
	l.n[reason]++
	if b.now.Sub(l.at) >= evictLogEvery {
		e.log.Warn("jobs dropped", "queue", q.name, ReasonEvicted, l.n[0], ReasonExpiredAge, l.n[1], "since", l.at)
		l.at, l.n = b.now, [len(EvictReasons)]int{}
	}
	return nil
}

// evictFor deletes the victims makeRoom chose for o's jobs, in the
// transaction that creates them. It reports false when they do not fit
// one transaction together.
func (e *Engine) evictFor(b *batch, q *queue, news []job.New, victims []*job.Job) (bool, error) {
	ok, err := e.fits(b, store.Op{Enqueue: news, Delete: victims})
	if err != nil || !ok {
		return false, err
	}
	for _, v := range victims {
		if err := e.evict(b, q, v, 0); err != nil {
			return false, err
		}
	}
	return true, nil
}

// dropAged drops, from the head of every queue with a max_age, the ready
// jobs enqueued longer than max_age ago, a bounded number per batch; a
// job behind a younger one waits until it reaches the head.
func (e *Engine) dropAged(b *batch) error {
	var next time.Time
	left := maintenanceStep
	for _, q := range e.agedQueues() {
		maxAge := q.conf().MaxAge
		cutoff := b.now.Add(-maxAge)
		var aged []*job.Job
		err := e.readyHead(b, q, func(j *job.Job) (bool, error) {
			if j.CreatedAt.After(cutoff) {
				next = earliest(next, j.CreatedAt.Add(maxAge))
				return false, nil
			}
			aged = append(aged, j)
			return len(aged) < left, nil
		})
		if err != nil {
			return err
		}
		for _, j := range aged {
			if err := e.stepFits(b, j); err != nil {
				return err
			}
			if err := e.evict(b, q, j, 1); err != nil {
				return err
			}
		}
		if left -= len(aged); left == 0 {
			next = b.now // more to do in the next batch
			break
		}
	}
	e.c.aged.next = earliest(next, e.c.aged.noted)
	e.c.aged.noted = time.Time{}
	return nil
}

// agedQueues lists the queues with a max_age and ready jobs.
func (e *Engine) agedQueues() []*queue {
	e.qmu.RLock()
	defer e.qmu.RUnlock()
	var qs []*queue
	for _, q := range e.queues {
		if q.conf().MaxAge > 0 && q.ready.Load() > 0 {
			qs = append(qs, q)
		}
	}
	return qs
}
