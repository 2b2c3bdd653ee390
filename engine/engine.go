package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/ring"
	"github.com/edgeq/edgeq/engine/store"
)

// Engine is the job queue: intake ring → committer → store. Create it with
// New, then Start it; Stop it before closing the store. All exported methods
// are safe for concurrent use.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	store store.Store

	ring   *ring.Ring[*op]
	signal chan struct{} // cap 1: pokes the committer after a push

	qmu      sync.RWMutex
	queues   map[string]*queue // guarded by qmu; so is cfg.Queues (Reconfigure)
	created  chan struct{}     // guarded by qmu; closed and replaced when a queue is registered
	reloadMu sync.Mutex        // one Reconfigure at a time

	closeMu sync.RWMutex
	closing bool // guarded by closeMu; set once by Stop

	stopCh     chan struct{} // closed by Stop: refuses work, wakes long polls, stops dispatch
	commitStop chan struct{} // closed by Stop once workers are done: the committer drains and exits
	doneCh     chan struct{} // closed when the committer has exited
	startOnce  sync.Once
	stopOnce   sync.Once
	started    atomic.Bool
	wg         sync.WaitGroup

	startedAt time.Time
	ready     atomic.Bool
	failed    atomic.Pointer[error] // last commit failure, cleared by the next success

	c         committer   // owned by the committer goroutine (and Start, before it runs)
	syncLost  atomic.Bool // a sync failed: the committer marks the store dirty again
	ageRescan atomic.Bool // a reload may have set a max_age: the committer looks at every queue again
	sched     *sched
	level     atomic.Uint32 // job.Level set by the governor
	// rejected counts refusals of jobs for no existing queue, by index in
	// RejectReasons (Refused).
	rejected [len(RejectReasons)]atomic.Uint64

	commitLat, waitLat latencies
	hCommit, hBatch    *histogram
	hSync, hSyncOps    *histogram
	hEnqueue           *histogram
	beat               atomic.Int64 // unix nanos of the committer's last round
}

// New returns an Engine over st. It does not touch the store until Start.
func New(cfg Config, st store.Store) (*Engine, error) {
	if st == nil {
		return nil, errors.New("engine: nil store")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	r, err := ring.New[*op](cfg.RingSize)
	if err != nil {
		return nil, fmt.Errorf("intake ring: %w", err)
	}
	e := &Engine{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "engine"),
		store:      st,
		ring:       r,
		signal:     make(chan struct{}, 1),
		queues:     make(map[string]*queue),
		created:    make(chan struct{}),
		stopCh:     make(chan struct{}),
		commitStop: make(chan struct{}),
		doneCh:     make(chan struct{}),
	}
	e.sched = newSched(e)
	e.hCommit = newHistogram(latencyBounds...)
	e.hEnqueue = newHistogram(latencyBounds...)
	e.hBatch = newHistogram(sizeBounds...)
	e.hSync = newHistogram(latencyBounds...)
	e.hSyncOps = newHistogram(sizeBounds...)
	e.c.leases = newLeaseTable()
	e.c.finished = newFinishedLeases()
	now := time.Now()
	for name := range cfg.Queues {
		q := newQueue(name, e.queueConfig(name), now)
		e.addQueueLocked(q)
		if q.conf().Handler != nil {
			e.sched.addQueue(q)
		}
	}
	return e, nil
}

// Start recovers the in-memory state from the store (jobs that were leased
// when the process stopped become ready again, attempts kept) and starts the
// committer. It returns once the engine accepts work.
func (e *Engine) Start(ctx context.Context) error {
	err := errors.New("engine already started")
	e.startOnce.Do(func() {
		e.startedAt = time.Now()
		if err = e.recover(ctx); err != nil {
			return
		}
		e.started.Store(true)
		e.wg.Go(e.commitLoop)
		e.wg.Go(func() { e.sched.loop(e.stopCh) })
		e.wg.Go(func() { e.alertLoop(e.stopCh) })
		e.ready.Store(true)
	})
	return err
}

// Stop shuts the engine down in order: it refuses new work with
// job.ErrShuttingDown and wakes long polls; stops dispatch; lets running
// in-process jobs finish until ctx is done, then cancels their context and
// waits for them to return; then lets the committer drain the intake ring,
// commit and sync. It is idempotent and safe before Start, and returns an
// error when ctx ended before the running jobs did. It does not close the
// store.
func (e *Engine) Stop(ctx context.Context) error {
	var err error
	e.stopOnce.Do(func() {
		e.ready.Store(false)
		e.closeMu.Lock()
		e.closing = true
		e.closeMu.Unlock()
		close(e.stopCh)
		if !e.started.Load() {
			close(e.doneCh)
			return
		}
		err = e.sched.drain(ctx)
		close(e.commitStop)
	})
	<-e.doneCh
	e.wg.Wait()
	return err
}

// Ready answers nil while the engine accepts jobs.
func (e *Engine) Ready() error {
	if !e.ready.Load() {
		return job.ErrShuttingDown
	}
	if p := e.failed.Load(); p != nil {
		return fmt.Errorf("%w: last commit failed: %v", job.ErrUnavailable, *p)
	}
	return nil
}

