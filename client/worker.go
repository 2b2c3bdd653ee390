package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/edgeq/edgeq/engine"
)

// Handler runs one job. Its answer decides what becomes of the job: nil
// acks it; an error that Dead wrapped sends it to the dead-letter set at
// once; any other error retries it after the queue's backoff (a nack). The
// error's text becomes the job's last_error. ctx ends when the lease is
// lost (the job may then run elsewhere) or when the worker stops hard (its
// Grace passed). A panic is an error.
type Handler func(ctx context.Context, j *Job) error

// deadError marks an error as permanent (Dead).
type deadError struct{ err error }

func (e deadError) Error() string { return e.err.Error() }
func (e deadError) Unwrap() error { return e.err }

// Dead wraps err so that the worker sends the job to the dead-letter set
// instead of retrying it: for input no retry can mend.
func Dead(err error) error { return deadError{err} }

// Worker runs a Handler for the jobs of one queue. Set its fields, then
// call Run.
type Worker struct {
	Client      *Client
	Queue       string
	Concurrency int           // jobs run at once; 0: 1
	TTR         time.Duration // each lease's time to run; 0: the job's or the queue's
	Wait        time.Duration // how long one lease request waits for a job; 0: 30 s
	Grace       time.Duration // at stop, how long running jobs may finish; 0: 30 s
	Logger      *slog.Logger  // nil: no logs
}

// answerTimeout bounds one ack, nack, fail or extend.
const answerTimeout = 10 * time.Second

// Run leases jobs one at a time in each of Concurrency slots and runs h for
// each, its lease extended at half its remaining time while h runs, until
// ctx ends. A job's ack rides on its slot's next lease request (one
// request and one commit on the daemon for both, Client.AckLease). Then it stops gracefully: it leases no more, lets the running
// handlers finish for up to Grace, then cancels their context and releases
// their jobs (a nack with no delay, so they are ready again at once; the
// attempt counts). It answers nil after such a stop, or the error that
// stopped it sooner: a refusal no retry mends (400, 401, 403, 404), after
// which the running handlers are stopped the same way. Other failures to
// lease (the daemon restarting, 429, 503) are logged and retried after a
// second.
func (w *Worker) Run(ctx context.Context, h Handler) error {
	switch {
	case w.Client == nil:
		return errors.New("client: Worker.Client is nil")
	case w.Queue == "":
		return errors.New("client: Worker.Queue is empty")
	case h == nil:
		return errors.New("client: nil Handler")
	case w.Concurrency < 0 || w.TTR < 0 || w.Wait < 0 || w.Grace < 0:
		return errors.New("client: Worker's Concurrency, TTR, Wait and Grace must not be negative")
	}
	log := cmp.Or(w.Logger, slog.New(slog.DiscardHandler)).With("queue", w.Queue)
	leaseCtx, stopLeasing := context.WithCancelCause(ctx)
	defer stopLeasing(nil)
	// Handlers run under jobCtx, not ctx: a stop lets them finish.
	jobCtx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopJobs()

	var slots sync.WaitGroup
	for range max(w.Concurrency, 1) {
		slots.Go(func() { w.slot(leaseCtx, jobCtx, stopLeasing, h, log) })
	}
	done := make(chan struct{})
	go func() { slots.Wait(); close(done) }()
	select {
	case <-done:
	case <-leaseCtx.Done():
		t := time.NewTimer(cmp.Or(w.Grace, 30*time.Second))
		select {
		case <-done:
		case <-t.C:
			log.Warn("grace passed: stopping the running jobs and releasing them")
			stopJobs()
			<-done
		}
		t.Stop()
	}
	if err := context.Cause(leaseCtx); err != nil && !errors.Is(err, ctx.Err()) {
		return err
	}
	return nil
}

