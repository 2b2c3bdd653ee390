package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// Clock reads the wall clock, the one schedules follow. Timers are the
// runtime's (monotonic), so that a jump of the wall clock shows as the
// difference between the two.
type Clock interface {
	Now() time.Time
}

type wallClock struct{}

// Now strips the monotonic reading: the scheduler compares wall times.
func (wallClock) Now() time.Time { return time.Now().Round(0) }

// Engine is what the scheduler needs of the engine.
type Engine interface {
	FireSchedule(ctx context.Context, run engine.ScheduleRun) (engine.ScheduleFired, error)
	PutSchedule(ctx context.Context, rec store.Schedule) error
	DeleteSchedule(ctx context.Context, name string) error
	Schedules() ([]store.Schedule, error)
	CheckQueue(name string) error
}

// Config configures a Scheduler. Zero values mean the defaults.
type Config struct {
	// Schedules are those of the configuration file, by name: read-only
	// through the API.
	Schedules map[string]Spec
	Clock     Clock        // nil: the system's wall clock
	Logger    *slog.Logger // nil: discard
}

// Validate checks every schedule of the configuration file; its errors
// name the schedule and the field ("schedules.backup.cron: ...").
func (c Config) Validate() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(c.Schedules)) {
		if err := checkName(name); err != nil {
			errs = append(errs, fmt.Errorf("schedules.%s: %w", name, err))
			continue
		}
		if _, err := compile(c.Schedules[name]); err != nil {
			errs = append(errs, fmt.Errorf("schedules.%s.%w", name, unwrapField(err)))
		}
	}
	return errors.Join(errs...)
}

// unwrapField drops the sentinel's text from a compile error for a
// configuration message ("cron: ..." rather than "invalid argument: cron: ...").
func unwrapField(err error) error {
	msg := err.Error()
	if p := job.ErrInvalidArgument.Error() + ": "; len(msg) > len(p) && msg[:len(p)] == p {
		return errors.New(msg[len(p):])
	}
	return err
}

func checkName(name string) error {
	if !job.ValidQueueName(name) {
		return fmt.Errorf("%w: name: %q must match ^[a-z0-9][a-z0-9_.-]{0,63}$", job.ErrInvalidArgument, name)
	}
	return nil
}

// Results of a run, the label of edgeq_schedule_fires_total.
const (
	ResultFired          = "fired"           // enqueued
	ResultSkippedOverlap = "skipped_overlap" // the last run was still waiting or running
	ResultSkippedMissed  = "skipped_missed"  // missed, and catch_up did not run it
	ResultRefused        = "refused"         // the queue refused it (full, shed, disk full...)
)

// Results lists every result, in the order of Status.Runs.
var Results = []string{ResultFired, ResultSkippedOverlap, ResultSkippedMissed, ResultRefused}

const (
	// grace is how late a run may start and still count as on time, and
	// how far the wall clock may move against the monotonic one before it
	// counts as a jump.
	grace = time.Minute
	// checkEvery bounds a wait, so that a jump of the wall clock is seen
	// within it.
	checkEvery = time.Minute
	// maxScan bounds the runs of a calendar schedule walked to catch up
	// (a year of a per-minute schedule); a longer gap is skipped whole.
	maxScan = 1 << 20
)

// Scheduler fires schedules: one goroutine (Run) waits for the next run
// of any schedule and fires it through the engine, which enqueues the run
// and stores the schedule's last run time in one commit. Its methods are
// safe for concurrent use.
type Scheduler struct {
	eng   Engine
	clock Clock
	log   *slog.Logger

	// writeMu orders the writes of schedule records: a run and an API
	// change of the same schedule never interleave. Held across the
	// engine's commit; taken before mu.
	writeMu sync.Mutex
	mu      sync.Mutex
	file    map[string]*compiled // the configuration file's; guarded by mu
	entries map[string]*entry    // guarded by mu
	wake    chan struct{}        // nudges Run after a change; buffered 1
	total   [4]atomic.Uint64     // runs by result, in the order of Results
}

// entry is one schedule; its fields are guarded by Scheduler.mu.
type entry struct {
	name  string
	c     *compiled
	file  bool      // from the configuration file
	base  time.Time // runs after base are still to come
	last  time.Time // stored Last
	fired time.Time // stored Fired
	next  time.Time
	runs  [4]uint64 // by result, in the order of Results
	saved bool      // a record exists in the store
}

