// Package client is edgeq's Go client: a producer's enqueues and a
// worker's loop, over the daemon's HTTP API (README, "HTTP API").
//
// A producer:
//
//	c := client.New("http://127.0.0.1:7070", os.Getenv("EDGEQ_TOKEN"))
//	r, err := c.Enqueue(ctx, "mail", []byte(`{"to":"ops@example.com"}`),
//		client.EnqueueOptions{ContentType: "application/json", Key: "msg-42"})
//
// Enqueue answers once the job is durable (fsynced, with sync: always); a
// refusal is an *APIError whose Code is the API's error code (queue_full,
// shed, ...) and which unwraps to the engine's sentinel errors
// (errors.Is(err, client.ErrQueueFull)). Client.Coalesce turns on the
// client-side group commit: concurrent Enqueue and Ack calls share batch
// requests while one is in flight.
//
// A worker: Worker leases jobs of one queue, runs a Handler for each with
// its lease extended at half its TTR, acks, retries or sends it dead by the
// handler's answer, and stops gracefully (see Worker.Run).
//
// Client is the client the edgeq command line itself uses; its types are
// those of package transport/httpapi, given here their public names.
package client

import (
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/httpapi"
)

type (
	// Client speaks the HTTP API; safe for concurrent use. No method has a
	// timeout of its own: use the context.
	Client = httpapi.Client
	// APIError is a non-2xx answer: Status, Code, Message, RetryAfter.
	APIError = httpapi.APIError
	// EnqueueOptions are an enqueue's options (key, delay or run_at,
	// max_attempts, ttr, expires, headers, content type, and OnSuccess: a
	// follow-up job that the job's success enqueues).
	EnqueueOptions = httpapi.EnqueueOptions
	// EnqueueResult answers an enqueue: id, state, durable, duplicate.
	EnqueueResult = httpapi.EnqueueResult
	// BatchLine is one job of EnqueueBatch.
	BatchLine = httpapi.BatchLine
	// BatchResult answers one line of EnqueueBatch.
	BatchResult = httpapi.BatchResult
	// Job is a job as the API shows it, with its lease when leased.
	Job = httpapi.Job
	// AckItem is one ack of Acks.
	AckItem = httpapi.AckItem
	// Coalescing configures Client.Coalesce.
	Coalescing = httpapi.Coalescing
)

// New returns a client of the daemon at baseURL (such as
// "http://127.0.0.1:7070"); token "" sends no Authorization header.
func New(baseURL, token string) *Client { return httpapi.NewClient(baseURL, token, nil) }

// Errors an *APIError unwraps to, by the API's error code.
var (
	ErrInvalidArgument = job.ErrInvalidArgument // invalid_argument
	ErrInvalidQueue    = job.ErrInvalidQueue    // invalid_queue
	ErrUnknownQueue    = job.ErrUnknownQueue    // unknown_queue
	ErrNotFound        = job.ErrNotFound        // not_found
	ErrLeaseLost       = job.ErrLeaseLost       // lease_lost
	ErrConflict        = job.ErrConflict        // conflict
	ErrTooLarge        = job.ErrTooLarge        // payload_too_large
	ErrQueueFull       = job.ErrQueueFull       // queue_full
	ErrRateLimited     = job.ErrRateLimited     // rate_limited
	ErrShed            = job.ErrShed            // shed
	ErrDiskFull        = job.ErrDiskFull        // disk_full
	ErrShuttingDown    = job.ErrShuttingDown    // shutting_down
)