// Shedding answers the governor's level and the queues it sheds. It reads
// no store: cheap enough for every readiness probe.
func (e *Engine) Shedding() Shedding {
	level := job.Level(e.level.Load())
	sh := Shedding{Level: level, Paused: []string{}, Refused: []string{}}
	e.qmu.RLock()
	for _, q := range e.queues {
		if shedPaused(q, level) {
			sh.Paused = append(sh.Paused, q.name)
		}
		if shedRefused(q, level) {
			sh.Refused = append(sh.Refused, q.name)
		}
	}
	e.qmu.RUnlock()
	sort.Strings(sh.Paused)
	sort.Strings(sh.Refused)
	return sh
}

// queueConfig resolves a queue's config against the engine defaults.
func (e *Engine) queueConfig(name string) QueueConfig {
	q := e.cfg.Queues[name]
	if q.Class == 0 {
		q.Class = job.ClassNormal
	}
	if q.MaxAttempts == 0 {
		q.MaxAttempts = e.cfg.MaxAttempts
	}
	if q.TTR == 0 {
		q.TTR = e.cfg.TTR
	}
	if q.Backoff.Initial == 0 {
		q.Backoff.Initial = e.cfg.Backoff.Initial
	}
	if q.Backoff.Max == 0 {
		q.Backoff.Max = max(e.cfg.Backoff.Max, q.Backoff.Initial)
	}
	if q.Sync == SyncDefault {
		q.Sync = e.cfg.Sync
	}
	q.MaxResult = cmp.Or(q.MaxResult, DefaultMaxResult)
	return q
}

// registered returns the named queue, nil when it does not exist.
func (e *Engine) registered(name string) *queue {
	e.qmu.RLock()
	defer e.qmu.RUnlock()
	return e.queues[name]
}

// lookup returns the named queue, nil when it does not exist (an error
// under strict_queues). It validates the name and creates nothing.
func (e *Engine) lookup(name string) (*queue, error) {
	if q := e.registered(name); q != nil {
		return q, nil
	}
	if err := job.CheckQueueName(name); err != nil {
		return nil, err
	}
	if e.cfg.StrictQueues {
		return nil, fmt.Errorf("%w: %q is not configured (strict_queues)", job.ErrUnknownQueue, name)
	}
	return nil, nil
}

// target returns the queue that new jobs for name go to. One that does not
// exist yet is made but not registered: the committer adopts it with the
// first job it accepts, since only an accepted job creates a queue.
func (e *Engine) target(name string) (*queue, error) {
	if e.cfg.StrictQueues {
		// Only a queue of the running configuration takes jobs: one that
		// left it, by a reload or before a restart, keeps its stored jobs,
		// which lease, ack and admin calls still reach so that they drain.
		if err := job.CheckQueueName(name); err != nil {
			return nil, err
		}
		e.qmu.RLock()
		_, ok := e.cfg.Queues[name]
		e.qmu.RUnlock()
		if !ok {
			return nil, fmt.Errorf("%w: %q is not configured (strict_queues)", job.ErrUnknownQueue, name)
		}
	}
	q, err := e.lookup(name)
	if q != nil || err != nil {
		return q, err
	}
	e.qmu.RLock()
	n, cfg := len(e.queues), e.queueConfig(name)
	e.qmu.RUnlock()
	if err := e.roomForQueue(name, n); err != nil {
		return nil, err
	}
	return newQueue(name, cfg, time.Now()), nil
}

// roomForQueue refuses a new queue when n queues exist and max_queues is reached.
func (e *Engine) roomForQueue(name string, n int) error {
	if n < e.cfg.MaxQueues {
		return nil
	}
	return job.Retry(fmt.Errorf("%w: queue %q would be a new queue and max_queues (%d) are in use", job.ErrQueueFull, name, e.cfg.MaxQueues), time.Minute)
}

// adopt registers q, made by target, when the committer accepts its first
// job, and answers the registered queue of that name (another request's
// may have come first). Called by the committer only.
func (e *Engine) adopt(q *queue) (*queue, error) {
	if q.live.Load() {
		return q, nil
	}
	e.qmu.Lock()
	defer e.qmu.Unlock()
	if r := e.queues[q.name]; r != nil {
		return r, nil
	}
	if err := e.roomForQueue(q.name, len(e.queues)); err != nil {
		return nil, err
	}
	e.addQueueLocked(q)
	return q, nil
}

// addQueueLocked registers q and wakes the long polls waiting for a queue
// to exist.
func (e *Engine) addQueueLocked(q *queue) {
	q.live.Store(true)
	e.queues[q.name] = q
	close(e.created)
	e.created = make(chan struct{})
}

// queueCreated returns a channel closed when a queue is next registered.
func (e *Engine) queueCreated() <-chan struct{} {
	e.qmu.RLock()
	defer e.qmu.RUnlock()
	return e.created
}

