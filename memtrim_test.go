package main

import (
	"runtime/metrics"
	"testing"
	"time"
)

func TestTrimmerTrimsWhenQuiet(t *testing.T) {
	var tr trimmer
	const lots, little = 64 << 20, 1 << 20
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at            time.Duration
		batches, free uint64
		want          bool
	}{
		{0, 0, little, false},                 // idle, nothing worth it
		{5 * time.Second, 10, lots, false},    // busy
		{10 * time.Second, 25, lots, false},   // still busy
		{15 * time.Second, 25, lots, true},    // quiet for a tick with free heap: trim
		{20 * time.Second, 25, lots, false},   // too soon after the last
		{25 * time.Second, 25, lots, true},    // compactions freed more: trim again
		{30 * time.Second, 25, little, false}, // nothing worth it
		{40 * time.Second, 30, lots, false},   // busy again
		{45 * time.Second, 30, lots, true},    // quiet again
	}
	for i, s := range steps {
		if got := tr.tick(s.batches, s.free, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d (at %v, batches %d, free %d MiB): trim = %v, want %v", i, s.at, s.batches, s.free>>20, got, s.want)
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
