package engine

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

type opKind uint8

const (
	opEnqueue opKind = iota + 1
	opLease
	opAck
	opNack
	opFail
	opExtend
	opCancel
	opPurge
	opDeadRetry
	opDeadPurge
	opMove
	opAckBatch
	opRetry
	opSchedule
	opAckLease
)

// op is one request to the committer: its inputs, then its answer. The
// committer writes the answer fields and closes done.
type op struct {
	kind  opKind
	q     *queue
	news  []job.New
	id    job.ID
	lease string
	delay time.Duration
	text  string
	ttr   time.Duration
	max   int
	to    *queue          // opMove
	from  job.State       // opMove: the state moved out of
	pull  bool            // opAck, opFail: a pull worker's answer, remembered (finishedLeases)
	acks  []op            // opAckBatch, opAckLease: one opAck each (opAckBatch from a batch worker: opNack, opFail too), answered through their err
	keep  bool            // opNack: the job never reached the target; give the attempt back. opSchedule: delete the record
	sched *store.Schedule // opSchedule: the record written; text is the overlap key, n counts the runs skipped
	runs  []time.Time     // opSchedule: the run time of each of news
	// result is opAck's result, kept when the queue retains done jobs.
	result []byte

	results []job.Result
	jobs    []*job.Job
	state   job.State
	at      time.Time
	n       int
	err     error
	done    chan struct{}
	// then, when set, is called by the syncer with the answer instead of
	// closing done (in-process dispatch: no goroutine waits).
	then func(*op)
}

// Limits on what one request may carry.
const (
	MaxBatchJobs   = 1000
	maxHeaders     = 64
	maxHeaderBytes = 8 << 10
	maxKeyLen      = 256
	maxErrorLen    = 2 << 10
	MaxLease       = 100
	MaxLeaseWait   = 60 * time.Second
)

// ShedRetryAfter is the retry-after of a job refused by the governor's level.
const ShedRetryAfter = 5 * time.Second

// Enqueue stores one job and answers once it is committed (and synced, for
// queues with SyncAlways: Result.Durable says which).
func (e *Engine) Enqueue(ctx context.Context, n job.New) (job.Result, error) {
	rs, err := e.EnqueueBatch(ctx, n.Queue, []job.New{n})
	if err != nil {
		return job.Result{}, err
	}
	return rs[0], nil
}

// EnqueueBatch stores jobs into queue atomically: all or none. Each job's
// Queue field is ignored. A refusal counts len(jobs) in the queue's
// rejected totals (see Refused).
func (e *Engine) EnqueueBatch(ctx context.Context, queue string, jobs []job.New) ([]job.Result, error) {
	rs, err := e.enqueueBatch(ctx, queue, jobs)
	if err != nil {
		e.Refused(queue, len(jobs), err)
	}
	return rs, err
}

// EnqueueBatchUncounted is EnqueueBatch for a caller that may offer the
// same jobs again (one by one after a refused batch, or after a transient
// error) and so counts its final refusals itself, with Refused: a refusal
// here is not counted, so that a job refused once is counted once.
func (e *Engine) EnqueueBatchUncounted(ctx context.Context, queue string, jobs []job.New) ([]job.Result, error) {
	return e.enqueueBatch(ctx, queue, jobs)
}

func (e *Engine) enqueueBatch(ctx context.Context, queue string, jobs []job.New) ([]job.Result, error) {
	q, err := e.target(queue)
	if err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("%w: batch: no jobs", job.ErrInvalidArgument)
	}
	if len(jobs) > MaxBatchJobs {
		return nil, fmt.Errorf("%w: batch: %d jobs, at most %d", job.ErrTooLarge, len(jobs), MaxBatchJobs)
	}
	now := time.Now()
	for i := range jobs {
		if err := e.checkNew(&jobs[i], now); err != nil {
			if len(jobs) > 1 {
				err = fmt.Errorf("job %d: %w", i+1, err)
			}
			return nil, err
		}
	}
	if err := e.admit(q, len(jobs), int64(payloadBytes(jobs)), now); err != nil {
		return nil, err
	}
	if err := e.reserve(jobs); err != nil {
		return nil, err
	}
	o := &op{kind: opEnqueue, q: q, news: jobs}
	if err := e.submit(ctx, o); err != nil {
		return nil, err
	}
	e.hEnqueue.observe(time.Since(now).Seconds())
	return o.results, nil
}

