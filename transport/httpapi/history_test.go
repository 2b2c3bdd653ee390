package httpapi

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
)

func TestQuantileSince(t *testing.T) {
	b := []float64{.001, .01, .1}
	prev := engine.Histogram{Bounds: b, Counts: []uint64{10, 10, 10}, Count: 10}
	for name, tc := range map[string]struct {
		cur  engine.Histogram
		want float64
	}{
		"nothing new":   {engine.Histogram{Bounds: b, Counts: []uint64{10, 10, 10}, Count: 10}, math.NaN()},
		"all fast":      {engine.Histogram{Bounds: b, Counts: []uint64{110, 110, 110}, Count: 110}, .001},
		"one slow in 2": {engine.Histogram{Bounds: b, Counts: []uint64{11, 12, 12}, Count: 12}, .01},
		"p99 in third":  {engine.Histogram{Bounds: b, Counts: []uint64{108, 108, 110}, Count: 110}, .1},
		"beyond bounds": {engine.Histogram{Bounds: b, Counts: []uint64{10, 10, 10}, Count: 12}, .1},
	} {
		got := quantileSince(prev, tc.cur, 0.99)
		if got != tc.want && !(math.IsNaN(got) && math.IsNaN(tc.want)) {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
}

// TestHistoryFixedCost: whatever the number of queues and however long it
// runs, the history keeps historySlots samples of the historyQueues deepest
// queues, oldest first, a series null where its queue was not sampled.
func TestHistoryFixedCost(t *testing.T) {
	f := newFakeEngine()
	s, err := New(Config{}, f)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1_700_000_000, 0)
	for i := range historySlots + 40 {
		f.with(func(f *fakeEngine) {
			f.extraQ = f.extraQ[:0]
			for q := range historyQueues + 5 {
				f.extraQ = append(f.extraQ, engine.QueueStats{Name: fmt.Sprintf("q%02d", q), Ready: int64(q * 10), InRate: 1.234})
			}
			if i == historySlots+39 {
				f.extraQ = append(f.extraQ, engine.QueueStats{Name: "zz-new", Ready: 1000})
			}
		})
		s.history.sample(s, start.Add(time.Duration(i)*10*time.Second))
	}
	d := s.history.doc()
	if len(d.Times) != historySlots || d.Times[0] != start.Add(40*10*time.Second).Unix() || d.Times[historySlots-1] != start.Add((historySlots+39)*10*time.Second).Unix() {
		t.Fatalf("times: %d samples from %d to %d", len(d.Times), d.Times[0], d.Times[len(d.Times)-1])
	}
	// The newest sample's 20 deepest: zz-new and q24..q06; q05 and the
	// others only in older samples.
	if d.Queues[0].Name != "zz-new" || d.Queues[1].Name != "q24" {
		t.Fatalf("queues in order %s, %s, ...", d.Queues[0].Name, d.Queues[1].Name)
	}
	if len(d.Queues) != historyQueues+1 {
		t.Fatalf("%d queue series, want %d (the 20 of the newest sample and q05 from older ones)", len(d.Queues), historyQueues+1)
	}
	nz := d.Queues[0]
	if nz.Depth[historySlots-2] != nil || nz.Depth[historySlots-1] == nil || *nz.Depth[historySlots-1] != 1000 {
		t.Errorf("zz-new's depth is not null before it existed and 1000 after")
	}
	if q := d.Queues[1]; q.In[0] == nil || *q.In[0] != 1.23 {
		t.Errorf("rates are rounded to 2 decimals: %v", q.In[0])
	}
	// The fake's commit histogram never changes: no p99 after the first sample.
	if d.CommitP99[historySlots-1] != nil {
		t.Errorf("commit p99 with nothing committed: %v, want null", *d.CommitP99[historySlots-1])
	}
}

func TestHistoryEndpoint(t *testing.T) {
	f := newFakeEngine()
	s, err := New(Config{HistoryEvery: 20 * time.Millisecond, Addr: "127.0.0.1:0"}, f)
	if err != nil {
		t.Fatal(err)
	}
	putLeaseJobs(f)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	var d HistoryDoc
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/v1/stats/history", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /v1/stats/history: %d %s", rec.Code, rec.Body)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		if len(d.Times) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d samples after 10 s of sampling every 20 ms", len(d.Times))
		}
	}
	if d.IntervalS != 0.02 || len(d.Queues) == 0 || len(d.Queues[0].Depth) != len(d.Times) || d.Level[0] != "normal" {
		t.Errorf("history document: %+v", d)
	}
}
