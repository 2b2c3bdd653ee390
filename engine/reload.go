package engine

import (
	"fmt"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// Reconfigure applies a new queue configuration while the engine runs
// (SIGHUP): classes, caps, reserves, rates, depths, sync modes, alerts,
// shedding, handlers and breakers of configured queues; queues that left the
// configuration fall back to the defaults (and to pull workers). Jobs,
// leases, counters and connections are untouched; running jobs finish with
// the handler they started with. The engine-wide settings (ring, payload
// limit, defaults, strict_queues) need a restart. A config that does not
// validate is refused and changes nothing.
func (e *Engine) Reconfigure(queues map[string]QueueConfig) error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	e.qmu.RLock()
	next := e.cfg
	e.qmu.RUnlock()
	next.Queues = queues
	if err := next.Validate(); err != nil {
		return err
	}
	if err := e.checkBytesKnown(queues); err != nil {
		return err
	}
	now := time.Now()
	e.qmu.Lock()
	e.cfg.Queues = queues // queueConfig reads it, under qmu, for queues made later
	all := make([]*queue, 0, len(e.queues)+len(queues))
	for name := range queues {
		if e.queues[name] == nil {
			e.addQueueLocked(newQueue(name, e.queueConfig(name), now))
		}
	}
	for name, q := range e.queues {
		q.setConf(e.queueConfig(name), now)
		all = append(all, q)
	}
	e.qmu.Unlock()

	var run []*queue // queues with a handler, for the scheduler
	for _, q := range all {
		if q.conf().Handler != nil {
			run = append(run, q)
		}
	}
	e.sched.setQueues(run)
	e.ageRescan.Store(true) // a max_age may be new
	for _, q := range all {
		q.wake()
	}
	e.log.Info("queues reconfigured", "configured", len(queues))
	return nil
}

// checkBytesKnown refuses a max_bytes on a queue whose bytes were not
// counted at the start (recover.go): its bound would be checked against
// the bytes enqueued since, not those it holds.
func (e *Engine) checkBytesKnown(queues map[string]QueueConfig) error {
	e.qmu.RLock()
	defer e.qmu.RUnlock()
	for name, qc := range queues {
		if q := e.queues[name]; qc.MaxBytes > 0 && q != nil && q.bytesUnknown.Load() {
			return fmt.Errorf("%w: queues.%s.max_bytes: the queue held jobs at the start, when it had no max_bytes, so its bytes were not counted: restart to apply it", job.ErrInvalidArgument, name)
		}
	}
	return nil
}
