package engine

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// Default class weights (SPEC 8).
var defaultWeights = map[job.Class]int{job.ClassHigh: 8, job.ClassNormal: 4, job.ClassLow: 2, job.ClassBulk: 1}

// sched runs jobs of queues that have a Handler: the dispatcher goroutine
// allocates free worker slots to queues, leases jobs for them through the
// ring (so many leases share one commit and fsync), and runs each job in a
// worker goroutine. All fields are guarded by mu unless said otherwise; so
// is the dispatch state of each queue (queueSlots), which only sched's
// methods touch.
type sched struct {
	e *Engine

	mu       sync.Mutex
	limit    int // global worker limit (the governor moves it)
	running  int // slots in use, including slots whose lease is in flight
	inflight int // lease ops submitted and not yet answered
	level    job.Level
	passes   map[job.Class]*classPass
	vnow     float64 // virtual time: the pass of the last class served
	rr       map[job.Class]int
	stopped  bool
	idle     *sync.Cond             // signalled when inflight drops to zero
	queues   []*queueSlots          // queues with a handler
	slots    map[*queue]*queueSlots // every queue that had a handler: its breaker outlives a reload
	weights  map[job.Class]int
	reserved int // slots only critical queues may take (the governor's)

	poke    chan struct{} // cap 1: something changed, plan again
	workers sync.WaitGroup
	runCtx  context.Context // cancelled when the shutdown grace ends
	cancel  context.CancelFunc
	done    chan struct{} // closed when the dispatcher exits
}

// queueSlots is the dispatch state of one queue, guarded by sched.mu.
type queueSlots struct {
	q            *queue
	running      int // in-process jobs, including slots whose lease is in flight
	pending      int // slots whose lease is in flight
	breaker      BreakerState
	breakerUntil time.Time
	probing      bool
	failures     int // consecutive target failures
}

type classPass struct {
	pass   float64
	active bool
}

func newSched(e *Engine) *sched {
	s := &sched{
		e:       e,
		limit:   e.cfg.Workers,
		passes:  make(map[job.Class]*classPass),
		rr:      make(map[job.Class]int),
		slots:   make(map[*queue]*queueSlots),
		weights: make(map[job.Class]int),
		poke:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	for c, w := range defaultWeights {
		s.weights[c] = w
	}
	for c, w := range e.cfg.ClassWeights {
		if w > 0 {
			s.weights[c] = w
		}
	}
	s.idle = sync.NewCond(&s.mu)
	s.runCtx, s.cancel = context.WithCancel(context.Background())
	return s
}

// kick asks the dispatcher to plan again.
func (s *sched) kick() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// slotsLocked answers q's dispatch state, made on first use.
func (s *sched) slotsLocked(q *queue) *queueSlots {
	d := s.slots[q]
	if d == nil {
		d = &queueSlots{q: q}
		s.slots[q] = d
	}
	return d
}

// addQueue registers a queue that has a handler.
func (s *sched) addQueue(q *queue) {
	s.mu.Lock()
	s.queues = append(s.queues, s.slotsLocked(q))
	s.mu.Unlock()
	s.kick()
}

// setQueues replaces the queues that have a handler (a reload); a queue
// keeps its running count and breaker.
func (s *sched) setQueues(qs []*queue) {
	s.mu.Lock()
	s.queues = s.queues[:0:0]
	for _, q := range qs {
		s.queues = append(s.queues, s.slotsLocked(q))
	}
	s.mu.Unlock()
	s.kick()
}

// queueState answers q's in-process jobs and breaker state.
func (s *sched) queueState(q *queue) (running int, breaker BreakerState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.slots[q]; d != nil {
		return d.running, d.breaker
	}
	return 0, BreakerClosed
}

// loop is the dispatcher goroutine.
func (s *sched) loop(stop <-chan struct{}) {
	defer close(s.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		plan, wake := s.plan(time.Now())
		for _, a := range plan {
			if a.bh != nil {
				s.leaseBatch(a)
			} else {
				s.lease(a.d, a.n)
			}
		}
		if len(plan) > 0 {
			continue
		}
		timer.Reset(wake)
		select {
		case <-s.poke:
		case <-timer.C:
		case <-stop:
			s.mu.Lock()
			s.stopped = true
			for s.inflight > 0 {
				s.idle.Wait()
			}
			s.mu.Unlock()
			return
		}
		timer.Stop()
	}
}

// drain waits for the dispatcher to exit (the engine closed stop) and for
// the running jobs; when ctx ends first their context is cancelled and the
// error says so. It returns once every worker has returned.
func (s *sched) drain(ctx context.Context) error {
	<-s.done
	finished := make(chan struct{})
	go func() { s.workers.Wait(); close(finished) }()
	defer s.cancel()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		s.cancel()
		<-finished
		return fmt.Errorf("engine stop: running jobs cancelled: %w", ctx.Err())
	}
}

