package engine

import (
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// QueueStats is a snapshot of one queue (SPEC 5 "a queue's stats").
type QueueStats struct {
	Name           string
	Configured     bool // listed in the configuration (Config.Queues)
	Class          job.Class
	Paused         bool
	Shed           bool
	Ready          int64
	Delayed        int64
	Leased         int64
	Dead           int64
	Bytes          int64         // payload bytes of the ready, delayed and leased jobs (what max_bytes bounds)
	BytesUnknown   bool          // Bytes were not counted at the start (no max_bytes then): Bytes is only what changed since
	Done           int64         // finished jobs retained (retain_done)
	OldestReadyAge time.Duration // 0 when nothing is ready
	EnqueuedTotal  uint64
	CompletedTotal uint64
	RetriedTotal   uint64
	DeadTotal      uint64
	RejectedTotal  uint64
	Rejected       map[string]uint64 // RejectedTotal by reason (RejectReasons)
	Evicted        map[string]uint64 // jobs accepted then dropped by the queue's bounds, by reason (EvictReasons)
	Alerting       bool              // backlog alert raised (alert_age or alert_depth crossed)
	AlertsTotal    uint64            // backlog alerts raised so far
	Concurrency    int               // the queue's cap on in-process jobs, 0: none
	Running        int               // in-process jobs running now
	Breaker        BreakerState
	InRate         float64        // jobs/s admitted over the last minute
	OutRate        float64        // jobs/s completed or dead-lettered over the last minute
	DrainETA       *time.Duration // nil when the backlog is not shrinking
	// GroupConcurrency is the cap on one group's running jobs (1: in order).
	GroupConcurrency int
	// Groups counts the groups with work (ready, leased or a retry
	// waiting); OldestGroup is the one whose head has been ready longest,
	// OldestGroupAge that age ("" and 0 when no group has a ready job).
	Groups         int
	OldestGroup    string
	OldestGroupAge time.Duration
}

// Stats is a snapshot of the engine.
type Stats struct {
	Queues []QueueStats // sorted by name
	// StoreShort is set when the store came back at open with a lower
	// sequence than the last durable checkpoint: the store lost acknowledged
	// writes (see storage). Transports surface it.
	StoreShort bool
	Uptime     time.Duration
	Running    int       // in-process jobs running
	Workers    int       // the global worker limit
	Level      job.Level // the governor's level as the engine applies it
	// Rejected counts, by reason (RejectReasons), jobs refused for a queue
	// that does not exist (an invalid or unknown name, or a queue no job
	// was accepted into yet); a queue's own are in its QueueStats.
	Rejected map[string]uint64
}

// Shedding is what the governor's level sheds, as the engine applies it.
type Shedding struct {
	Level   job.Level
	Paused  []string // queues whose dispatch the level pauses, sorted; never nil
	Refused []string // queues whose new jobs the level refuses, sorted; never nil
}

// LeaseRequest asks for up to Max jobs of Queue.
type LeaseRequest struct {
	Queue string
	Max   int           // 1..100
	Wait  time.Duration // long poll, at most 60s; 0: answer at once
	TTR   time.Duration // 0: the queue's
}
