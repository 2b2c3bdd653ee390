package engine

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// queue is the in-memory state of one queue. Counters are atomics so that
// stats and admission read them without locks; the committer goroutine is
// their only writer, except rejected (written by Refused).
type queue struct {
	name string
	cfg  atomic.Pointer[QueueConfig] // resolved against the engine defaults; replaced whole by Reconfigure

	ready, delayed, leased, dead, done atomic.Int64
	bytes                              atomic.Int64 // payload bytes of the ready, delayed and leased jobs
	// bytesUnknown: the queue held jobs at the last start, when no
	// max_bytes asked for their bytes to be counted (recover.go); bytes
	// then holds only the changes since.
	bytesUnknown atomic.Bool

	enqueued, completed, retried, deadTotal, rejected atomic.Uint64
	rejectedBy                                        [len(RejectReasons)]atomic.Uint64
	evictedBy                                         [len(EvictReasons)]atomic.Uint64
	evictLog                                          evictLog // owned by the committer

	live     atomic.Bool // registered in Engine.queues (adopt)
	paused   atomic.Bool
	alerting atomic.Bool   // backlog alert raised
	alerts   atomic.Uint64 // backlog alerts raised so far
	// cursor is the ReadySeq of the last ready entry consumed: the committer
	// seeks from it so that it never walks the tombstones of consumed
	// entries. Written only by the committer; read atomically by stats.
	cursor atomic.Uint64

	bucket atomic.Pointer[tokenBucket] // nil: no rate limit

	hot    hotTail  // owned by the committer (hot.go)
	groups groupSet // ordered groups (groups.go)
	// held counts the retries waiting with their place (delayed, no
	// group, ReadySeq kept: ordered.go); while an ordered queue has one,
	// its jobs without a group are not leased. Written by the committer.
	held atomic.Int64

	in, out rateWindow

	mu     sync.Mutex
	wakeCh chan struct{} // guarded by mu; closed and replaced when jobs become ready
}

// pauseAt is the level from which dispatch of q is paused (SPEC 8).
func (q *queue) pauseAt() job.Level {
	if q.conf().ShedAt != "" {
		return shedLevel(q.conf().ShedAt)
	}
	switch q.conf().Class {
	case job.ClassCritical:
		return levelNever
	case job.ClassBulk:
		return job.LevelElevated
	case job.ClassLow:
		return job.LevelHigh
	}
	return job.LevelCritical
}

// refuseAt is the level from which new jobs of q are refused with ErrShed.
func (q *queue) refuseAt() job.Level {
	if q.conf().ShedAt != "" {
		return shedLevel(q.conf().ShedAt)
	}
	switch q.conf().Class {
	case job.ClassCritical:
		return levelNever
	case job.ClassBulk, job.ClassLow:
		return job.LevelHigh
	}
	return job.LevelCritical
}

func shedLevel(s string) job.Level {
	if l, err := job.ParseLevel(s); err == nil {
		return l
	}
	return levelNever
}

func newQueue(name string, cfg QueueConfig, now time.Time) *queue {
	q := &queue{name: name, wakeCh: make(chan struct{}), hot: hotTail{complete: true}}
	q.setConf(cfg, now)
	return q
}

// conf is the queue's current configuration.
func (q *queue) conf() *QueueConfig { return q.cfg.Load() }

// setConf replaces the configuration; the rate bucket is rebuilt only when
// the rate changed, so a reload does not hand out a fresh burst.
func (q *queue) setConf(cfg QueueConfig, now time.Time) {
	old := q.cfg.Swap(&cfg)
	if old != nil && old.Rate == cfg.Rate && old.Burst == cfg.Burst {
		return
	}
	if cfg.Rate <= 0 {
		q.bucket.Store(nil)
		return
	}
	burst := cfg.Burst
	if burst <= 0 {
		burst = max(1, int(math.Ceil(cfg.Rate)))
	}
	q.bucket.Store(newTokenBucket(cfg.Rate, burst, now))
}

// waitReady returns a channel closed when jobs next become ready.
func (q *queue) waitReady() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.wakeCh
}

// wake wakes every waitReady caller.
func (q *queue) wake() {
	q.mu.Lock()
	close(q.wakeCh)
	q.wakeCh = make(chan struct{})
	q.mu.Unlock()
}

func (q *queue) depth() int64 { return q.ready.Load() + q.delayed.Load() + q.leased.Load() }

// tokenBucket is a token bucket. Safe for concurrent use.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64   // guarded by mu
	last   time.Time // guarded by mu
}

func newTokenBucket(rate float64, burst int, now time.Time) *tokenBucket {
	return &tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// take removes n tokens, or none and says how long until n are there.
func (b *tokenBucket) take(n int, now time.Time) (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(b.burst, b.tokens+dt*b.rate)
		b.last = now
	}
	need := float64(n)
	if b.tokens >= need {
		b.tokens -= need
		return true, 0
	}
	if need > b.burst {
		// Never satisfiable at once: say when a full bucket is there.
		need = b.burst
	}
	return false, time.Duration((need - b.tokens) / b.rate * float64(time.Second))
}

