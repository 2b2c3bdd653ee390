package resource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// Governor samples the host every Config.Interval, sets the pressure level
// and adapts the total worker limit (see the package documentation). The
// engine reads the outcome through Level and Concurrency (lock-free, for
// admission and dispatch), Status (for stats) and Subscribe (level changes).
//
// All methods are safe for concurrent use.
type Governor struct {
	cfg     Config
	sampler Sampler
	usage   func() Usage
	log     *slog.Logger

	running atomic.Bool
	level   atomic.Uint32 // job.Level of the last decision
	limit   atomic.Int64  // Concurrency of the last decision

	mu   sync.Mutex
	st   state         // guarded by mu
	dec  Decision      // guarded by mu
	last Sample        // guarded by mu
	subs []*subscriber // guarded by mu

	errAt         time.Time // owned by Run: last logged sampler error
	errSuppressed int       // owned by Run
}

// Event is published to subscribers at every level change.
type Event struct {
	At          time.Time
	From, To    job.Level
	Reason      string
	Drill       bool // the change starts, or is forced by, a drill
	Concurrency int  // worker limit after the decision
	Sample      Sample
}

// Status is the governor's current state, for GET /v1/stats, /metrics and
// `edgeq governor status`. The HTTP API writes it as the SPEC §5
// "governor" block (transport/httpapi.GovernorStats).
type Status struct {
	Level            job.Level
	Since            time.Time
	Reason           string
	Concurrency      int
	ReservedCritical int
	Drill            *DrillStatus // nil when no drill runs
	Sample           Sample       // the last sample; Sample.Known says which fields were measured
}

// DrillStatus is a running drill.
type DrillStatus struct {
	Level job.Level
	Until time.Time
}

// MaxDrill is the longest drill Drill accepts, so that a forgotten drill
// cannot shed work for days.
const MaxDrill = 24 * time.Hour

// subscriberBuffer is how many events a slow subscriber may fall behind
// before its oldest undelivered event is dropped.
const subscriberBuffer = 16

// New returns a governor at level normal with the worker limit at
// MaxConcurrency. usage reports the engine's figures at every sample; nil
// means none (the limit then never grows, having no evidence of use).
func New(cfg Config, sampler Sampler, usage func() Usage) (*Governor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sampler == nil {
		return nil, errors.New("resource: nil sampler")
	}
	cfg = cfg.withDefaults()
	g := &Governor{
		cfg:     cfg,
		sampler: sampler,
		usage:   usage,
		log:     cfg.Logger.With("component", "governor"),
	}
	now := cfg.Clock()
	g.st = newState(cfg, now)
	g.dec = Decision{At: now, Level: g.st.Level, Since: now, Concurrency: g.st.Concurrency,
		ReservedCritical: reservedFor(g.st.Concurrency), Reason: "no sample yet"}
	g.limit.Store(int64(g.st.Concurrency))
	return g, nil
}

// Run samples and decides at once and then every Config.Interval until ctx
// is done, when it returns nil. Sampler errors are logged (at most once a
// minute) and the decision is made on what is known. A drill that runs out
// between two samples ends when it runs out, decided on the last sample.
// Only one Run may be active at a time.
func (g *Governor) Run(ctx context.Context) error {
	if !g.running.CompareAndSwap(false, true) {
		return errors.New("resource: governor already running")
	}
	defer g.running.Store(false)
	t := time.NewTicker(g.cfg.Interval)
	defer t.Stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		if err := g.runOnce(ctx); err != nil {
			g.logSampleError(err)
		}
		if !g.waitTick(ctx, t.C) {
			return nil
		}
	}
}

// waitTick waits for the next tick, ending a drill that runs out before it
// at its end. It answers false when ctx is done.
func (g *Governor) waitTick(ctx context.Context, tick <-chan time.Time) bool {
	for {
		left, ok := g.drillLeft()
		if !ok || left >= g.cfg.Interval {
			select {
			case <-ctx.Done():
				return false
			case <-tick:
				return true
			}
		}
		end := time.NewTimer(max(left, 0))
		select {
		case <-ctx.Done():
			end.Stop()
			return false
		case <-tick:
			end.Stop()
			return true
		case <-end.C:
			g.reevaluate(func(st state, _ time.Time) state { return st }) // decide ends it
		}
	}
}

// drillLeft answers how long the running drill still lasts; ok is false
// when none runs.
func (g *Governor) drillLeft() (left time.Duration, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.st.DrillUntil.IsZero() {
		return 0, false
	}
	return g.st.DrillUntil.Sub(g.cfg.Clock()), true
}