// existingQueue returns a queue that exists, or job.ErrUnknownQueue.
func (e *Engine) existingQueue(name string) (*queue, error) {
	if err := job.CheckQueueName(name); err != nil {
		return nil, err
	}
	q := e.registered(name)
	if q == nil {
		return nil, fmt.Errorf("%w: %q does not exist", job.ErrUnknownQueue, name)
	}
	return q, nil
}

// push puts o into the ring and pokes the committer. Ops from outside are
// refused once Stop began; internal ones (outcomes of running jobs,
// dispatch leases) are taken until the committer stops.
func (e *Engine) push(ctx context.Context, o *op, internal bool) error {
	if o.then == nil {
		o.done = make(chan struct{})
	}
	e.closeMu.RLock()
	if e.closing && !internal {
		e.closeMu.RUnlock()
		return job.ErrShuttingDown
	}
	err := e.ring.Push(ctx, o, e.cfg.IntakeWait)
	e.closeMu.RUnlock()
	if err != nil {
		if errors.Is(err, ring.ErrFull) {
			return job.Retry(fmt.Errorf("%w: intake full", job.ErrUnavailable), time.Second)
		}
		return err
	}
	select {
	case e.signal <- struct{}{}:
	default:
	}
	return nil
}

// submitInternal pushes an op of the engine's own without waiting for it.
func (e *Engine) submitInternal(o *op) error {
	return e.push(context.Background(), o, true)
}

// submit hands o to the committer and waits for its answer.
func (e *Engine) submit(ctx context.Context, o *op) error {
	if err := e.push(ctx, o, false); err != nil {
		return err
	}
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		// The committer still applies o; its answer is dropped.
		return ctx.Err()
	}
}

// Stats snapshots the engine. The oldest ready age is read from the store.
func (e *Engine) Stats() Stats {
	now := time.Now()
	e.qmu.RLock()
	qs := make([]*queue, 0, len(e.queues))
	for _, q := range e.queues {
		qs = append(qs, q)
	}
	e.qmu.RUnlock()
	sort.Slice(qs, func(i, j int) bool { return qs[i].name < qs[j].name })
	heads := e.heads(qs)
	s := Stats{Queues: make([]QueueStats, len(qs)), StoreShort: e.storeShort(), Uptime: now.Sub(e.startedAt)}
	for i, q := range qs {
		s.Queues[i] = e.queueStats(q, now, heads[i])
	}
	s.Running, s.Workers = e.Workers()
	s.Level = job.Level(e.level.Load())
	s.Rejected = make(map[string]uint64, len(RejectReasons))
	for i, r := range RejectReasons {
		s.Rejected[r] = e.rejected[i].Load()
	}
	return s
}

func (e *Engine) queueStats(q *queue, now, head time.Time) QueueStats {
	qs := q.stats(now, head)
	e.qmu.RLock()
	_, qs.Configured = e.cfg.Queues[q.name]
	e.qmu.RUnlock()
	level := job.Level(e.level.Load())
	qs.Shed = shedPaused(q, level) || shedRefused(q, level)
	qs.Running, qs.Breaker = e.sched.queueState(q)
	return qs
}

// QueueStats snapshots one queue; job.ErrNotFound when it does not exist.
func (e *Engine) QueueStats(name string) (QueueStats, error) {
	q, err := e.existingQueue(name)
	if err != nil {
		return QueueStats{}, err
	}
	return e.queueStats(q, time.Now(), e.heads([]*queue{q})[0]), nil
}

// heads reads the RunAt of the oldest ready job of each queue: without a
// group from the ready index, with one from its group's head.
func (e *Engine) heads(qs []*queue) []time.Time {
	out := make([]time.Time, len(qs))
	_ = e.store.View(func(tx store.ReadTx) error {
		for i, q := range qs {
			if q.ready.Load() == 0 {
				continue
			}
			refs, err := tx.Ready(q.name, q.cursor.Load(), 1)
			if err == nil && len(refs) == 1 {
				out[i] = refs[0].At
			}
			if q.groups.ready.Load() > 0 {
				_, oldest, at := q.groupStats()
				if oldest != "" {
					out[i] = earliest(out[i], at)
				}
			}
		}
		return nil
	})
	return out
}

// storeShort reports a store that came back short at open, when the store
// can tell (storage.Badger can).
func (e *Engine) storeShort() bool {
	s, ok := e.store.(interface{ Short() bool })
	return ok && s.Short()
}

// newLeaseID returns a random lease id.
func newLeaseID() string { return job.ID(rand.Uint64() | 1).String() }

// backoff is the retry delay before attempt+1: exponential from b.Initial,
// capped at b.Max, drawn uniformly between Initial and that cap (full jitter
// above the floor).
func backoff(b Backoff, attempt int) time.Duration {
	ceil := b.Initial
	for i := 1; i < attempt && ceil < b.Max; i++ {
		ceil *= 2
	}
	ceil = min(ceil, b.Max)
	if ceil <= b.Initial {
		return b.Initial
	}
	return b.Initial + rand.N(ceil-b.Initial+1)
}
