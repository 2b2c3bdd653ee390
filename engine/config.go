package engine

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// SyncMode says when a commit is made durable.
type SyncMode uint8

// Sync modes. SyncDefault inherits (a queue from the engine, the engine
// defaults to SyncAlways).
const (
	SyncDefault SyncMode = iota
	SyncAlways
	SyncInterval
)

// ParseSyncMode parses "always", "interval" or "" (default).
func ParseSyncMode(s string) (SyncMode, error) {
	switch s {
	case "":
		return SyncDefault, nil
	case "always":
		return SyncAlways, nil
	case "interval":
		return SyncInterval, nil
	}
	return 0, fmt.Errorf("unknown sync mode %q (want always or interval)", s)
}

func (m SyncMode) String() string {
	switch m {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	}
	return "default"
}

// Backoff is the retry delay law: exponential from Initial, capped at Max,
// with full jitter.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
}

// QueueConfig configures one queue. Zero values mean "the engine default".
type QueueConfig struct {
	Class       job.Class
	Concurrency int // cap on running in-process jobs; 0: no cap
	Reserve     int // workers guaranteed when the queue has work
	MaxAttempts int
	TTR         time.Duration
	Backoff     Backoff
	Rate        float64 // admitted jobs per second; 0: unlimited
	Burst       int     // token bucket size; 0: max(1, Rate)
	MaxDepth    int64   // ready+delayed+leased cap; 0: unlimited
	MaxBytes    int64   // cap on the payload bytes of ready+delayed+leased jobs; 0: unlimited
	// OnFull is what an enqueue over MaxDepth or MaxBytes does:
	// OnFullReject ("" too) or OnFullEvictOldest.
	OnFull string
	// MaxAge, when set, drops a waiting job enqueued longer ago than it
	// (ReasonExpiredAge); 0: never.
	MaxAge     time.Duration
	Sync       SyncMode
	AlertAge   time.Duration
	AlertDepth int64
	// ShedAt overrides the class's shedding: from this level (normal,
	// elevated, high, critical) dispatch pauses and new jobs are refused;
	// "never" exempts the queue. "" keeps the class default.
	ShedAt string
	// KeyMode is what idempotency keys deduplicate against when a job does
	// not say; 0: job.KeyWindow.
	KeyMode job.KeyMode
	// RetainDone keeps a finished job (state done) with its result for
	// this long; 0: a finished job is deleted at once.
	RetainDone time.Duration
	// MaxResult bounds the result kept with a retained job, in bytes,
	// default DefaultMaxResult; a longer one is cut there and flagged
	// (job.Job.ResultTruncated).
	MaxResult int
	// Handler runs the queue's jobs in-process; nil serves pull workers.
	Handler Handler
	Breaker Breaker
	// GroupConcurrency caps the leased jobs (and retries waiting) of one
	// group of the queue; 0 means 1: each group runs strictly in order.
	GroupConcurrency int
	// Ordered keeps the order of the queue's jobs without a group across
	// retries, for every consumer: a retry (a nack, an expired lease, a
	// lease lost in a restart) goes back to its place, and while one waits
	// for its delay no later job of the queue is leased. False: a retry
	// goes to the back of the queue.
	Ordered bool
}

// DefaultMaxResult is the default of QueueConfig.MaxResult.
const DefaultMaxResult = 4 << 10

// DefaultMaxQueues is the default of Config.MaxQueues. A queue costs a few
// KiB of memory and about 25 metric series; a thousand stay within a few
// MiB on a 256 MiB box.
const DefaultMaxQueues = 1000

// Config configures an Engine. Zero values mean defaults.
type Config struct {
	Logger *slog.Logger

	RingSize     int           // intake ring slots, default 8192
	IntakeWait   time.Duration // how long an enqueuer waits for ring room before ErrUnavailable, default 2s
	MaxBatch     int           // operations per commit, default 1024
	Sync         SyncMode      // default SyncAlways
	SyncInterval time.Duration // for SyncInterval, default 1s
	MaxPayload   int           // bytes, default 1 MiB

	MaxAttempts  int           // default 5
	TTR          time.Duration // default 60s
	Backoff      Backoff       // default 1s..10m
	DedupeWindow time.Duration // default 24h

	StrictQueues bool                   // refuse queues not in Queues with ErrUnknownQueue
	Queues       map[string]QueueConfig // by name
	// MaxQueues bounds the queues that jobs may create, default
	// DefaultMaxQueues: a job for a new queue past it is refused with
	// job.ErrQueueFull. Configured queues and queues recovered from the
	// store always exist and count towards it.
	MaxQueues int

	Workers      int               // global in-process worker limit, default 2 × GOMAXPROCS
	ClassWeights map[job.Class]int // default high 8, normal 4, low 2, bulk 1

	// OnEvent, when set, receives every job event once its batch is durable
	// (before the batch's answers), in commit order, on the engine's syncer
	// goroutine: it must not block (hand off to a bounded queue).
	OnEvent func(Event)
	// OnAlert, when set, receives backlog alerts as they are raised and
	// cleared; it must not block.
	OnAlert func(Alert)
}

