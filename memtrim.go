package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Memory trimming. After a burst (a backlog filled, a compaction), the Go
// heap keeps the pages it grew to until a later GC lowers its goal and the
// scavenger returns them, and an idle daemon runs a GC only every two
// minutes: the box sees the burst's peak as resident memory long after the
// work is done. The trimmer returns the free heap to the OS at once
// (debug.FreeOSMemory: a GC and a scavenge, a few milliseconds when idle)
// when the engine committed nothing for a whole tick and at least
// trimMinFree bytes are free, at most once every trimMinGap: Badger's
// compactions and its buffer pool go on freeing memory for a while after
// the engine went quiet.

// trimEvery is the trimmer's tick; trimMinFree is how much free heap is
// worth a trim; trimMinGap is the shortest time between two trims.
const (
	trimEvery   = 5 * time.Second
	trimMinFree = 8 << 20
	trimMinGap  = 10 * time.Second
)

// trimmer decides when to trim. Not safe for concurrent use.
type trimmer struct {
	lastBatches uint64
	lastTrim    time.Time
}

// tick takes the engine's committed-batch count, the free heap the process
// holds and the time, and reports whether to trim now.
func (t *trimmer) tick(batches, freeHeap uint64, now time.Time) bool {
	active := batches != t.lastBatches
	t.lastBatches = batches
	if active || freeHeap < trimMinFree || now.Sub(t.lastTrim) < trimMinGap {
		return false
	}
	t.lastTrim = now
	return true
}

// freeHeapBytes is the heap memory the runtime holds but no object uses:
// free spans not yet returned to the OS.
func freeHeapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// runTrimmer trims after each burst until ctx is done. batches reports the
// engine's committed-batch count.
func runTrimmer(ctx context.Context, log *slog.Logger, batches func() uint64) {
	tk := time.NewTicker(trimEvery)
	defer tk.Stop()
	var t trimmer
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		free := freeHeapBytes()
		if t.tick(batches(), free, time.Now()) {
			start := time.Now()
			debug.FreeOSMemory()
			log.Debug("returned free heap to the OS after a burst", "free_mib", free>>20, "took", time.Since(start))
		}
	}
}