func (e *Engine) checkNew(n *job.New, now time.Time) error {
	switch {
	case len(n.Payload) > e.cfg.MaxPayload:
		return fmt.Errorf("%w: payload is %d bytes, max_payload is %d", job.ErrTooLarge, len(n.Payload), e.cfg.MaxPayload)
	case n.MaxAttempts < 0 || n.MaxAttempts > 1000:
		return fmt.Errorf("%w: max_attempts: %d is outside 0..1000", job.ErrInvalidArgument, n.MaxAttempts)
	case n.TTR < 0:
		return fmt.Errorf("%w: ttr: must not be negative", job.ErrInvalidArgument)
	case n.Delay < 0:
		return fmt.Errorf("%w: delay: must not be negative", job.ErrInvalidArgument)
	case n.ExpiresIn < 0:
		return fmt.Errorf("%w: expires_in: must not be negative", job.ErrInvalidArgument)
	case len(n.Key) > maxKeyLen:
		return fmt.Errorf("%w: key: longer than %d bytes", job.ErrInvalidArgument, maxKeyLen)
	case n.KeyMode > job.KeyReplace:
		return fmt.Errorf("%w: key_mode: unknown mode %d", job.ErrInvalidArgument, n.KeyMode)
	case n.KeyMode != 0 && n.Key == "":
		return fmt.Errorf("%w: key_mode: %s needs a key", job.ErrInvalidArgument, n.KeyMode)
	case len(n.Headers) > maxHeaders:
		return fmt.Errorf("%w: headers: more than %d", job.ErrInvalidArgument, maxHeaders)
	}
	if err := job.CheckTrace(n.TraceParent, n.TraceState); err != nil {
		return err
	}
	if n.Group != "" {
		if err := job.CheckGroupName(n.Group); err != nil {
			return err
		}
	}
	if err := e.checkFollowUp(n.OnSuccess); err != nil {
		return err
	}
	size := 0
	for k, v := range n.Headers {
		if k == "" {
			return fmt.Errorf("%w: headers: empty name", job.ErrInvalidArgument)
		}
		// Headers go out as JSON strings, which would alter invalid UTF-8.
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("%w: headers: %q: not valid UTF-8", job.ErrInvalidArgument, k)
		}
		size += len(k) + len(v)
	}
	if size > maxHeaderBytes {
		return fmt.Errorf("%w: headers: more than %d bytes", job.ErrInvalidArgument, maxHeaderBytes)
	}
	if n.ExpiresAt.IsZero() && n.ExpiresIn > 0 {
		n.ExpiresAt = now.Add(n.ExpiresIn)
	}
	if !n.ExpiresAt.IsZero() && !n.ExpiresAt.After(now) {
		return fmt.Errorf("%w: expires_at: %s is not in the future", job.ErrInvalidArgument, n.ExpiresAt.Format(time.RFC3339))
	}
	if n.RunAt.IsZero() && n.Delay > 0 {
		n.RunAt = now.Add(n.Delay)
	}
	return nil
}

// admit applies the queue's admission rules to n jobs of bytes payload
// bytes: bounds (max_depth, max_bytes) and rate. A refused job changes
// nothing.
func (e *Engine) admit(q *queue, n int, bytes int64, now time.Time) error {
	if at, level := q.refuseAt(), job.Level(e.level.Load()); at != levelNever && level >= at {
		return job.Retry(fmt.Errorf("%w: queue %q (%s) is shed at governor level %s", job.ErrShed, q.name, q.conf().Class, level), ShedRetryAfter)
	}
	if err := q.admitBounds(n, bytes); err != nil {
		return err
	}
	if b := q.bucket.Load(); b != nil {
		if ok, wait := b.take(n, now); !ok {
			return job.Retry(fmt.Errorf("%w: queue %q takes %g jobs/s", job.ErrRateLimited, q.name, q.conf().Rate), wait)
		}
	}
	return nil
}

