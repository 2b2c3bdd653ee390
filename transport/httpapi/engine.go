package httpapi

import (
	"context"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// Engine is what the HTTP API needs of the engine, by who uses it;
// *engine.Engine satisfies it. Implementations must be safe for concurrent
// use. The server never retains or reuses a slice it passes in (payloads
// belong to the engine after Enqueue and EnqueueBatch).
type Engine interface {
	Producer
	Worker
	Admin
	Monitor
}

// Producer is what the enqueue endpoints use.
type Producer interface {
	Enqueue(ctx context.Context, n job.New) (job.Result, error)
	// EnqueueBatch enqueues all of jobs or none.
	EnqueueBatch(ctx context.Context, queue string, jobs []job.New) ([]job.Result, error)
	// Refused counts n jobs for queue that the server refused with err
	// before they reached Enqueue or EnqueueBatch (which count their own).
	Refused(queue string, n int, err error)
}

// Worker is what the endpoints of a job's lease use.
type Worker interface {
	// Lease long-polls up to r.Wait itself; it returns early with ctx.
	Lease(ctx context.Context, r engine.LeaseRequest) ([]*job.Job, error)
	// Ack keeps result with the job when its queue retains done jobs.
	Ack(ctx context.Context, id job.ID, lease string, result []byte) error
	// AckBatch acks many jobs in one commit; it answers an error per ack
	// (nil: acked) or one error for the whole call.
	AckBatch(ctx context.Context, acks []engine.AckRequest) ([]error, error)
	// AckLease acks acks (each answered as AckBatch answers it) and leases
	// as Lease does, in one commit.
	AckLease(ctx context.Context, acks []engine.AckRequest, r engine.LeaseRequest) ([]error, []*job.Job, error)
	// Nack's delay is engine.NackBackoff for the queue's backoff.
	Nack(ctx context.Context, id job.ID, lease string, delay time.Duration, reason string) (job.State, error)
	Fail(ctx context.Context, id job.ID, lease string, reason string) error
	Extend(ctx context.Context, id job.ID, lease string, ttr time.Duration) (time.Time, error)
}

// Admin is what the endpoints that inspect and manage jobs and queues use.
type Admin interface {
	// Job reads a job with its payload.
	Job(ctx context.Context, id job.ID) (*job.Job, error)
	Cancel(ctx context.Context, id job.ID) error
	// RetryDead moves one dead job back to ready, attempts reset.
	RetryDead(ctx context.Context, id job.ID) error
	Pause(ctx context.Context, queue string) error
	Resume(ctx context.Context, queue string) error
	// Purge deletes a queue's ready and delayed jobs.
	Purge(ctx context.Context, queue string) (int, error)
	// DeadList lists dead jobs with ID > after, oldest first; next is 0
	// when there are no more.
	DeadList(ctx context.Context, queue string, after job.ID, limit int) (jobs []*job.Job, next job.ID, err error)
	DeadRetry(ctx context.Context, queue string, limit int) (int, error)
	DeadPurge(ctx context.Context, queue string) (int, error)
	Move(ctx context.Context, r engine.MoveRequest) (moved, remaining int, err error)
}

// Monitor is what stats, metrics, readiness and the status page read.
type Monitor interface {
	Stats() engine.Stats
	QueueStats(name string) (engine.QueueStats, error)
	// Ready answers nil while the engine accepts jobs.
	Ready() error
	// Shedding answers the governor's level and the queues it sheds.
	Shedding() engine.Shedding
	// Histograms snapshots the engine's histograms (read at scrape time).
	Histograms() engine.Histograms
}
