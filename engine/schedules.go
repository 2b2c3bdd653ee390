package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// overlapKeyTTL is how long a schedule's overlap key lives: longer than any
// job waits, so that the key, not its expiry, decides (the next run
// overwrites it).
const overlapKeyTTL = 10 * 365 * 24 * time.Hour

// ScheduleRun is what one firing of a schedule writes, in one commit: the
// runs it enqueues into Queue and the schedule's record.
type ScheduleRun struct {
	Queue string
	// Jobs are the runs to enqueue; none when only the record moves (runs
	// skipped). Their Key is ignored: OverlapKey takes its place.
	Jobs []job.New
	// Times are the run times of Jobs, one each: Record.Fired becomes the
	// latest of those enqueued.
	Times []time.Time
	// OverlapKey, when set, skips a run while the job that the key names
	// (the schedule's last run) is ready, delayed or leased; a run that is
	// enqueued takes the key.
	OverlapKey string
	Record     store.Schedule
}

// ScheduleFired is the answer to FireSchedule.
type ScheduleFired struct {
	Results []job.Result // the runs enqueued
	Skipped int          // runs skipped for OverlapKey
	Fired   time.Time    // Record.Fired as written
}

// FireSchedule enqueues the runs of a schedule and writes its record in one
// commit, so that a crash keeps both or neither. The runs pass the queue's
// admission like any enqueue (a refusal writes nothing, the record
// included); the record is synced with them. Safe for concurrent use.
func (e *Engine) FireSchedule(ctx context.Context, run ScheduleRun) (ScheduleFired, error) {
	if len(run.OverlapKey) > store.MaxScheduleKey {
		return ScheduleFired{}, fmt.Errorf("%w: overlap key: longer than %d bytes", job.ErrInvalidArgument, store.MaxScheduleKey)
	}
	if len(run.Times) != len(run.Jobs) {
		return ScheduleFired{}, fmt.Errorf("%w: %d run times for %d runs", job.ErrInvalidArgument, len(run.Times), len(run.Jobs))
	}
	o := &op{kind: opSchedule, sched: &run.Record, text: run.OverlapKey, runs: run.Times}
	if len(run.Jobs) > 0 {
		rs, err := e.admitRun(run)
		if err != nil {
			e.Refused(run.Queue, len(run.Jobs), err)
			return ScheduleFired{}, err
		}
		o.q, o.news = rs, run.Jobs
	}
	if err := e.submit(ctx, o); err != nil {
		return ScheduleFired{}, err
	}
	return ScheduleFired{Results: o.results, Skipped: o.n, Fired: run.Record.Fired}, nil
}

// admitRun checks and admits the runs of a schedule as EnqueueBatch does.
func (e *Engine) admitRun(run ScheduleRun) (*queue, error) {
	q, err := e.target(run.Queue)
	if err != nil {
		return nil, err
	}
	if len(run.Jobs) > MaxBatchJobs {
		return nil, fmt.Errorf("%w: %d runs, at most %d", job.ErrTooLarge, len(run.Jobs), MaxBatchJobs)
	}
	now := time.Now()
	for i := range run.Jobs {
		run.Jobs[i].Key = ""
		if err := e.checkNew(&run.Jobs[i], now); err != nil {
			return nil, err
		}
	}
	if err := e.admit(q, len(run.Jobs), int64(payloadBytes(run.Jobs)), now); err != nil {
		return nil, err
	}
	return q, e.reserve(run.Jobs)
}

// CheckQueue answers the error an enqueue into name would get for the
// name alone (invalid, or not configured under strict_queues), creating
// nothing. Safe for concurrent use.
func (e *Engine) CheckQueue(name string) error {
	_, err := e.target(name)
	return err
}

// PutSchedule writes a schedule's record (durably: the answer follows its
// sync). Safe for concurrent use.
func (e *Engine) PutSchedule(ctx context.Context, rec store.Schedule) error {
	if err := job.CheckQueueName(rec.Name); err != nil {
		return fmt.Errorf("%w: schedule name: %w", job.ErrInvalidArgument, err)
	}
	return e.submit(ctx, &op{kind: opSchedule, sched: &rec})
}

