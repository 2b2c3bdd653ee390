package httpapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/resource"
)

// fakeGovernor answers a fixed status; a drill replaces its drill block.
type fakeGovernor struct {
	mu sync.Mutex
	st resource.Status // guarded by mu
}

func (g *fakeGovernor) Status() resource.Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.st
}

func (g *fakeGovernor) LevelChanges() uint64 { return 2 }

func (g *fakeGovernor) Drill(level job.Level, d time.Duration) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.st.Level = level
	g.st.Drill = &resource.DrillStatus{Level: level, Until: time.Date(2026, 3, 1, 12, 1, 0, 0, time.UTC)}
	g.st.Reason = "drill until 2026-03-01T12:01:00Z"
	return nil
}

func (g *fakeGovernor) ClearDrill() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.st.Drill = nil
}

// governorOf returns the raw "governor" member of a JSON object.
func governorOf(t *testing.T, body []byte) string {
	t.Helper()
	var doc struct {
		Governor json.RawMessage `json:"governor"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return string(doc.Governor)
}

// TestGovernorServedJSON holds the bytes of the governor block that
// /v1/stats and the drill endpoints serve (SPEC 5), with null for figures
// the governor does not know, and the gauges /metrics exports (after the
// drill: level critical).
func TestGovernorServedJSON(t *testing.T) {
	known := resource.Sample{Known: resource.SignalCPU | resource.SignalMemory | resource.SignalDisk,
		CPUBusy: 97.44, MemUsed: 93, MemLimit: 100, DiskFree: 10 << 30}
	tests := []struct {
		name   string
		st     resource.Status
		stats  string // governor block of GET /v1/stats
		drill  string // answer of POST /v1/governor/drill {"critical","60s"}
		clear  string // answer of DELETE /v1/governor/drill after it
		gauges map[string]float64
	}{
		{
			name:  "known",
			st:    resource.Status{Level: job.LevelHigh, Concurrency: 6, Reason: "memory 93.0%", Sample: known},
			stats: `{"level":"high","concurrency":6,"cpu_percent":97.4,"memory_percent":93,"disk_free_bytes":10737418240,"reason":"memory 93.0%","drill":null}`,
			drill: `{"level":"critical","concurrency":6,"cpu_percent":97.4,"memory_percent":93,"disk_free_bytes":10737418240,"reason":"drill until 2026-03-01T12:01:00Z","drill":{"level":"critical","until":"2026-03-01T12:01:00Z"}}`,
			clear: `{"level":"critical","concurrency":6,"cpu_percent":97.4,"memory_percent":93,"disk_free_bytes":10737418240,"reason":"drill until 2026-03-01T12:01:00Z","drill":null}`,
			gauges: map[string]float64{"edgeq_governor_level": 3, "edgeq_governor_concurrency": 6, "edgeq_governor_level_changes_total": 2,
				"edgeq_host_cpu_percent": 97.44, "edgeq_host_memory_percent": 93, "edgeq_host_disk_free_bytes": 10 << 30},
		},
		{
			name:   "unknown",
			st:     resource.Status{Level: job.LevelNormal, Concurrency: 1, Reason: "no sample yet"},
			stats:  `{"level":"normal","concurrency":1,"cpu_percent":null,"memory_percent":null,"disk_free_bytes":null,"reason":"no sample yet","drill":null}`,
			drill:  `{"level":"critical","concurrency":1,"cpu_percent":null,"memory_percent":null,"disk_free_bytes":null,"reason":"drill until 2026-03-01T12:01:00Z","drill":{"level":"critical","until":"2026-03-01T12:01:00Z"}}`,
			clear:  `{"level":"critical","concurrency":1,"cpu_percent":null,"memory_percent":null,"disk_free_bytes":null,"reason":"drill until 2026-03-01T12:01:00Z","drill":null}`,
			gauges: map[string]float64{"edgeq_governor_level": 3, "edgeq_governor_concurrency": 1, "edgeq_governor_level_changes_total": 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := mustStartServer(t, Config{Governor: &fakeGovernor{st: tt.st}})
			r := ts.do(t, "GET", "/v1/stats", nil)
			r.wantStatus(t, 200)
			if got := governorOf(t, r.body); got != tt.stats {
				t.Errorf("GET /v1/stats governor =\n%s\nwant\n%s", got, tt.stats)
			}
			r = ts.do(t, "POST", "/v1/governor/drill", strings.NewReader(`{"level":"critical","duration":"60s"}`), "Content-Type", "application/json")
			r.wantStatus(t, 200)
			if got := string(bytes.TrimSpace(r.body)); got != tt.drill {
				t.Errorf("POST /v1/governor/drill =\n%s\nwant\n%s", got, tt.drill)
			}
			r = ts.do(t, "DELETE", "/v1/governor/drill", nil)
			r.wantStatus(t, 200)
			if got := string(bytes.TrimSpace(r.body)); got != tt.clear {
				t.Errorf("DELETE /v1/governor/drill =\n%s\nwant\n%s", got, tt.clear)
			}
			mfs := scrape(t, ts.base, ts.hc)
			for _, name := range []string{"edgeq_governor_level", "edgeq_governor_concurrency", "edgeq_governor_level_changes_total",
				"edgeq_host_cpu_percent", "edgeq_host_memory_percent", "edgeq_host_disk_free_bytes"} {
				want, ok := tt.gauges[name]
				mf := mfs[name]
				switch {
				case !ok && mf != nil:
					t.Errorf("%s exported for an unknown figure: %v", name, mf)
				case ok && (mf == nil || len(mf.GetMetric()) != 1):
					t.Errorf("%s: want one sample, got %v", name, mf)
				case ok && value(mf.GetMetric()[0]) != want:
					t.Errorf("%s = %v, want %v", name, value(mf.GetMetric()[0]), want)
				}
			}
		})
	}
}

// TestGovernorStatsJSON: the wire form of a status, rounded, with null for
// unknown figures and the drill in UTC.
func TestGovernorStatsJSON(t *testing.T) {
	until := time.Date(2026, 3, 1, 13, 1, 0, 0, time.FixedZone("CET", 3600))
	s := resource.Sample{Known: resource.SignalCPU | resource.SignalLoad | resource.SignalMemory | resource.SignalDisk,
		CPUBusy: 97.44, Cores: 4, MemUsed: 930 << 20, MemLimit: 1000 << 20, DiskFree: 10 << 30}
	tests := []struct {
		name string
		st   resource.Status
		want string
	}{
		{"known", resource.Status{Level: job.LevelHigh, Concurrency: 6, Reason: "memory 93.0%", Sample: s},
			`{"level":"high","concurrency":6,"cpu_percent":97.4,"memory_percent":93,"disk_free_bytes":10737418240,"reason":"memory 93.0%","drill":null}`},
		{"unknown and drill", resource.Status{Level: job.LevelCritical, Concurrency: 1, Reason: "drill until 2026-03-01T12:01:00Z",
			Drill: &resource.DrillStatus{Level: job.LevelCritical, Until: until}},
			`{"level":"critical","concurrency":1,"cpu_percent":null,"memory_percent":null,"disk_free_bytes":null,"reason":"drill until 2026-03-01T12:01:00Z","drill":{"level":"critical","until":"2026-03-01T12:01:00Z"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(governorStats(tt.st))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Fatalf("JSON =\n%s\nwant\n%s", b, tt.want)
			}
		})
	}
}