// reserve asks a store that can run out of space (store.SpaceReserver) to
// admit jobs; every queue, critical included, is refused when it cannot.
func (e *Engine) reserve(jobs []job.New) error {
	r, ok := e.store.(store.SpaceReserver)
	if !ok {
		return nil
	}
	if err := r.Reserve(jobs); err != nil {
		return job.Retry(err, 5*time.Second)
	}
	return nil
}

// Ack finishes a leased job: it is deleted, or kept in state done with
// result when its queue retains finished jobs (retain_done), and never
// delivered again. Repeated with the same lease (a lost answer), it answers
// nil again while the lease is among the last 4096 that Ack or Fail
// finished since the engine started; after a Fail by that lease it answers
// job.ErrLeaseLost. The result is kept up to the queue's max_result bytes.
func (e *Engine) Ack(ctx context.Context, id job.ID, lease string, result []byte) error {
	return e.submit(ctx, &op{kind: opAck, id: id, lease: lease, pull: true, result: result})
}

// NackBackoff as the delay of Nack retries the job after the queue's
// backoff.
const NackBackoff time.Duration = -1

// Nack gives a leased job back for a retry after delay: 0 makes it ready
// now, NackBackoff waits for the queue's backoff. A job whose attempts are
// spent goes dead. It answers the job's new state.
func (e *Engine) Nack(ctx context.Context, id job.ID, lease string, delay time.Duration, reason string) (job.State, error) {
	if delay < 0 && delay != NackBackoff {
		return 0, fmt.Errorf("%w: delay: must not be negative", job.ErrInvalidArgument)
	}
	o := &op{kind: opNack, id: id, lease: lease, delay: delay, text: truncate(reason, maxErrorLen)}
	if err := e.submit(ctx, o); err != nil {
		return 0, err
	}
	return o.state, nil
}

// Fail sends a leased job straight to the dead-letter set. Repeated with
// the same lease it answers nil again, as Ack does.
func (e *Engine) Fail(ctx context.Context, id job.ID, lease string, reason string) error {
	return e.submit(ctx, &op{kind: opFail, id: id, lease: lease, text: truncate(reason, maxErrorLen), pull: true})
}

// Extend renews a lease for ttr from now and answers the new deadline.
// ttr 0 renews by the lease's own TTR: the one it was leased with, or the
// last one Extend was given (after a restart of the engine, the job's TTR).
func (e *Engine) Extend(ctx context.Context, id job.ID, lease string, ttr time.Duration) (time.Time, error) {
	if ttr < 0 {
		return time.Time{}, fmt.Errorf("%w: ttr: must not be negative", job.ErrInvalidArgument)
	}
	o := &op{kind: opExtend, id: id, lease: lease, ttr: ttr}
	if err := e.submit(ctx, o); err != nil {
		return time.Time{}, err
	}
	return o.at, nil
}

// Job reads a job with its payload from committed data.
func (e *Engine) Job(ctx context.Context, id job.ID) (*job.Job, error) {
	var j *job.Job
	err := e.store.View(func(tx store.ReadTx) error {
		var err error
		j, err = tx.Job(id, true)
		return err
	})
	if err != nil {
		return nil, err // the store names the job
	}
	return j, nil
}

// Cancel deletes a job that is not leased (job.ErrConflict while it is).
func (e *Engine) Cancel(ctx context.Context, id job.ID) error {
	return e.submit(ctx, &op{kind: opCancel, id: id})
}

