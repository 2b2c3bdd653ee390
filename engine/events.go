package engine

import (
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// EventKind is what happened to a job.
type EventKind uint8

// Job events (SPEC 6 "events").
const (
	EventDone    EventKind = iota + 1 // acked
	EventRetry                        // will run again (nack, lease expiry, handler retry)
	EventDead                         // dead-lettered
	EventEvicted                      // dropped by its queue's bounds: Error is the reason (EvictReasons)
)

func (k EventKind) String() string {
	switch k {
	case EventDone:
		return "done"
	case EventRetry:
		return "retry"
	case EventDead:
		return "dead"
	case EventEvicted:
		return "evicted"
	}
	return "unknown"
}

// Event is a job lifecycle event, delivered after the commit that made it
// durable.
type Event struct {
	Kind    EventKind
	Queue   string
	ID      job.ID
	Attempt int
	Error   string // last_error for retry and dead; the reason for evicted
	// Result is a done job's result, when its queue retains finished jobs
	// (retain_done), cut at max_result (ResultTruncated).
	Result          []byte
	ResultTruncated bool
	At              time.Time
}

// Alert is a backlog alert of a queue (SPEC 1.5): raised when the oldest
// ready job is older than the queue's alert_age or its depth is above
// alert_depth, cleared when neither holds.
type Alert struct {
	Queue  string
	Raised bool   // false: cleared
	Kind   string // "age" or "depth": what crossed (when raised)
	Age    time.Duration
	Depth  int64
	At     time.Time
}

// event records e for delivery once the batch is committed.
func (b *batch) event(e Event) {
	b.events = append(b.events, e)
}

// deliver hands the batch's events to the subscriber. It runs on the
// syncer goroutine: Config.OnEvent must not block.
func (e *Engine) deliver(b *batch) {
	if e.cfg.OnEvent == nil {
		return
	}
	for _, ev := range b.events {
		e.cfg.OnEvent(ev)
	}
}