type alloc struct {
	d  *queueSlots
	n  int
	bh BatchHandler // a batch of n jobs in one worker (sched_batch.go)
}

// shedPaused reports whether the level pauses dispatch of q.
func shedPaused(q *queue, level job.Level) bool {
	at := q.pauseAt()
	return at != levelNever && level >= at
}

// shedRefused reports whether the level refuses new jobs of q.
func shedRefused(q *queue, level job.Level) bool {
	at := q.refuseAt()
	return at != levelNever && level >= at
}

// levelNever marks a queue that is never shed.
const levelNever job.Level = 255

// eligibleLocked reports whether d's queue may take one more slot now; it
// also answers when a blocked breaker opens again (zero if not blocked by
// one).
func (s *sched) eligibleLocked(d *queueSlots, now time.Time) (bool, time.Time) {
	q := d.q
	if q.paused.Load() || shedPaused(q, s.level) {
		return false, time.Time{}
	}
	if q.runnable()-int64(d.pending) <= 0 {
		return false, time.Time{}
	}
	if c := q.conf().Concurrency; c > 0 && d.running >= c {
		return false, time.Time{}
	}
	if d.running > 0 && q.conf().Ordered && batchHandler(q) != nil {
		// An ordered queue's batches go one at a time: two in flight
		// would race each other to the handler, out of lease order.
		return false, time.Time{}
	}
	switch d.breaker {
	case BreakerOpen:
		if now.Before(d.breakerUntil) {
			return false, d.breakerUntil
		}
		d.breaker = BreakerHalfOpen
		d.probing = false
		s.e.log.Info("breaker half-open", "queue", q.name)
		fallthrough
	case BreakerHalfOpen:
		if d.probing {
			return false, time.Time{}
		}
	}
	return true, time.Time{}
}

// plan allocates free slots to queues. It answers the allocations and, when
// there are none, how long the dispatcher may sleep.
func (s *sched) plan(now time.Time) ([]alloc, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wake := time.Minute
	if s.stopped {
		return nil, wake
	}
	var out []alloc
	take := func(d *queueSlots) {
		if bh := batchHandler(d.q); bh != nil {
			out = append(out, s.takeBatchLocked(d, bh))
			return
		}
		d.running++
		d.pending++
		s.running++
		if d.breaker == BreakerHalfOpen {
			d.probing = true
		}
		for i := range out {
			if out[i].d == d {
				out[i].n++
				return
			}
		}
		out = append(out, alloc{d: d, n: 1})
	}
	for s.running < s.limit {
		var cands []*queueSlots
		for _, d := range s.queues {
			ok, reopen := s.eligibleLocked(d, now)
			if !reopen.IsZero() {
				wake = min(wake, max(0, reopen.Sub(now)))
			}
			if ok {
				cands = append(cands, d)
			}
		}
		if len(cands) == 0 {
			break
		}
		// Unmet reserves first: a reserve is the operator's guarantee.
		var pick *queueSlots
		for _, d := range cands {
			if d.running < d.q.conf().Reserve {
				pick = d
				break
			}
		}
		// Then critical queues, strictly.
		if pick == nil {
			pick = s.roundRobinLocked(job.ClassCritical, cands)
		}
		if pick == nil {
			if s.running >= s.limit-s.reserved {
				break // the rest is kept for critical work
			}
			pick = s.strideLocked(cands)
		}
		take(pick)
	}
	for _, cp := range s.passes {
		cp.active = false
	}
	for _, d := range s.queues {
		if ok, _ := s.eligibleLocked(d, now); ok || d.running > 0 {
			s.pass(d.q.conf().Class).active = true
		}
	}
	return out, wake
}

func (s *sched) pass(c job.Class) *classPass {
	p := s.passes[c]
	if p == nil {
		p = &classPass{pass: s.vnow}
		s.passes[c] = p
	}
	return p
}

// roundRobinLocked picks the next candidate of class c in turn, nil if none.
func (s *sched) roundRobinLocked(c job.Class, cands []*queueSlots) *queueSlots {
	var of []*queueSlots
	for _, d := range cands {
		if d.q.conf().Class == c {
			of = append(of, d)
		}
	}
	if len(of) == 0 {
		return nil
	}
	i := s.rr[c] % len(of)
	s.rr[c]++
	return of[i]
}