// RetryDead moves one dead job back to ready, its attempts reset
// (job.ErrConflict when the job is not dead).
func (e *Engine) RetryDead(ctx context.Context, id job.ID) error {
	return e.submit(ctx, &op{kind: opRetry, id: id})
}

// Pause stops dispatch of a queue; ingest continues.
func (e *Engine) Pause(ctx context.Context, queue string) error {
	q, err := e.existingQueue(queue)
	if err != nil {
		return err
	}
	q.paused.Store(true)
	e.log.Info("queue paused", "queue", queue)
	return nil
}

// Resume restarts dispatch of a paused queue.
func (e *Engine) Resume(ctx context.Context, queue string) error {
	q, err := e.existingQueue(queue)
	if err != nil {
		return err
	}
	if q.paused.Swap(false) {
		e.log.Info("queue resumed", "queue", queue)
	}
	q.wake()
	e.sched.kick()
	return nil
}

// Purge deletes a queue's ready and delayed jobs and answers how many.
func (e *Engine) Purge(ctx context.Context, queue string) (int, error) {
	return e.sweep(ctx, queue, opPurge, 0)
}

// DeadRetry moves up to limit dead jobs back to ready with their attempts
// reset, oldest first.
func (e *Engine) DeadRetry(ctx context.Context, queue string, limit int) (int, error) {
	if limit < 1 {
		return 0, fmt.Errorf("%w: limit: must be at least 1", job.ErrInvalidArgument)
	}
	return e.sweep(ctx, queue, opDeadRetry, limit)
}

// DeadPurge deletes a queue's dead jobs and answers how many.
func (e *Engine) DeadPurge(ctx context.Context, queue string) (int, error) {
	return e.sweep(ctx, queue, opDeadPurge, 0)
}

// sweep runs a bulk operation in bounded steps, one commit each, so that a
// million-job purge neither builds a huge transaction nor stalls other work.
func (e *Engine) sweep(ctx context.Context, queue string, kind opKind, limit int) (int, error) {
	q, err := e.existingQueue(queue)
	if err != nil {
		return 0, err
	}
	const step = 1000
	total := 0
	for limit == 0 || total < limit {
		n := step
		if limit > 0 {
			n = min(step, limit-total)
		}
		o := &op{kind: kind, q: q, max: n}
		if err := e.submit(ctx, o); err != nil {
			return total, err
		}
		total += o.n
		if o.n < n {
			break
		}
	}
	return total, nil
}

// maxPageBytes bounds the payload bytes one DeadList page holds, so a page
// of large payloads cannot exhaust a small device's memory.
const maxPageBytes = 8 << 20

// DeadList lists up to limit dead jobs of queue with id > after, oldest
// first, and the id to pass as after for the next page (0 when done). A page
// ends early when its payloads reach 8 MiB.
func (e *Engine) DeadList(ctx context.Context, queue string, after job.ID, limit int) ([]*job.Job, job.ID, error) {
	if _, err := e.existingQueue(queue); err != nil {
		return nil, 0, err
	}
	if limit < 1 || limit > 1000 {
		return nil, 0, fmt.Errorf("%w: limit: %d is outside 1..1000", job.ErrInvalidArgument, limit)
	}
	var out []*job.Job
	var next job.ID
	err := e.store.View(func(tx store.ReadTx) error {
		ids, err := tx.Dead(queue, after, limit+1)
		if err != nil {
			return err
		}
		more := len(ids) > limit
		if more {
			ids = ids[:limit]
		}
		bytes := 0
		for i, id := range ids {
			j, err := tx.Job(id, true)
			if err != nil {
				return fmt.Errorf("list dead jobs: %w", err)
			}
			out = append(out, j)
			if bytes += len(j.Payload); bytes >= maxPageBytes && i < len(ids)-1 {
				more = true
				break
			}
		}
		if more {
			next = out[len(out)-1].ID
		}
		return nil
	})
	return out, next, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// answer hands an op its answer.
func (o *op) answer() {
	if o.then != nil {
		o.then(o)
		return
	}
	close(o.done)
}
