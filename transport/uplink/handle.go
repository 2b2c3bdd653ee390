package uplink

import (
	"context"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// Handler answers the handler of a queue of class c, not ordered, that
// sends its jobs through u.
func (u *Uplink) Handler(c job.Class) engine.Handler { return u.QueueHandler(c, false) }

// QueueHandler answers the handler of a queue of class c that sends its
// jobs through u: an engine.BatchHandler, so that the engine leases, hands
// over and records up to batch.max_jobs jobs at a time (batch.go). ordered
// says the queue is (engine.QueueConfig.Ordered): then a job that fails
// holds its queue's later jobs back (ordered.go).
func (u *Uplink) QueueHandler(c job.Class, ordered bool) engine.Handler {
	return classHandler{u: u, high: c <= job.ClassHigh, ordered: ordered}
}

// handle offers jobs, leased together in this order, to the batcher as
// one group and waits for each one's acknowledgement.
func (u *Uplink) handle(ctx context.Context, h classHandler, jobs []*job.Job) []engine.Outcome {
	outs := make([]engine.Outcome, len(jobs))
	all := func(o engine.Outcome) []engine.Outcome {
		for i := range outs {
			outs[i] = o
		}
		return outs
	}
	if !u.pub.connected() {
		return all(u.outcome(errDown))
	}
	group := make([]*item, len(jobs))
	for i, j := range jobs {
		group[i] = &item{j: j, high: h.high, ordered: h.ordered, done: make(chan error, 1)}
	}
	ch := u.low
	if h.high {
		ch = u.high
	}
	select {
	case ch <- group:
	case <-u.stopped:
		return all(u.outcome(errDown))
	case <-ctx.Done():
		return all(engine.Outcome{Verdict: engine.Retry, Error: "interrupted", Unreached: true})
	}
	for i, it := range group {
		select {
		case err := <-it.done:
			outs[i] = u.outcome(err)
		case <-ctx.Done():
			// It may be on the wire: the stream's dedupe drops the resend.
			outs[i] = engine.Outcome{Verdict: engine.Retry, Error: "interrupted"}
		}
	}
	return outs
}
