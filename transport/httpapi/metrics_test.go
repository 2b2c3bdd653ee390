package httpapi

import (
	"math"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// fakeHistograms is what the fake engine answers to Histograms: fixed
// snapshots in the engine's form (cumulative counts).
var fakeHistograms = engine.Histograms{
	CommitSeconds:   engine.Histogram{Bounds: []float64{.001, .01, .1}, Counts: []uint64{1, 3, 4}, Count: 5, Sum: 0.75},
	CommitBatchSize: engine.Histogram{Bounds: []float64{1, 8, 64}, Counts: []uint64{2, 5, 6}, Count: 6, Sum: 40},
	SyncSeconds:     engine.Histogram{Bounds: []float64{.0005, .005}, Counts: []uint64{3, 4}, Count: 4, Sum: 0.004},
	SyncOps:         engine.Histogram{Bounds: []float64{8, 64}, Counts: []uint64{1, 4}, Count: 4, Sum: 120},
	EnqueueSeconds:  engine.Histogram{Bounds: []float64{.0005, .005}, Counts: []uint64{7, 9}, Count: 9, Sum: 0.02},
}

func (f *fakeEngine) Histograms() engine.Histograms { return fakeHistograms }

// exportedHistograms names the metric of each engine histogram.
func exportedHistograms(h engine.Histograms) map[string]engine.Histogram {
	return map[string]engine.Histogram{
		"edgeq_commit_seconds":    h.CommitSeconds,
		"edgeq_commit_batch_size": h.CommitBatchSize,
		"edgeq_sync_seconds":      h.SyncSeconds,
		"edgeq_sync_ops":          h.SyncOps,
		"edgeq_enqueue_seconds":   h.EnqueueSeconds,
	}
}

// scrape GETs /metrics from a real listener and parses the text exposition.
func scrape(t *testing.T, base string, hc *http.Client) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := hc.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type = %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// labelNames answers the sorted label names of every sample of a family,
// which must all be the same.
func labelNames(t *testing.T, mf *dto.MetricFamily) []string {
	t.Helper()
	var first []string
	for i, m := range mf.GetMetric() {
		var names []string
		for _, lp := range m.GetLabel() {
			names = append(names, lp.GetName())
		}
		slices.Sort(names)
		if i == 0 {
			first = names
		} else if !slices.Equal(names, first) {
			t.Errorf("%s: label sets differ: %q and %q", mf.GetName(), first, names)
		}
	}
	return first
}

// sample answers the sample of mf whose labels are exactly labels (name,
// value pairs), or nil.
func sample(mf *dto.MetricFamily, labels ...string) *dto.Metric {
	if mf == nil {
		return nil
	}
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		if len(got) != len(labels)/2 {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if got[labels[i]] != labels[i+1] {
				match = false
			}
		}
		if match {
			return m
		}
	}
	return nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return math.NaN()
}

