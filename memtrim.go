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
// work is done. The trimmer watches for the end of a burst (the engine
// committed nothing for a whole tick after committing something) and then
// returns the free heap to the OS at once (debug.FreeOSMemory: a GC and a
// scavenge, a few milliseconds when idle).

// trimEvery is the trimmer's tick; trimMinFree is how much free heap is
// worth a trim.
const (
	trimEvery   = 5 * time.Second
	trimMinFree = 8 << 20
)

// trimmer decides when to trim. Not safe for concurrent use.
type trimmer struct {
	lastBatches uint64
	busy        bool // the engine committed something since the last trim
}

// tick takes the engine's committed-batch count and the free heap the
// process holds, and reports whether to trim now.
func (t *trimmer) tick(batches, freeHeap uint64) bool {
	active := batches != t.lastBatches
	t.lastBatches = batches
	if active {
		t.busy = true
		return false
	}
	if !t.busy || freeHeap < trimMinFree {
		return false
	}
	t.busy = false
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
		if t.tick(batches(), free) {
			start := time.Now()
			debug.FreeOSMemory()
			log.Debug("returned free heap to the OS after a burst", "free_mib", free>>20, "took", time.Since(start))
		}
	}
}