// DeleteSchedule removes a schedule's record (durably). Its overlap key
// stays until the next run of a schedule of that name overwrites it. Safe
// for concurrent use.
func (e *Engine) DeleteSchedule(ctx context.Context, name string) error {
	return e.submit(ctx, &op{kind: opSchedule, sched: &store.Schedule{Name: name}, keep: true})
}

// Schedules reads every stored schedule record, sorted by name. Safe for
// concurrent use.
func (e *Engine) Schedules() ([]store.Schedule, error) {
	var out []store.Schedule
	err := e.store.View(func(r store.ReadTx) error {
		var err error
		out, err = r.Schedules()
		return err
	})
	return out, err
}

// applySchedule writes a schedule's record (o.keep: deletes it) and
// enqueues its runs, if any, in the same transaction. A run the queue's
// bounds refuse refuses the whole op: the record is not written either.
func (e *Engine) applySchedule(b *batch, o *op) error {
	if payload := payloadBytes(o.news); b.writes > 0 && b.payload+payload > maxTxnPayload {
		if err := e.rotate(b); err != nil {
			return err
		}
	}
	ok, err := e.fits(b, store.Op{Enqueue: o.news, Schedule: o.sched})
	if err != nil {
		return err
	}
	if !ok {
		o.err = fmt.Errorf("%w: %d runs of schedule %s do not fit one transaction", job.ErrTooLarge, len(o.news), o.sched.Name)
		return nil
	}
	if len(o.news) > 0 {
		if err := e.enqueueRuns(b, o); err != nil || o.err != nil {
			return err
		}
	}
	if o.keep {
		err = b.txn.DeleteSchedule(o.sched.Name)
	} else {
		err = b.txn.PutSchedule(*o.sched)
	}
	if err != nil {
		return fmt.Errorf("schedule %s: %w", o.sched.Name, err)
	}
	b.writes++
	b.needSync = true
	return nil
}

// enqueueRuns enqueues the runs of o that overlap does not skip, within
// the queue's bounds (evicting for them, as an enqueue does).
func (e *Engine) enqueueRuns(b *batch, o *op) error {
	q, err := e.adopt(o.q)
	if err != nil {
		o.err = err
		return nil
	}
	o.q = q
	runs, times := o.news, o.runs
	if key := o.text; key != "" {
		waiting, err := e.overlaps(b, q, key)
		if err != nil {
			return err
		}
		// A run enqueued here waits (ready) while the next is considered.
		keep := 1
		if waiting {
			keep = 0
		}
		o.n = len(runs) - keep
		runs, times = runs[:keep], times[:keep]
	}
	if len(runs) == 0 {
		return nil
	}
	victims, refusal, err := e.makeRoom(b, q, runs)
	if err != nil {
		return err
	}
	if refusal != nil {
		o.err = refusal
		return nil
	}
	if len(victims) > 0 {
		ok, err := e.evictFor(b, q, runs, victims)
		if err != nil {
			return err
		}
		if !ok {
			o.err = fmt.Errorf("%w: evicting %d jobs for runs of schedule %s does not fit one transaction", job.ErrTooLarge, len(victims), o.sched.Name)
			return nil
		}
	}
	for i := range runs {
		r, err := e.enqueueOne(b, q, &runs[i])
		if err != nil {
			return err
		}
		if o.text != "" {
			if err := b.txn.PutDedupe(q.name, o.text, r.ID, overlapKeyTTL); err != nil {
				return fmt.Errorf("put overlap key: %w", err)
			}
		}
		o.results = append(o.results, r)
		if times[i].After(o.sched.Fired) {
			o.sched.Fired = times[i]
		}
	}
	b.payload += payloadBytes(runs)
	q.in.add(b.now, len(runs))
	b.wrote(q)
	return nil
}

// overlaps reports whether the job that holds the overlap key is still
// ready, delayed or leased.
func (e *Engine) overlaps(b *batch, q *queue, key string) (bool, error) {
	id, found, err := b.txn.Dedupe(q.name, key)
	if err != nil || !found {
		if err != nil {
			err = fmt.Errorf("overlap key: %w", err)
		}
		return false, err
	}
	j, err := b.txn.Job(id, false)
	switch {
	case errors.Is(err, job.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return j.State == job.StateReady || j.State == job.StateDelayed || j.State == job.StateLeased, nil
}
