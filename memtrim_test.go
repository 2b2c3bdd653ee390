package main

import (
	"runtime/metrics"
	"testing"
)

func TestTrimmerTrimsOnceAfterABurst(t *testing.T) {
	var tr trimmer
	const lots, little = 64 << 20, 1 << 20
	steps := []struct {
		batches, free uint64
		want          bool
	}{
		{0, lots, false},    // idle from the start: nothing to trim after
		{10, lots, false},   // busy
		{25, lots, false},   // still busy
		{25, lots, true},    // quiet for a tick after work: trim
		{25, lots, false},   // once
		{30, little, false}, // busy again
		{30, little, false}, // quiet, but too little free heap to bother
		{30, lots, true},    // the burst is still untrimmed: trim once it is worth it
		{30, lots, false},
	}
	for i, s := range steps {
		if got := tr.tick(s.batches, s.free); got != s.want {
			t.Errorf("step %d (batches %d, free %d MiB): trim = %v, want %v", i, s.batches, s.free>>20, got, s.want)
		}
	}
}

// TestFreeHeapMetricExists guards the metric name: an unknown name would
// read as 0 free bytes and the trimmer would never trim.
func TestFreeHeapMetricExists(t *testing.T) {
	for _, d := range metrics.All() {
		if d.Name == "/memory/classes/heap/free:bytes" && d.Kind == metrics.KindUint64 {
			return
		}
	}
	t.Fatal("runtime/metrics has no /memory/classes/heap/free:bytes")
}
