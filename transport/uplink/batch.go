package uplink

import (
	"context"
	"time"

	"golang.org/x/time/rate"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// classHandler is an uplink's handler for the queues of one kind (critical
// and high, or the others). As an engine.BatchHandler it takes the engine's
// batches of up to batch.max_jobs, so that a backlog costs the engine one
// lease and one answer per batch rather than per job.
type classHandler struct {
	u       *Uplink
	high    bool
	ordered bool // engine.QueueConfig.Ordered
}

// Handle sends one job.
func (h classHandler) Handle(ctx context.Context, j *job.Job) engine.Outcome {
	return h.u.handle(ctx, h, []*job.Job{j})[0]
}

// BatchMax is the uplink's batch.max_jobs.
func (h classHandler) BatchMax() int { return h.u.cfg.Batch.MaxJobs }

// HandleBatch sends jobs, in as few batches as batch.max_jobs and
// batch.max_bytes allow, each job answered by its own acknowledgement.
func (h classHandler) HandleBatch(ctx context.Context, jobs []*job.Job) []engine.Outcome {
	return h.u.handle(ctx, h, jobs)
}

// pace waits until batch, of size payload bytes, may go under max_rate and
// max_bandwidth. A batch without critical or high jobs gives way to them:
// when some arrive during its wait, it gives its tokens back and answers
// them as first, to be sent before it. The error is errDown once ctx ended.
func (u *Uplink) pace(ctx context.Context, batch []*item, size int) (first []*item, err error) {
	if u.jobs == nil && u.bytes == nil {
		return nil, nil
	}
	now := time.Now()
	rs := append(reserve(u.jobs, now, len(batch)), reserve(u.bytes, now, size)...)
	var d time.Duration
	for _, r := range rs {
		d = max(d, r.DelayFrom(now))
	}
	if d <= 0 {
		return nil, nil
	}
	var high chan []*item // nil: a batch of critical or high jobs waits its turn
	if !batch[0].high {
		high = u.high
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil, nil
	case first = <-high:
	case <-ctx.Done():
		err = errDown
	}
	now = time.Now()
	for i := len(rs) - 1; i >= 0; i-- {
		rs[i].CancelAt(now)
	}
	return first, err
}

// reserve takes n tokens from l, in bursts when n is above its burst (a
// job larger than max_bytes goes alone); a nil l is no cap.
func reserve(l *rate.Limiter, now time.Time, n int) []*rate.Reservation {
	if l == nil {
		return nil
	}
	var rs []*rate.Reservation
	for n > 0 {
		k := min(n, l.Burst())
		rs = append(rs, l.ReserveN(now, k))
		n -= k
	}
	return rs
}

// pipeline sends batch through s and leaves its acknowledgements to a
// goroutine of u's, which answers its jobs after the batches sent before
// it were answered; it first waits for a free
// place among the maxInFlight batches, errDown once ctx ended.
func (u *Uplink) pipeline(ctx context.Context, s sender, batch []*item) error {
	select {
	case u.inflight <- struct{}{}:
	case <-ctx.Done():
		return errDown
	}
	wait := s.send(batch)
	prev, done := u.finished, make(chan struct{})
	u.finished = done
	u.wg.Go(func() {
		defer func() { <-u.inflight }()
		errs := wait(ctx)
		if prev != nil {
			<-prev // answered in the order sent: see finished
		}
		u.finish(batch, errs)
		close(done)
	})
	return nil
}