// runOnce takes one sample and applies the decision. A sampler error is
// returned after deciding on the engine's figures alone.
func (g *Governor) runOnce(ctx context.Context) error {
	s, err := g.sampler.Sample(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		s = Sample{}
	}
	if g.usage != nil {
		s.Usage = g.usage()
	}
	s.At = g.cfg.Clock()
	g.mu.Lock()
	g.last = s
	ev, changed := g.decideLocked(s)
	g.mu.Unlock()
	if changed {
		g.logChange(ev)
	}
	return err
}

// decideLocked runs decide, publishes the outcome and, on a level change,
// the event.
func (g *Governor) decideLocked(s Sample) (Event, bool) {
	prev := g.dec
	d, st := decide(s, g.st, g.cfg)
	g.st, g.dec = st, d
	g.level.Store(uint32(d.Level))
	g.limit.Store(int64(d.Concurrency))
	if d.Concurrency != prev.Concurrency {
		g.log.Debug("governor concurrency changed", "from", prev.Concurrency, "to", d.Concurrency,
			"level", d.Level.String(), "running", s.Running)
	}
	if !d.Changed {
		return Event{}, false
	}
	ev := Event{At: d.At, From: prev.Level, To: d.Level, Reason: d.Reason, Drill: d.Drill,
		Concurrency: d.Concurrency, Sample: s}
	for _, sub := range g.subs {
		sub.offer(ev)
	}
	return ev, true
}

func (g *Governor) logChange(ev Event) {
	s := ev.Sample
	attrs := []any{"from", ev.From.String(), "to", ev.To.String(), "reason", ev.Reason,
		"concurrency", ev.Concurrency}
	if ev.Drill {
		attrs = append(attrs, "drill", true)
	}
	if s.Known.Has(SignalCPU) {
		attrs = append(attrs, "cpu", round1(s.CPUBusy))
	}
	if s.Known.Has(SignalLoad) {
		attrs = append(attrs, "load1", s.Load1, "cores", s.Cores)
	}
	if s.Known.Has(SignalMemory) {
		attrs = append(attrs, "mem", round1(s.MemPercent()), "mem_source", s.MemSource.String())
	}
	if s.Known.Has(SignalPSICPU) {
		attrs = append(attrs, "psi_cpu_some", s.PSICPU.Some10)
	}
	if s.Known.Has(SignalPSIMemory) {
		attrs = append(attrs, "psi_mem_some", s.PSIMemory.Some10, "psi_mem_full", s.PSIMemory.Full10)
	}
	if s.Known.Has(SignalPSIIO) {
		attrs = append(attrs, "psi_io_full", s.PSIIO.Full10)
	}
	if s.Known.Has(SignalMajorFaults) {
		attrs = append(attrs, "major_faults", round1(s.MajorFaults))
	}
	if s.Known.Has(SignalDisk) {
		attrs = append(attrs, "disk_free", s.DiskFree)
	}
	if s.Known.Has(SignalGoMemory) {
		attrs = append(attrs, "go_mem", round1(s.GoMemPercent()))
	}
	if s.Known.Has(SignalThermal) {
		attrs = append(attrs, "temp", s.TempC)
	}
	if s.CommitP99 > 0 {
		attrs = append(attrs, "commit_p99", s.CommitP99)
	}
	if s.WaitP99 > 0 {
		attrs = append(attrs, "wait_p99", s.WaitP99)
	}
	if ev.To > ev.From {
		g.log.Warn("governor level changed", attrs...)
	} else {
		g.log.Info("governor level changed", attrs...)
	}
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

func (g *Governor) logSampleError(err error) {
	now := g.cfg.Clock()
	if !g.errAt.IsZero() && now.Sub(g.errAt) < time.Minute {
		g.errSuppressed++
		return
	}
	g.log.Warn("governor sample failed", "err", err, "suppressed", g.errSuppressed)
	g.errAt, g.errSuppressed = now, 0
}

// Level is the current pressure level: one atomic load, for admission.
func (g *Governor) Level() job.Level { return job.Level(g.level.Load()) }

// Concurrency is the current total worker limit and, of it, the slots only
// critical queues may use: one atomic load, for dispatch.
func (g *Governor) Concurrency() (limit, reservedCritical int) {
	l := int(g.limit.Load())
	return l, reservedFor(l)
}

// Status returns the current level, worker limit, reason, drill and last
// sample.
func (g *Governor) Status() Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := Status{
		Level:            g.dec.Level,
		Since:            g.dec.Since,
		Reason:           g.dec.Reason,
		Concurrency:      g.dec.Concurrency,
		ReservedCritical: g.dec.ReservedCritical,
		Sample:           g.last,
	}
	if !g.st.DrillUntil.IsZero() {
		st.Drill = &DrillStatus{Level: g.st.Drill, Until: g.st.DrillUntil}
	}
	return st
}

