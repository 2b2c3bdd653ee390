package main

import (
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/transport/httpapi"
)

func TestBench(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	r := callCLI(t, addr, "bench", "--producers", "4", "--consumers", "2", "--payload", "64", "--duration", "1s", "--json")
	if r.code != 0 {
		t.Fatalf("bench: %+v", r)
	}
	var res benchResult
	decodeJSON(t, r.stdout, &res)
	if res.Enqueued == 0 || res.Consumed == 0 || res.EnqueueRate <= 0 || res.ConsumeRate <= 0 {
		t.Errorf("bench counted nothing: %+v", res)
	}
	for _, name := range []string{"enqueue", "lease", "ack"} {
		l := res.Latency[name]
		if l.Count == 0 || l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.Max {
			t.Errorf("%s latency %+v: want 0 < p50 <= p99 <= max", name, l)
		}
	}
	if !strings.Contains(r.stderr, "\r") || !strings.Contains(r.stderr, "enqueued") {
		t.Errorf("bench progress on stderr = %q", r.stderr)
	}

	r = callCLI(t, addr, "bench", "--producers", "2", "--count", "300", "--batch", "50", "--queue", "b2", "--keep")
	if r.code != 0 {
		t.Fatalf("bench --batch: %+v", r)
	}
	for _, want := range []string{"enqueued 300 jobs", "batch", "p99 ms", "errors: none"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("bench output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "kept 300 jobs in b2") {
		t.Errorf("bench --keep does not say what it kept: %q", r.stderr)
	}
	// Consume what the batch run left, by count.
	r = callCLI(t, addr, "bench", "--producers", "0", "--consumers", "2", "--count", "300", "--queue", "b2", "--json")
	decodeJSON(t, r.stdout, &res)
	if r.code != 0 || res.Consumed != 300 {
		t.Errorf("bench consumers --count 300: consumed %d, %+v", res.Consumed, r)
	}
}

// TestHistogram holds the histogram's quantiles within 1% of the exact
// ones of the same values.
func TestHistogram(t *testing.T) {
	t.Parallel()
	h := newHistogram()
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([]float64, 100000)
	for i := range vals {
		// Log-uniform from 1µs to 10s.
		v := math.Exp(rng.Float64()*math.Log(1e7)) * 1e3
		vals[i] = v
		h.record(time.Duration(v))
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
		got := float64(h.quantile(q))
		if math.Abs(got-exact)/exact > 0.01 {
			t.Errorf("quantile %v = %v, exact %v: off by more than 1%%", q, got, exact)
		}
	}
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 40, math.MaxInt64} {
		i := histIndex(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("histIndex(%d) = %d, outside 0..%d", v, i, histBuckets)
		}
		if got := histValue(i); math.Abs(float64(got-v)) > float64(v)/histSub+1 {
			t.Errorf("histValue(histIndex(%d)) = %d: off by more than 1/%d", v, got, histSub)
		}
	}
	o := newHistogram()
	o.record(time.Hour)
	h.merge(o)
	if h.n != int64(len(vals))+1 || h.max != int64(time.Hour) {
		t.Errorf("after merge n = %d, max = %d", h.n, h.max)
	}
}

// TestBenchCleansUp runs bench on its own queue, which it purges at the
// end, unless --keep.
func TestBenchCleansUp(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	enqueueN(t, addr, "mail", "real work")
	ready := func() map[string]int64 {
		var list httpapi.QueueList
		decodeJSON(t, mustCLI(t, addr, "queue", "list", "--json"), &list)
		m := map[string]int64{}
		for _, q := range list.Queues {
			m[q.Name] = q.Ready + q.Delayed
		}
		return m
	}

	r := callCLI(t, addr, "bench", "--producers", "2", "--count", "40", "--json")
	var res benchResult
	decodeJSON(t, r.stdout, &res)
	if r.code != 0 || res.Enqueued != 40 || res.Config.Queue != "edgeq-bench" || res.Purged != 40 {
		t.Errorf("bench: %+v, %+v: want 40 jobs enqueued into edgeq-bench, and purged", r, res)
	}
	if got, want := ready(), map[string]int64{"mail": 1, "edgeq-bench": 0}; !maps.Equal(got, want) {
		t.Errorf("ready and delayed jobs by queue after bench: %v, want %v", got, want)
	}
	if !strings.Contains(r.stderr, "purged 40 jobs left in edgeq-bench") {
		t.Errorf("bench's stderr does not say what it purged: %q", r.stderr)
	}

	r = callCLI(t, addr, "bench", "--producers", "1", "--count", "10", "--keep", "--json")
	decodeJSON(t, r.stdout, &res)
	if r.code != 0 || res.Purged != 0 || ready()["edgeq-bench"] != 10 {
		t.Errorf("bench --keep: %+v, %+v, queues %v: want its 10 jobs kept", r, res, ready())
	}
}

// TestParseProcStat reads utime and stime after a command name that holds
// spaces and parentheses, and refuses what is not /proc/PID/stat.
func TestParseProcStat(t *testing.T) {
	t.Parallel()
	const stat = "4242 (edgeq) (x y) S 1 4242 4242 0 -1 4194560 9117 0 0 0 250 130 0 0 20 0 12 0 1234 1700000000 4000 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0\n"
	got, err := parseProcStat(stat)
	if want := 3800 * time.Millisecond; err != nil || got != want {
		t.Errorf("parseProcStat = %v, %v; want %v (380 ticks)", got, err, want)
	}
	for _, bad := range []string{"", "4242 edgeq S 1", "4242 (edgeq) S 1 2 3", "4242 (edgeq) S 1 4242 4242 0 -1 4194560 9117 0 0 0 x 130 0"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q) accepted", bad)
		}
	}
}