// slot leases and runs one job at a time until leaseCtx ends. The ack of
// a job that succeeded rides on the next lease request (one request and
// one commit for both); at the end it is sent alone.
func (w *Worker) slot(leaseCtx, jobCtx context.Context, fail context.CancelCauseFunc, h Handler, log *slog.Logger) {
	var done []AckItem // acks for the next lease request
	defer func() { w.ackAlone(jobCtx, done, log) }()
	for leaseCtx.Err() == nil {
		jobs, errs, err := w.Client.AckLease(leaseCtx, w.Queue, 1, cmp.Or(w.Wait, 30*time.Second), w.TTR, done)
		switch {
		case leaseCtx.Err() != nil:
			return
		case fatal(err):
			fail(fmt.Errorf("client: lease from %s: %w", w.Queue, err))
			return
		case err != nil:
			log.Warn("lease failed; trying again in a second", "err", err)
			select {
			case <-leaseCtx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for i, err := range errs {
			if err != nil {
				log.Warn("answer the daemon", "job", done[i].ID, "err", err)
			}
		}
		done = done[:0]
		for i := range jobs {
			if a := w.run(jobCtx, &jobs[i], h, log); a != nil {
				done = append(done, *a)
			}
		}
	}
}

// ackAlone sends the acks that no lease request took; an ack a lease
// request may have made already answers nil again.
func (w *Worker) ackAlone(jobCtx context.Context, done []AckItem, log *slog.Logger) {
	for _, a := range done {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(jobCtx), answerTimeout)
		if err := w.Client.Ack(ctx, a.ID, a.Lease); err != nil {
			log.Warn("answer the daemon", "job", a.ID, "err", err)
		}
		cancel()
	}
}

// fatal reports whether a lease refusal is one no retry mends.
func fatal(err error) bool {
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.Status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return false
}

// run runs h for one leased job, extending its lease meanwhile, and
// answers the daemon; the ack of a job that succeeded it answers instead,
// for the next lease request to carry.
func (w *Worker) run(jobCtx context.Context, j *Job, h Handler, log *slog.Logger) *AckItem {
	log = log.With("job", j.ID, "attempt", j.Attempt)
	if j.Lease == nil {
		log.Error("leased job without a lease")
		return nil
	}
	lease := j.Lease.ID
	ctx, cancel := context.WithCancel(jobCtx)
	var ext sync.WaitGroup
	ext.Go(func() { w.extend(ctx, cancel, j.ID, lease, j.Lease.ExpiresAt, log) })
	err := call(ctx, h, j)
	lost := ctx.Err() != nil && jobCtx.Err() == nil // the extender gave up the lease
	cancel()
	ext.Wait()

	actx, acancel := context.WithTimeout(context.WithoutCancel(jobCtx), answerTimeout)
	defer acancel()
	var answer error
	switch {
	case lost:
		log.Warn("lease lost while the job ran: not answered", "err", err)
		return nil
	case jobCtx.Err() != nil:
		_, answer = w.Client.Nack(actx, j.ID, lease, 0, "worker stopped before the job finished")
	case err == nil:
		return &AckItem{ID: j.ID, Lease: lease}
	case errors.As(err, new(deadError)):
		answer = w.Client.Fail(actx, j.ID, lease, err.Error())
	default:
		_, answer = w.Client.Nack(actx, j.ID, lease, engine.NackBackoff, err.Error())
	}
	if answer != nil {
		log.Warn("answer the daemon", "err", answer)
	}
	return nil
}

// call runs h, turning a panic into an error.
func call(ctx context.Context, h Handler, j *Job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return h(ctx, j)
}

// extend renews the lease at half its remaining time until ctx ends; when
// the lease is lost it cancels the job's context (stop).
func (w *Worker) extend(ctx context.Context, stop context.CancelFunc, id, lease string, expires time.Time, log *slog.Logger) {
	for {
		every := max(time.Until(expires)/2, 5*time.Millisecond)
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, min(max(every, time.Second), answerTimeout))
		exp, err := w.Client.Extend(rctx, id, lease, w.TTR)
		cancel()
		switch {
		case err == nil:
			expires = exp
		case ctx.Err() != nil:
			return
		case errors.Is(err, ErrLeaseLost), errors.Is(err, ErrNotFound):
			log.Warn("lease lost", "err", err)
			stop()
			return
		default:
			log.Warn("extend lease; trying again", "err", err)
			expires = time.Now().Add(2 * every)
		}
	}
}