// strideLocked picks among the non-critical classes by stride scheduling:
// each class advances its pass by 1/weight when served and the lowest pass
// is served next. A class that was idle restarts at the current virtual
// time, so it is served at the next free slot and never waits behind
// another class's backlog; every class with work is served in proportion
// to its weight, so none starves.
func (s *sched) strideLocked(cands []*queueSlots) *queueSlots {
	var best job.Class
	bestPass := 0.0
	for _, d := range cands {
		c := d.q.conf().Class
		p := s.pass(c)
		if !p.active && p.pass < s.vnow {
			p.pass = s.vnow
		}
		p.active = true
		if best == 0 || p.pass < bestPass || (p.pass == bestPass && c < best) {
			best, bestPass = c, p.pass
		}
	}
	p := s.pass(best)
	s.vnow = p.pass
	w := s.weights[best]
	if w <= 0 {
		w = 1
	}
	p.pass += 1 / float64(w)
	return s.roundRobinLocked(best, cands)
}

// lease asks the committer for n jobs of d's queue; leased takes the answer
// (on the syncer goroutine).
func (s *sched) lease(d *queueSlots, n int) {
	s.mu.Lock()
	s.inflight++
	s.mu.Unlock()
	o := &op{kind: opLease, q: d.q, max: n}
	o.then = func(o *op) { s.leased(d, n, o) }
	if err := s.e.submitInternal(o); err != nil {
		o.err = err
		s.leased(d, n, o)
	}
}

// leased takes a lease answer: it starts a worker per job and gives back the
// slots that found no job.
func (s *sched) leased(d *queueSlots, want int, o *op) {
	q := d.q
	s.mu.Lock()
	d.pending -= want
	unused := want - len(o.jobs)
	d.running -= unused
	s.running -= unused
	if unused > 0 && d.breaker == BreakerHalfOpen && len(o.jobs) == 0 {
		d.probing = false
	}
	for _, j := range o.jobs {
		s.workers.Add(1)
		go s.run(d, j)
	}
	s.inflight--
	if s.inflight == 0 {
		s.idle.Broadcast()
	}
	s.mu.Unlock()
	if o.err != nil {
		s.e.log.Warn("dispatch lease failed", "queue", q.name, "err", o.err)
	}
	if unused > 0 {
		s.kick()
	}
}

// run is a worker: it runs one job and reports its outcome.
func (s *sched) run(d *queueSlots, j *job.Job) {
	defer s.workers.Done()
	q := d.q
	ctx, cancel := context.WithCancel(s.runCtx)
	out := safeHandle(ctx, q.conf().Handler, j)
	interrupted := s.runCtx.Err() != nil // shutdown, not the target's doing
	cancel()
	o := outcomeOp(j, out)
	if err := s.e.submitInternal(&o); err != nil {
		s.e.log.Warn("job outcome not recorded; its lease will expire", "queue", q.name, "id", j.ID, "err", err)
	}
	now := time.Now()
	s.mu.Lock()
	d.running--
	s.running--
	if !interrupted {
		s.breakerLocked(d, out, now)
	}
	s.mu.Unlock()
	s.kick()
}

// SetWorkers sets the global worker limit and how many of those slots only
// critical queues may take (the governor moves both). Running jobs above a
// lowered limit finish; no new ones start until below it.
func (e *Engine) SetWorkers(n, reservedCritical int) { e.sched.setLimit(n, reservedCritical) }

func (s *sched) setLimit(n, reservedCritical int) {
	s.mu.Lock()
	s.limit = max(1, n)
	s.reserved = min(max(0, reservedCritical), s.limit-1)
	s.mu.Unlock()
	s.kick()
}

// setLevel sets the level that pauses queues' dispatch.
func (s *sched) setLevel(l job.Level) {
	s.mu.Lock()
	s.level = l
	s.mu.Unlock()
	s.kick()
}

// dispatchable reports whether q's jobs may be leased now, in process or by
// pull workers: it is neither paused nor paused by the governor's level.
func (e *Engine) dispatchable(q *queue) bool {
	return !q.paused.Load() && !shedPaused(q, job.Level(e.level.Load()))
}

// SetLevel sets the host pressure level that sheds queues (SPEC 8). When it
// drops, long polls waiting on the queues it paused wake.
func (e *Engine) SetLevel(l job.Level) {
	old := job.Level(e.level.Swap(uint32(l)))
	e.sched.setLevel(l)
	if l >= old {
		return
	}
	var freed []*queue
	e.qmu.RLock()
	for _, q := range e.queues {
		if shedPaused(q, old) && !shedPaused(q, l) {
			freed = append(freed, q)
		}
	}
	e.qmu.RUnlock()
	for _, q := range freed { // not under qmu: wake takes queue.mu
		q.wake()
	}
}

// Workers answers the jobs running in-process and the worker limit.
func (e *Engine) Workers() (running, limit int) { return e.sched.usage() }

// usage answers the slots in use and the worker limit.
func (s *sched) usage() (running, limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running, s.limit
}

// defaultWorkers is 2 × the usable CPUs.
func defaultWorkers() int { return 2 * runtime.GOMAXPROCS(0) }
