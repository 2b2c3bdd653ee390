package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// Handler runs a job inside edgeq (SPEC 7). Implementations live in their
// own packages (engine/handler/...); the engine never imports them. Handle
// must return when ctx is done (the job's timeout or shutdown), must be safe
// for concurrent use, and should not panic: a panic fails the job, not the
// process.
type Handler interface {
	Handle(ctx context.Context, j *job.Job) Outcome
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, j *job.Job) Outcome

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, j *job.Job) Outcome { return f(ctx, j) }

// Verdict is what a handler says about a job.
type Verdict uint8

// Verdicts.
const (
	// Ack: the job is done.
	Ack Verdict = iota + 1
	// Retry: try again later (backoff, or RetryAfter when set); dead once
	// attempts are spent.
	Retry
	// Dead: never retry (exec exit 65, HTTP 4xx).
	Dead
)

// Outcome is a handler's answer.
type Outcome struct {
	Verdict Verdict
	// Error becomes the job's last_error (bounded by the engine).
	Error string
	// Result, with Ack, is the job's result (an exec handler's stdout, an
	// http handler's response body): kept when the queue retains done jobs,
	// and the payload of the job's on_success follow-up.
	// A string keeps Outcome comparable.
	Result string
	// RetryAfter overrides the backoff for a Retry (e.g. HTTP Retry-After).
	RetryAfter time.Duration
	// TargetFailed marks a failure of the handler's target rather than of
	// the job (a network error, 5xx, timeout): it counts towards the
	// queue's circuit breaker.
	TargetFailed bool
	// Unreached, with Retry, says the job never reached the target (an
	// uplink that is down): the retry gives the attempt back, so an outage
	// of any length never sends a job dead. Set it only when the target
	// cannot have acted on the job.
	Unreached bool
}

// NackDelay is the delay of the nack a Retry asks for: RetryAfter, or
// NackBackoff (the queue's backoff) when it sets none.
func (o Outcome) NackDelay() time.Duration {
	if o.RetryAfter <= 0 {
		return NackBackoff
	}
	return o.RetryAfter
}

// safeHandle runs h, turning a panic into a retry (since Go 1.21 panic(nil)
// recovers a *runtime.PanicNilError, so every panic is caught) and a missing
// verdict into Retry: a buggy handler fails its job, not the process. A
// panic is not a failure of the handler's target: TargetFailed stays false.
func safeHandle(ctx context.Context, h Handler, j *job.Job) (out Outcome) {
	defer func() {
		if r := recover(); r != nil {
			out = Outcome{Verdict: Retry, Error: fmt.Sprintf("handler panic: %v", r)}
		}
	}()
	out = h.Handle(ctx, j)
	if out.Verdict == 0 {
		out.Verdict = Retry
	}
	return out
}