// rateWindow counts events per second over the last minute. Safe for
// concurrent use.
type rateWindow struct {
	mu     sync.Mutex
	counts [60]uint64 // guarded by mu; slot = unix second % 60
	secs   [60]int64  // guarded by mu; the second each slot holds
}

func (w *rateWindow) add(now time.Time, n int) {
	s := now.Unix()
	i := s % 60
	w.mu.Lock()
	if w.secs[i] != s {
		w.secs[i], w.counts[i] = s, 0
	}
	w.counts[i] += uint64(n)
	w.mu.Unlock()
}

// perSecond is the mean rate over the last 60 whole seconds.
func (w *rateWindow) perSecond(now time.Time) float64 {
	s := now.Unix()
	var sum uint64
	w.mu.Lock()
	for i := range w.counts {
		if age := s - w.secs[i]; age >= 0 && age < 60 {
			sum += w.counts[i]
		}
	}
	w.mu.Unlock()
	return float64(sum) / 60
}

// stats snapshots the queue. head is the RunAt of the oldest ready job, zero if none.
func (q *queue) stats(now time.Time, head time.Time) QueueStats {
	s := QueueStats{
		Name:           q.name,
		Class:          q.conf().Class,
		Paused:         q.paused.Load(),
		Ready:          q.ready.Load(),
		Delayed:        q.delayed.Load(),
		Leased:         q.leased.Load(),
		Dead:           q.dead.Load(),
		Bytes:          q.bytes.Load(),
		BytesUnknown:   q.bytesUnknown.Load(),
		Done:           q.done.Load(),
		EnqueuedTotal:  q.enqueued.Load(),
		CompletedTotal: q.completed.Load(),
		RetriedTotal:   q.retried.Load(),
		DeadTotal:      q.deadTotal.Load(),
		RejectedTotal:  q.rejected.Load(),
		Rejected:       q.rejectedByReason(),
		Evicted:        q.evictedByReason(),
		Alerting:       q.alerting.Load(),
		AlertsTotal:    q.alerts.Load(),
		Concurrency:    q.conf().Concurrency,
		InRate:         q.in.perSecond(now),
		OutRate:        q.out.perSecond(now),
	}
	s.GroupConcurrency = groupLimit(q)
	var groupHead time.Time
	s.Groups, s.OldestGroup, groupHead = q.groupStats()
	if s.OldestGroup != "" {
		s.OldestGroupAge = max(0, now.Sub(groupHead))
	}
	if !head.IsZero() && s.Ready > 0 {
		s.OldestReadyAge = max(0, now.Sub(head))
	}
	backlog := s.Ready + s.Delayed + s.Leased
	if net := s.OutRate - s.InRate; net > 0 && backlog > 0 {
		eta := time.Duration(float64(backlog) / net * float64(time.Second))
		s.DrainETA = &eta
	} else if backlog == 0 {
		var zero time.Duration
		s.DrainETA = &zero
	}
	return s
}

// maxAttempts is a new job's attempt limit: its own, else the queue's.
func (q *queue) maxAttempts(n job.New) int {
	if n.MaxAttempts > 0 {
		return n.MaxAttempts
	}
	return q.conf().MaxAttempts
}

// RejectReasons are the reasons an enqueue is refused, as metrics label them.
var RejectReasons = [...]string{job.ReasonInvalid, job.ReasonTooLarge, job.ReasonQueueFull, job.ReasonRateLimited, job.ReasonShed, job.ReasonDiskFull, job.ReasonUnavailable}

// rejectReason maps a refusal to its index in RejectReasons (job.Reason),
// -1 for errors that are not refusals of the job (a cancelled caller,
// shutdown).
func rejectReason(err error) int { return slices.Index(RejectReasons[:], job.Reason(err)) }

// Refused counts n jobs for queue refused with err, by the reason err's
// sentinel gives (RejectReasons; other errors are not counted). Transports
// call it for the jobs they refuse before the engine sees them (a body
// over max_payload, a message that does not decode) and for the final
// refusal of jobs offered with EnqueueBatchUncounted. A queue that does
// not exist is not created: its refusals count in Stats.Rejected. Safe for
// concurrent use.
func (e *Engine) Refused(queue string, n int, err error) {
	i := rejectReason(err)
	if i < 0 || n <= 0 {
		return
	}
	e.qmu.RLock()
	q := e.queues[queue]
	e.qmu.RUnlock()
	if q == nil {
		e.rejected[i].Add(uint64(n))
		return
	}
	q.rejected.Add(uint64(n))
	q.rejectedBy[i].Add(uint64(n))
}

func (q *queue) rejectedByReason() map[string]uint64 {
	m := make(map[string]uint64, len(RejectReasons))
	for i, r := range RejectReasons {
		m[r] = q.rejectedBy[i].Load()
	}
	return m
}

func (q *queue) evictedByReason() map[string]uint64 {
	m := make(map[string]uint64, len(EvictReasons))
	for i, r := range EvictReasons {
		m[r] = q.evictedBy[i].Load()
	}
	return m
}
