package engine

import "time"

// Breaker configures a queue's circuit breaker: after Failures consecutive
// target failures the queue stops dispatching for CoolDown, then probes
// with one job.
type Breaker struct {
	Failures int
	CoolDown time.Duration
}

// BreakerState is a circuit breaker's state.
type BreakerState uint8

// Breaker states.
const (
	BreakerClosed BreakerState = iota
	BreakerOpen
	BreakerHalfOpen
)

func (s BreakerState) String() string {
	return [...]string{"closed", "open", "half-open"}[s]
}

// breakerLocked updates d's circuit breaker after an outcome.
func (s *sched) breakerLocked(d *queueSlots, out Outcome, now time.Time) {
	b := d.q.conf().Breaker
	if b.Failures <= 0 {
		return
	}
	if out.TargetFailed {
		d.failures++
		if d.breaker == BreakerHalfOpen || (d.breaker == BreakerClosed && d.failures >= b.Failures) {
			d.breaker, d.breakerUntil, d.probing = BreakerOpen, now.Add(b.CoolDown), false
			s.e.log.Warn("breaker open", "queue", d.q.name, "failures", d.failures, "cool_down", b.CoolDown)
		}
		return
	}
	d.failures = 0
	if d.breaker != BreakerClosed {
		d.breaker, d.probing = BreakerClosed, false
		s.e.log.Info("breaker closed", "queue", d.q.name)
	}
}
