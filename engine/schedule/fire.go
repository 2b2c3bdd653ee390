package schedule

import (
	"context"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/store"
)

// plan is what one firing of a schedule does.
type plan struct {
	fire   []time.Time // runs to enqueue, oldest first
	missed int         // runs skipped: missed, and catch_up does not run them
	last   time.Time   // the latest run due: Last once this firing is stored
}

// dueLocked lists the runs of e due by now and applies catch_up: a run
// more than grace late was missed (edgeq was not running, or the clock
// jumped over it). skip runs only an on-time run, once runs the latest
// run due for all of them, all runs the latest MaxCatchUp.
func dueLocked(e *entry, now time.Time) plan {
	c := e.c
	var (
		kept  []time.Time // the latest MaxCatchUp runs due
		count int
		p     plan
	)
	if c.every > 0 {
		n := int(now.Sub(e.base) / c.every)
		count = n
		for i := max(n-MaxCatchUp, 0) + 1; i <= n; i++ {
			kept = append(kept, e.base.Add(time.Duration(i)*c.every))
		}
	} else {
		for t := c.next(e.base); !t.IsZero() && !t.After(now); t = c.next(t) {
			count++
			if len(kept) == MaxCatchUp {
				kept = kept[1:]
			}
			kept = append(kept, t)
			if count == maxScan {
				// Skip the rest of a gap this long: everything up to now.
				kept, count = nil, count+1
				p.last = now
				break
			}
		}
	}
	if len(kept) == 0 {
		p.missed = count
		return p
	}
	p.last = kept[len(kept)-1]
	switch {
	case c.spec.CatchUp == CatchUpAll:
		p.fire = kept
	case c.spec.CatchUp == CatchUpOnce || now.Sub(p.last) <= grace:
		p.fire = kept[len(kept)-1:]
	}
	p.missed = count - len(p.fire)
	return p
}

// fire runs what is due of e: its runs and its record in one commit.
func (s *Scheduler) fire(ctx context.Context, e *entry, now time.Time) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	if s.entries[e.name] != e {
		s.mu.Unlock()
		return // changed or deleted meanwhile
	}
	p := dueLocked(e, now)
	rec := store.Schedule{Name: e.name, Last: p.last, Fired: e.fired}
	c := e.c
	s.mu.Unlock()
	if p.last.IsZero() {
		s.mu.Lock()
		e.next = c.next(e.base)
		s.mu.Unlock()
		return
	}
	var err error
	if !e.file {
		if rec.Spec, err = c.marshal(); err != nil {
			s.log.Error("schedule does not encode", "schedule", e.name, "err", err)
			return
		}
	}
	run := engine.ScheduleRun{Queue: c.spec.Queue, Record: rec}
	for _, t := range p.fire {
		run.Jobs = append(run.Jobs, c.newJob(e.name, t))
		run.Times = append(run.Times, t)
	}
	if c.spec.Overlap == OverlapSkip {
		run.OverlapKey = "schedule:" + e.name
	}
	r, err := s.eng.FireSchedule(ctx, run)
	if err != nil && ctx.Err() != nil {
		return // stopping: the runs are fired after the restart
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e.base, e.next = p.last, c.next(p.last)
	s.count(e, ResultSkippedMissed, p.missed)
	if err != nil {
		s.count(e, ResultRefused, len(p.fire))
		s.log.Warn("schedule run refused", "schedule", e.name, "queue", c.spec.Queue, "runs", len(p.fire), "err", err)
		return
	}
	e.last, e.fired = p.last, r.Fired
	s.count(e, ResultFired, len(r.Results))
	s.count(e, ResultSkippedOverlap, r.Skipped)
	if p.missed > 0 || len(p.fire) > 1 {
		s.log.Info("schedule caught up missed runs", "schedule", e.name, "catch_up", c.spec.CatchUp, "enqueued", len(r.Results), "missed_skipped", p.missed)
	}
	if r.Skipped > 0 {
		s.log.Info("schedule run skipped: the last run is still waiting or running", "schedule", e.name, "queue", c.spec.Queue)
	}
}

// count adds n runs of result to e and to the totals; s.mu is held.
func (s *Scheduler) count(e *entry, result string, n int) {
	if n <= 0 {
		return
	}
	for i, r := range Results {
		if r == result {
			e.runs[i] += uint64(n)
			s.total[i].Add(uint64(n))
		}
	}
}