// New checks cfg and loads the stored schedules: those made through the
// API, and the last run times of all. A schedule of the file takes over a
// stored API schedule of the same name (logged).
func New(cfg Config, eng Engine) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Scheduler{
		eng: eng, clock: cfg.Clock, log: cfg.Logger,
		file: make(map[string]*compiled), entries: make(map[string]*entry), wake: make(chan struct{}, 1),
	}
	if s.clock == nil {
		s.clock = wallClock{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "schedule")
	for name, spec := range cfg.Schedules {
		c, _ := compile(spec) // checked by Validate
		s.file[name] = c
		s.entries[name] = &entry{name: name, c: c, file: true}
	}
	recs, err := eng.Schedules()
	if err != nil {
		return nil, fmt.Errorf("read schedules: %w", err)
	}
	for _, r := range recs {
		e := s.entries[r.Name]
		switch {
		case e == nil && r.Spec == nil:
			continue // of a schedule no longer in the file; its record stays harmless
		case e == nil:
			c, err := decode(r.Spec)
			if err != nil {
				s.log.Error("stored schedule does not load; it does not run", "schedule", r.Name, "err", err)
				continue
			}
			e = &entry{name: r.Name, c: c}
			s.entries[r.Name] = e
		case r.Spec != nil:
			s.log.Warn("the configuration file defines a schedule made through the API; the file's wins", "schedule", r.Name)
		}
		e.last, e.fired, e.saved = r.Last, r.Fired, true
	}
	return s, nil
}

// decode reads a stored API schedule.
func decode(b []byte) (*compiled, error) {
	var spec Spec
	if err := jsonUnmarshal(b, &spec); err != nil {
		return nil, err
	}
	return compile(spec)
}

// Run fires schedules until ctx ends; it returns nil then.
func (s *Scheduler) Run(ctx context.Context) error {
	now := s.clock.Now()
	if s.start(ctx, now.Truncate(time.Second)) != nil {
		return nil // ctx ended
	}
	prevWall, prevMono := now, time.Now()
	for {
		s.runOnce(ctx, s.clock.Now())
		wait := s.wait(s.clock.Now())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-s.wake:
			t.Stop()
		}
		wall := s.clock.Now()
		if drift := wall.Sub(prevWall) - time.Since(prevMono); drift > grace || drift < -grace {
			s.jumped(wall, drift)
		}
		prevWall, prevMono = wall, time.Now()
	}
}

// start writes a record for each schedule that has none, so that its
// runs are counted from now across a restart, and plans every next run. It
// fails only when ctx ends.
func (s *Scheduler) start(ctx context.Context, now time.Time) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	var fresh []*entry
	for _, e := range s.entries {
		s.planLocked(e, now)
		if !e.saved {
			e.last = now
			fresh = append(fresh, e)
		}
	}
	s.mu.Unlock()
	for _, e := range fresh {
		if err := s.eng.PutSchedule(ctx, store.Schedule{Name: e.name, Last: now}); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// It runs all the same; its first run stores it.
			s.log.Warn("schedule start not stored: a restart before its first run counts from then", "schedule", e.name, "err", err)
			continue
		}
		s.mu.Lock()
		e.saved = true
		s.mu.Unlock()
	}
	return nil
}

// planLocked sets e's base and next run from its last run: runs after the
// last one are still to come, unless the clock now reads earlier than it
// (it went back, or the box booted with a clock in the past), when runs
// start again from now instead of waiting for the clock to catch up.
func (s *Scheduler) planLocked(e *entry, now time.Time) {
	e.base = e.last
	switch {
	case e.base.IsZero():
		e.base = now
	case e.base.After(now.Add(grace)):
		s.log.Warn("clock reads earlier than the schedule's last run; runs count from now", "schedule", e.name, "last", e.last, "now", now)
		e.base = now
	}
	e.next = e.c.next(e.base)
}

// jumped replans every schedule after a jump of the wall clock. A jump
// forward needs nothing more: the runs it skipped are missed runs, which
// catch_up bounds.
func (s *Scheduler) jumped(now time.Time, by time.Duration) {
	s.log.Warn("wall clock jumped; runs it skipped follow catch_up, none repeat", "by", by.Round(time.Second), "now", now)
	if by > 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		s.planLocked(e, now)
	}
}

// wait is how long until the next run, at most checkEvery.
func (s *Scheduler) wait(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := checkEvery
	for _, e := range s.entries {
		if !e.next.IsZero() {
			d = min(d, e.next.Sub(now))
		}
	}
	return max(d, 0)
}

// runOnce fires every schedule that is due; errors are logged.
func (s *Scheduler) runOnce(ctx context.Context, now time.Time) {
	s.mu.Lock()
	var due []*entry
	for _, e := range s.entries {
		if !e.next.IsZero() && !e.next.After(now) {
			due = append(due, e)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(due, func(a, b *entry) int { return a.next.Compare(b.next) })
	for _, e := range due {
		if ctx.Err() != nil {
			return
		}
		s.fire(ctx, e, now)
	}
}