func TestMetricsExposition(t *testing.T) {
	ts := mustStartServer(t, Config{})
	for _, st := range []job.State{job.StateReady, job.StateReady, job.StateDelayed, job.StateLeased, job.StateDead} {
		ts.eng.put(job.Job{Queue: "a", State: st})
	}
	eta := 42 * time.Second
	ts.eng.with(func(f *fakeEngine) {
		f.extraQ = []engine.QueueStats{
			{Name: "b", Class: job.ClassCritical, Running: 3, Concurrency: 4, Breaker: engine.BreakerHalfOpen,
				Alerting: true, AlertsTotal: 2, DrainETA: &eta, InRate: 1.5, OutRate: 2.25, RejectedTotal: 6,
				Rejected: map[string]uint64{"queue_full": 6}, Bytes: 640, Evicted: map[string]uint64{"evicted": 7, "expired_age": 1}},
			{Name: "c", Breaker: engine.BreakerOpen},
		}
	})
	mfs := scrape(t, ts.base, ts.hc)

	q, qs := []string{"queue"}, []string{"queue", "state"}
	for _, tc := range []struct {
		name   string
		typ    dto.MetricType
		labels []string
	}{
		{"edgeq_queue_depth", dto.MetricType_GAUGE, qs},
		{"edgeq_jobs_enqueued_total", dto.MetricType_COUNTER, q},
		{"edgeq_jobs_completed_total", dto.MetricType_COUNTER, q},
		{"edgeq_jobs_retried_total", dto.MetricType_COUNTER, q},
		{"edgeq_jobs_dead_total", dto.MetricType_COUNTER, q},
		{"edgeq_jobs_rejected_total", dto.MetricType_COUNTER, []string{"queue", "reason"}},
		{"edgeq_jobs_evicted_total", dto.MetricType_COUNTER, []string{"queue", "reason"}},
		{"edgeq_queue_bytes", dto.MetricType_GAUGE, q},
		{"edgeq_queue_oldest_age_seconds", dto.MetricType_GAUGE, q},
		{"edgeq_queue_paused", dto.MetricType_GAUGE, q},
		{"edgeq_queue_shed", dto.MetricType_GAUGE, q},
		{"edgeq_queue_info", dto.MetricType_GAUGE, []string{"class", "queue"}},
		{"edgeq_queue_breaker_state", dto.MetricType_GAUGE, q},
		{"edgeq_queue_running", dto.MetricType_GAUGE, q},
		{"edgeq_queue_backlog_alert", dto.MetricType_GAUGE, q},
		{"edgeq_backlog_alerts_total", dto.MetricType_COUNTER, q},
		{"edgeq_queue_drain_eta_seconds", dto.MetricType_GAUGE, q},
		{"edgeq_queue_in_rate", dto.MetricType_GAUGE, q},
		{"edgeq_queue_out_rate", dto.MetricType_GAUGE, q},
		{"edgeq_store_short", dto.MetricType_GAUGE, nil},
		{"edgeq_uptime_seconds", dto.MetricType_GAUGE, nil},
		{"edgeq_commit_seconds", dto.MetricType_HISTOGRAM, nil},
		{"edgeq_commit_batch_size", dto.MetricType_HISTOGRAM, nil},
		{"edgeq_sync_seconds", dto.MetricType_HISTOGRAM, nil},
		{"edgeq_sync_ops", dto.MetricType_HISTOGRAM, nil},
		{"edgeq_enqueue_seconds", dto.MetricType_HISTOGRAM, nil},
	} {
		mf := mfs[tc.name]
		if mf == nil {
			t.Errorf("%s: missing", tc.name)
			continue
		}
		if mf.GetType() != tc.typ {
			t.Errorf("%s: type %v, want %v", tc.name, mf.GetType(), tc.typ)
		}
		if got := labelNames(t, mf); !slices.Equal(got, tc.labels) {
			t.Errorf("%s: labels %q, want %q", tc.name, got, tc.labels)
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s: no help", tc.name)
		}
	}
	// Only queue names and fixed enums label edgeq's metrics.
	allowed := []string{"queue", "state", "class", "reason"} // queue names and fixed enums only
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "edgeq_") {
			continue
		}
		for _, l := range labelNames(t, mf) {
			if !slices.Contains(allowed, l) {
				t.Errorf("%s: label %q outside %q", name, l, allowed)
			}
		}
	}

	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"edgeq_queue_depth", []string{"queue", "a", "state", "ready"}, 2},
		{"edgeq_queue_depth", []string{"queue", "a", "state", "delayed"}, 1},
		{"edgeq_queue_depth", []string{"queue", "a", "state", "leased"}, 1},
		{"edgeq_queue_depth", []string{"queue", "a", "state", "dead"}, 1},
		{"edgeq_jobs_rejected_total", []string{"queue", "b", "reason", "queue_full"}, 6},
		{"edgeq_jobs_rejected_total", []string{"queue", "b", "reason", "shed"}, 0},
		{"edgeq_jobs_evicted_total", []string{"queue", "b", "reason", "evicted"}, 7},
		{"edgeq_jobs_evicted_total", []string{"queue", "b", "reason", "expired_age"}, 1},
		{"edgeq_jobs_evicted_total", []string{"queue", "c", "reason", "evicted"}, 0},
		{"edgeq_queue_bytes", []string{"queue", "b"}, 640},
		{"edgeq_queue_breaker_state", []string{"queue", "a"}, 0},
		{"edgeq_queue_breaker_state", []string{"queue", "b"}, 2},
		{"edgeq_queue_breaker_state", []string{"queue", "c"}, 1},
		{"edgeq_queue_running", []string{"queue", "b"}, 3},
		{"edgeq_queue_backlog_alert", []string{"queue", "a"}, 0},
		{"edgeq_queue_backlog_alert", []string{"queue", "b"}, 1},
		{"edgeq_backlog_alerts_total", []string{"queue", "b"}, 2},
		{"edgeq_queue_drain_eta_seconds", []string{"queue", "b"}, 42},
		{"edgeq_queue_in_rate", []string{"queue", "b"}, 1.5},
		{"edgeq_queue_out_rate", []string{"queue", "b"}, 2.25},
	} {
		m := sample(mfs[tc.name], tc.labels...)
		if m == nil {
			t.Errorf("%s%q: missing", tc.name, tc.labels)
			continue
		}
		if got := value(m); got != tc.want {
			t.Errorf("%s%q = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	// No ETA while the backlog is not shrinking (nil), rather than a made-up 0.
	for _, name := range []string{"a", "c"} {
		if m := sample(mfs["edgeq_queue_drain_eta_seconds"], "queue", name); m != nil {
			t.Errorf("edgeq_queue_drain_eta_seconds{queue=%q} present without an ETA: %v", name, m)
		}
	}

	for metric, want := range exportedHistograms(fakeHistograms) {
		mf := mfs[metric]
		if mf == nil || len(mf.GetMetric()) != 1 {
			t.Errorf("%s: want one histogram, got %v", metric, mf)
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != want.Count || h.GetSampleSum() != want.Sum {
			t.Errorf("%s: count %d sum %v, want %d %v", metric, h.GetSampleCount(), h.GetSampleSum(), want.Count, want.Sum)
		}
		var bounds []float64
		var counts []uint64
		for _, b := range h.GetBucket() {
			if math.IsInf(b.GetUpperBound(), +1) {
				if b.GetCumulativeCount() != want.Count {
					t.Errorf("%s: +Inf bucket %d, want the count %d", metric, b.GetCumulativeCount(), want.Count)
				}
				continue
			}
			bounds = append(bounds, b.GetUpperBound())
			counts = append(counts, b.GetCumulativeCount())
		}
		if !slices.Equal(bounds, want.Bounds) || !slices.Equal(counts, want.Counts) {
			t.Errorf("%s: buckets %v %v, want %v %v", metric, bounds, counts, want.Bounds, want.Counts)
		}
	}
	// Lint what edgeq itself exports.
	var own []*dto.MetricFamily
	for name, mf := range mfs {
		if strings.HasPrefix(name, "edgeq_") {
			own = append(own, mf)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(own).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestMetricsCollectorsPedantic checks Collect against Describe.
func TestMetricsCollectorsPedantic(t *testing.T) {
	eng := newFakeEngine()
	eta := time.Second
	eng.extraQ = []engine.QueueStats{{Name: "q", DrainETA: &eta, Breaker: engine.BreakerOpen}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newStatsCollector(eng), newHistogramCollector(eng),
		newMQTTCollector(func() (MQTTStats, bool) { return MQTTStats{Rejected: map[string]uint64{"shed": 1}}, true }))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) == 0 {
		t.Fatal("nothing gathered")
	}
}

// TestMetricsRealEngine scrapes a server over a real engine: its histograms
// come out under their names with the engine's buckets.
func TestMetricsRealEngine(t *testing.T) {
	rs := startRealServer(t, engine.Config{})
	eng, base, hc, c := rs.eng, rs.base, rs.hc, rs.client
	if _, err := c.Enqueue(t.Context(), "orders", []byte("x"), EnqueueOptions{}); err != nil {
		t.Fatal(err)
	}
	mfs := scrape(t, base, hc)
	for metric, src := range exportedHistograms(eng.Histograms()) {
		mf := mfs[metric]
		if mf == nil || mf.GetType() != dto.MetricType_HISTOGRAM || len(mf.GetMetric()) != 1 {
			t.Errorf("%s: want one histogram, got %v", metric, mf)
			continue
		}
		if got, want := len(mf.GetMetric()[0].GetHistogram().GetBucket()), len(src.Bounds)+1; got != want {
			t.Errorf("%s: %d buckets, want %d (the engine's bounds and +Inf)", metric, got, want)
		}
	}
	if h := mfs["edgeq_enqueue_seconds"]; h != nil && len(h.GetMetric()) == 1 && h.GetMetric()[0].GetHistogram().GetSampleCount() < 1 {
		t.Error("edgeq_enqueue_seconds counted no enqueue")
	}
	if m := sample(mfs["edgeq_queue_breaker_state"], "queue", "orders"); m == nil || value(m) != 0 {
		t.Errorf("edgeq_queue_breaker_state{queue=\"orders\"} = %v, want 0", m)
	}
}

// TestMetricsMQTT: the MQTT series come from Config.MQTT, and none while
// it answers that MQTT is off.
func TestMetricsMQTT(t *testing.T) {
	var on atomic.Bool
	ts := mustStartServer(t, Config{MQTT: func() (MQTTStats, bool) {
		return MQTTStats{Connected: true, Received: 7, Acked: 6, Rejected: map[string]uint64{"shed": 2, "invalid": 1}, Dropped: 3, Reconnects: 4}, on.Load()
	}})
	if mfs := scrape(t, ts.base, ts.hc); mfs["edgeq_mqtt_connected"] != nil {
		t.Errorf("MQTT series while MQTT is off")
	}
	on.Store(true)
	mfs := scrape(t, ts.base, ts.hc)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"edgeq_mqtt_connected", nil, 1},
		{"edgeq_mqtt_messages_received_total", nil, 7},
		{"edgeq_mqtt_messages_acked_total", nil, 6},
		{"edgeq_mqtt_messages_rejected_total", []string{"reason", "shed"}, 2},
		{"edgeq_mqtt_messages_rejected_total", []string{"reason", "invalid"}, 1},
		{"edgeq_mqtt_publishes_dropped_total", nil, 3},
		{"edgeq_mqtt_reconnects_total", nil, 4},
	} {
		mf := mfs[tc.name]
		if mf == nil {
			t.Errorf("%s missing", tc.name)
			continue
		}
		m := sample(mf, tc.labels...)
		if m == nil || value(m) != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, m, tc.want)
		}
	}
}