func (c Config) withDefaults() Config {
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	c.RingSize = cmp.Or(c.RingSize, 8192)
	c.IntakeWait = cmp.Or(c.IntakeWait, 2*time.Second)
	c.MaxBatch = cmp.Or(c.MaxBatch, 1024)
	c.Sync = cmp.Or(c.Sync, SyncAlways)
	c.SyncInterval = cmp.Or(c.SyncInterval, time.Second)
	c.MaxPayload = cmp.Or(c.MaxPayload, 1<<20)
	c.MaxQueues = cmp.Or(c.MaxQueues, DefaultMaxQueues)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, 5)
	c.TTR = cmp.Or(c.TTR, 60*time.Second)
	c.Backoff.Initial = cmp.Or(c.Backoff.Initial, time.Second)
	c.Backoff.Max = cmp.Or(c.Backoff.Max, 10*time.Minute)
	c.DedupeWindow = cmp.Or(c.DedupeWindow, 24*time.Hour)
	c.Workers = cmp.Or(c.Workers, defaultWorkers())
	return c
}

// Validate checks the configuration and names the offending field.
func (c Config) Validate() error {
	if c.RingSize < 0 || c.MaxBatch < 0 || c.MaxPayload < 0 || c.MaxAttempts < 0 || c.Workers < 0 || c.MaxQueues < 0 {
		return fmt.Errorf("negative size in engine config")
	}
	if n := cmp.Or(c.MaxQueues, DefaultMaxQueues); len(c.Queues) > n {
		return fmt.Errorf("max_queues: %d is below the %d configured queues", n, len(c.Queues))
	}
	for name, q := range c.Queues {
		if !job.ValidQueueName(name) {
			return fmt.Errorf("queues.%s: invalid queue name (want ^[a-z0-9][a-z0-9_.-]{0,63}$)", name)
		}
		switch {
		case q.Concurrency < 0:
			return fmt.Errorf("queues.%s.concurrency: must not be negative", name)
		case q.GroupConcurrency < 0:
			return fmt.Errorf("queues.%s.group_concurrency: must not be negative", name)
		case q.Reserve < 0:
			return fmt.Errorf("queues.%s.reserve: must not be negative", name)
		case q.Concurrency > 0 && q.Reserve > q.Concurrency:
			return fmt.Errorf("queues.%s.reserve: %d is above concurrency %d", name, q.Reserve, q.Concurrency)
		case q.MaxAttempts < 0:
			return fmt.Errorf("queues.%s.max_attempts: must not be negative", name)
		case q.Rate < 0:
			return fmt.Errorf("queues.%s.rate: must not be negative", name)
		case q.MaxDepth < 0:
			return fmt.Errorf("queues.%s.max_depth: must not be negative", name)
		case q.MaxBytes < 0:
			return fmt.Errorf("queues.%s.max_bytes: must not be negative", name)
		case q.MaxAge < 0:
			return fmt.Errorf("queues.%s.max_age: must not be negative", name)
		case q.OnFull != "" && q.OnFull != OnFullReject && q.OnFull != OnFullEvictOldest:
			return fmt.Errorf("queues.%s.on_full: %q is not %s or %s", name, q.OnFull, OnFullReject, OnFullEvictOldest)
		case q.OnFull == OnFullEvictOldest && !q.bounded():
			return fmt.Errorf("queues.%s.on_full: %s needs max_depth or max_bytes", name, OnFullEvictOldest)
		case q.KeyMode > job.KeyReplace:
			return fmt.Errorf("queues.%s.key_mode: unknown mode %d", name, q.KeyMode)
		case q.RetainDone < 0:
			return fmt.Errorf("queues.%s.retain_done: must not be negative", name)
		case q.MaxResult < 0:
			return fmt.Errorf("queues.%s.max_result: must not be negative", name)
		case q.Backoff.Max > 0 && q.Backoff.Initial > q.Backoff.Max:
			return fmt.Errorf("queues.%s.backoff: initial %s is above max %s", name, q.Backoff.Initial, q.Backoff.Max)
		case q.Breaker.Failures < 0 || q.Breaker.CoolDown < 0:
			return fmt.Errorf("queues.%s.breaker: must not be negative", name)
		case q.Breaker.Failures > 0 && q.Breaker.CoolDown == 0:
			return fmt.Errorf("queues.%s.breaker.cool_down: required with failures", name)
		}
		if q.ShedAt != "" && q.ShedAt != "never" {
			if _, err := job.ParseLevel(q.ShedAt); err != nil {
				return fmt.Errorf("queues.%s.shed_at: %v", name, err)
			}
		}
	}
	return nil
}