// Drill forces level for d (at most MaxDrill), so that operators can
// rehearse shedding. The level changes at once, with an event; decisions
// during the drill give the drill as their reason, and the worker limit
// follows the drilled level. Interlocks (memory or disk exhausted, Go memory
// at GOMEMLIMIT) still raise the level to critical. When the drill ends the
// level the host's own signals hold (the level without the drill) is in
// force again at once. A new drill replaces the running one.
func (g *Governor) Drill(level job.Level, d time.Duration) error {
	switch {
	case level > job.LevelCritical:
		return fmt.Errorf("drill: unknown level %s", level)
	case d <= 0:
		return fmt.Errorf("drill: duration %s is not positive", d)
	case d > MaxDrill:
		return fmt.Errorf("drill: duration %s is above %s", d, MaxDrill)
	}
	g.reevaluate(func(st state, now time.Time) state { return startDrill(st, level, now.Add(d)) })
	return nil
}

// ClearDrill ends a running drill now, as if it ran out: the host's own
// level is in force at once. It does nothing when no drill runs.
func (g *Governor) ClearDrill() {
	g.reevaluate(func(st state, now time.Time) state {
		if st.DrillUntil.IsZero() {
			return st
		}
		return endDrill(st)
	})
}

// reevaluate changes the state and decides at once on the last sample.
func (g *Governor) reevaluate(change func(state, time.Time) state) {
	now := g.cfg.Clock()
	g.mu.Lock()
	g.st = change(g.st, now)
	s := g.last
	s.At = now
	ev, changed := g.decideLocked(s)
	g.mu.Unlock()
	if changed {
		g.logChange(ev)
	}
}

// Subscribe calls fn with every level change, in order, from a goroutine of
// its own, so that a slow fn never blocks the governor: when fn falls more
// than 16 events behind, the oldest undelivered event is dropped. cancel
// stops delivery and waits for a running fn to return; it must not be
// called from fn, and it may be called more than once.
func (g *Governor) Subscribe(fn func(Event)) (cancel func()) {
	sub := &subscriber{fn: fn, ch: make(chan Event, subscriberBuffer), quit: make(chan struct{})}
	g.mu.Lock()
	g.subs = append(g.subs, sub)
	g.mu.Unlock()
	sub.wg.Go(sub.loop)
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.subs = slices.DeleteFunc(g.subs, func(s *subscriber) bool { return s == sub })
			g.mu.Unlock()
			close(sub.quit)
			sub.wg.Wait()
		})
	}
}

type subscriber struct {
	fn   func(Event)
	ch   chan Event
	quit chan struct{}
	wg   sync.WaitGroup
}

func (s *subscriber) loop() {
	for {
		select {
		case <-s.quit:
			return
		case ev := <-s.ch:
			select {
			case <-s.quit:
				return
			default:
			}
			s.fn(ev)
		}
	}
}

// offer hands ev to the subscriber without blocking, dropping the oldest
// undelivered event when the buffer is full. Called with Governor.mu held,
// which serializes offers.
func (s *subscriber) offer(ev Event) {
	for {
		select {
		case s.ch <- ev:
			return
		default:
		}
		select {
		case <-s.ch:
		default:
		}
	}
}

// SetThresholds applies a new configuration's thresholds, dwell and
// concurrency bounds while the governor runs (a SIGHUP reload); Interval,
// Logger and Clock keep their values. The current level and drill stay;
// the worker limit is clamped into the new bounds at once. A config that
// does not validate is refused and changes nothing.
func (g *Governor) SetThresholds(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	g.mu.Lock()
	defer g.mu.Unlock()
	// Field by field: decide reads these under mu; Clock and Interval are
	// read without it and stay as they are.
	c := &g.cfg
	c.Dwell, c.CPU, c.Memory, c.DiskMinFree = cfg.Dwell, cfg.CPU, cfg.Memory, cfg.DiskMinFree
	c.MinConcurrency, c.MaxConcurrency = cfg.MinConcurrency, cfg.MaxConcurrency
	c.CommitLatency, c.WaitLatency = cfg.CommitLatency, cfg.WaitLatency
	g.st.Concurrency = min(max(g.st.Concurrency, c.MinConcurrency), c.MaxConcurrency)
	g.dec.Concurrency = g.st.Concurrency
	g.limit.Store(int64(g.st.Concurrency))
	g.log.Info("governor reconfigured", "cpu_enter", c.CPU.Enter, "cpu_exit", c.CPU.Exit,
		"mem_enter", c.Memory.Enter, "mem_exit", c.Memory.Exit, "dwell", c.Dwell,
		"concurrency_min", c.MinConcurrency, "concurrency_max", c.MaxConcurrency)
	return nil
}
