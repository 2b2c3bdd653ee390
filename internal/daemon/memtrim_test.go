package daemon

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
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

// TestTrimmerTrimsBlindlyAfterABurst: after activity, with nothing the
// runtime reports as reclaimable, the trimmer still trims at the first
// quiet tick and then after gaps of 20, 40 and 80 s (Badger drops its
// pooled table builders unseen), then stops until the engine is active
// again.
func TestTrimmerTrimsBlindlyAfterABurst(t *testing.T) {
	var tr trimmer
	const little = 1 << 20
	t0 := time.Unix(1000, 0)
	tr.tick(0, little, t0)
	tr.tick(7, little, t0.Add(5*time.Second)) // the burst
	var trims []time.Duration
	for at := 10 * time.Second; at <= 10*time.Minute; at += trimEvery {
		if tr.tick(7, little, t0.Add(at)) {
			trims = append(trims, at)
		}
	}
	want := []time.Duration{10 * time.Second, 30 * time.Second, 70 * time.Second, 150 * time.Second}
	if !slices.Equal(trims, want) {
		t.Fatalf("trims at %v, want %v", trims, want)
	}
	if tr.tick(8, little, t0.Add(11*time.Minute)) || !tr.tick(8, little, t0.Add(11*time.Minute+trimEvery)) {
		t.Fatal("activity did not start the blind trims again")
	}
}

// TestReclaimableHeapMetricsExist guards the metric names: an unknown name
// would read as 0 reclaimable bytes and the trimmer would never trim.
func TestReclaimableHeapMetricsExist(t *testing.T) {
	kinds := map[string]metrics.ValueKind{}
	for _, d := range metrics.All() {
		kinds[d.Name] = d.Kind
	}
	for _, name := range reclaimableMetrics {
		if kinds[name] != metrics.KindUint64 {
			t.Errorf("runtime/metrics has no uint64 %s", name)
		}
	}
}

// TestReclaimableCountsGarbage: memory dropped since the last GC, like a
// table builder Badger's pool lets go, is reclaimable before any GC runs.
func TestReclaimableCountsGarbage(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	debug.FreeOSMemory() // a GC, and no free spans left: only the garbage below counts
	const size = 32 << 20
	buf := make([]byte, size)
	buf[size-1] = 1
	runtime.KeepAlive(buf)
	if got := reclaimableHeapBytes(); got < size*3/4 {
		t.Fatalf("reclaimable after dropping %d MiB: %d MiB", size>>20, got>>20)
	}
}
