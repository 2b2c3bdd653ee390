package daemon

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
// work is done. The trimmer returns the free heap to the OS
// (debug.FreeOSMemory: a GC and a scavenge, a few milliseconds when idle)
// once the engine committed nothing for a whole tick, at most once every
// trimMinGap:
//   - when at least trimMinFree bytes are reclaimable (reclaimableHeapBytes:
//     free spans and what was allocated since the last GC beyond what that
//     GC found live);
//   - and, after activity, blindly: at the first quiet tick, then after
//     gaps of 2, 4 and 8 times trimMinGap (up to trimBlindMax). Badger goes on dropping memory after the
//     engine went quiet that no runtime figure shows until a GC runs: its
//     pool of table builders keeps up to eight 8 MiB buffers and lets one
//     go every 2 s without compactions, and a buffer that was live at the
//     last GC is counted live until the next one.
//
// A quiet daemon therefore runs at most four extra GCs after a burst.

// trimEvery is the trimmer's tick; trimMinFree is how much reclaimable heap
// is worth a trim; trimMinGap is the shortest time between two trims;
// trimBlindMax is the longest gap of a blind trim (the runtime forces a GC
// every two minutes anyway).
const (
	trimEvery    = 5 * time.Second
	trimMinFree  = 8 << 20
	trimMinGap   = 10 * time.Second
	trimBlindMax = 2 * time.Minute
)

// trimmer decides when to trim. Not safe for concurrent use.
type trimmer struct {
	lastBatches uint64
	lastTrim    time.Time
	blindGap    time.Duration // 0: no blind trim due
}

// tick takes the engine's committed-batch count, the reclaimable heap
// (reclaimableHeapBytes) and the time, and reports whether to trim now.
func (t *trimmer) tick(batches, reclaimable uint64, now time.Time) bool {
	if batches != t.lastBatches {
		t.lastBatches = batches
		t.blindGap = trimMinGap
		return false
	}
	since := now.Sub(t.lastTrim)
	if since < trimMinGap {
		return false
	}
	if reclaimable < trimMinFree {
		if t.blindGap == 0 || since < t.blindGap {
			return false
		}
		if t.blindGap *= 2; t.blindGap > trimBlindMax {
			t.blindGap = 0
		}
	}
	t.lastTrim = now
	return true
}

// reclaimableMetrics are the runtime/metrics that reclaimableHeapBytes reads.
var reclaimableMetrics = []string{
	"/memory/classes/heap/free:bytes",    // free spans not yet returned to the OS
	"/memory/classes/heap/objects:bytes", // live objects and dead ones not yet swept
	"/gc/heap/live:bytes",                // what the last GC found live
}

// reclaimableHeapBytes is the heap memory a GC and a scavenge would give
// back: free spans, plus objects allocated since the last GC beyond what
// that GC found live (on a quiet daemon, nearly all of them are dead).
func reclaimableHeapBytes() uint64 {
	s := make([]metrics.Sample, len(reclaimableMetrics))
	for i, name := range reclaimableMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	var v [3]uint64
	for i := range s {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		v[i] = s[i].Value.Uint64()
	}
	free, objects, live := v[0], v[1], v[2]
	if objects < live {
		return free
	}
	return free + objects - live
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
		free := reclaimableHeapBytes()
		if t.tick(batches(), free, time.Now()) {
			start := time.Now()
			debug.FreeOSMemory()
			log.Debug("returned free heap to the OS after a burst", "reclaimable_mib", free>>20, "took", time.Since(start))
		}
	}
}
