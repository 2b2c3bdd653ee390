package engine

import (
	"sync/atomic"
	"time"
)

// histogram is a fixed-bucket histogram updated with atomics. Safe for
// concurrent use.
type histogram struct {
	bounds []float64
	counts []atomic.Uint64 // per bucket, not cumulative; last is +Inf
	count  atomic.Uint64
	sumE6  atomic.Uint64 // sum in millionths
}

func newHistogram(bounds ...float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.count.Add(1)
	h.sumE6.Add(uint64(v * 1e6))
}

// Histogram is a snapshot in Prometheus form: Counts[i] is the cumulative
// count of observations ≤ Bounds[i].
type Histogram struct {
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    float64
}

func (h *histogram) snapshot() Histogram {
	s := Histogram{Bounds: h.bounds, Counts: make([]uint64, len(h.bounds))}
	var c uint64
	for i := range h.bounds {
		c += h.counts[i].Load()
		s.Counts[i] = c
	}
	s.Count = h.count.Load()
	s.Sum = float64(h.sumE6.Load()) / 1e6
	return s
}

// Histograms is a snapshot of the engine's histograms, one field each.
type Histograms struct {
	CommitSeconds   Histogram // a batch's commit and sync
	CommitBatchSize Histogram // ops per committed batch
	SyncSeconds     Histogram // one Store.Sync
	SyncOps         Histogram // ops answered after one Store.Sync: the group commit
	EnqueueSeconds  Histogram // an enqueue from admission to its answer
}

// Histograms snapshots the engine's histograms. Safe for concurrent use.
func (e *Engine) Histograms() Histograms {
	return Histograms{
		CommitSeconds:   e.hCommit.snapshot(),
		CommitBatchSize: e.hBatch.snapshot(),
		SyncSeconds:     e.hSync.snapshot(),
		SyncOps:         e.hSyncOps.snapshot(),
		EnqueueSeconds:  e.hEnqueue.snapshot(),
	}
}

var latencyBounds = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// sizeBounds are the buckets of the ops-per-batch and ops-per-sync
// histograms (a batch holds at most MaxBatch, 1024 by default).
var sizeBounds = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}

// Heartbeat is when the committer last went round its loop: it advances at
// least once a minute while the committer is healthy (idle or busy), and
// stops when a commit hangs. The systemd watchdog is driven from it.
func (e *Engine) Heartbeat() time.Time { return time.Unix(0, e.beat.Load()) }
