package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// Lease hands out up to r.Max ready jobs of r.Queue, waiting up to r.Wait for
// some to arrive (a queue that does not exist yet is waited for, not made).
// Each leased job's attempt counter is durable before it is returned. An
// empty answer is not an error. A queue paused, or paused by the governor's
// level (SPEC 8), hands out nothing; a long poll on it waits and wakes when
// it is resumed or the level drops.
func (e *Engine) Lease(ctx context.Context, r LeaseRequest) ([]*job.Job, error) {
	q, err := e.checkLease(r)
	if err != nil {
		return nil, err
	}
	var timer *time.Timer
	for {
		var wake <-chan struct{}
		if q == nil {
			// Not created yet: wait for queues to be created, taken
			// before the look-up so that none is missed.
			wake = e.queueCreated()
			q = e.registered(r.Queue)
		}
		if q != nil {
			// Taken before the checks: a Resume, a level drop or new
			// jobs after them close it.
			wake = q.waitReady()
		}
		if q != nil && q.ready.Load() > 0 && e.dispatchable(q) {
			o := &op{kind: opLease, q: q, max: r.Max, ttr: r.TTR}
			if err := e.submit(ctx, o); err != nil {
				return nil, err
			}
			if len(o.jobs) > 0 {
				return o.jobs, nil
			}
		}
		if r.Wait <= 0 {
			return []*job.Job{}, nil
		}
		if timer == nil {
			timer = time.NewTimer(r.Wait)
			defer timer.Stop()
		}
		select {
		case <-wake:
		case <-timer.C:
			return []*job.Job{}, nil
		case <-ctx.Done():
			return []*job.Job{}, nil
		case <-e.stopCh:
			return []*job.Job{}, nil
		}
	}
}

// checkLease validates r and answers its queue, nil when it does not exist
// yet.
func (e *Engine) checkLease(r LeaseRequest) (*queue, error) {
	q, err := e.lookup(r.Queue)
	if err != nil {
		return nil, err
	}
	switch {
	case r.Max < 1 || r.Max > MaxLease:
		return nil, fmt.Errorf("%w: max: %d is outside 1..%d", job.ErrInvalidArgument, r.Max, MaxLease)
	case r.Wait < 0 || r.Wait > MaxLeaseWait:
		return nil, fmt.Errorf("%w: wait: %s is outside 0..%s", job.ErrInvalidArgument, r.Wait, MaxLeaseWait)
	case r.TTR < 0:
		return nil, fmt.Errorf("%w: ttr: must not be negative", job.ErrInvalidArgument)
	}
	return q, nil
}
