package httpapi

import (
	"cmp"
	"log/slog"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgeq/edgeq/engine"
)

// newMetricsHandler serves /metrics from a registry of its own (never the
// global one): the engine's stats and histograms, read at scrape time, plus
// the Go runtime and process collectors.
func newMetricsHandler(eng Monitor, gov Governor, mqttStats func() (MQTTStats, bool), uplinks func() []UplinkStats, sch Schedules, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newStatsCollector(eng),
		newHistogramCollector(eng),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if gov != nil {
		reg.MustRegister(newGovernorCollector(gov))
	}
	if mqttStats != nil {
		reg.MustRegister(newMQTTCollector(mqttStats))
	}
	if sch != nil {
		reg.MustRegister(newScheduleCollector(sch))
	}
	if uplinks != nil {
		reg.MustRegister(newUplinkCollector(uplinks))
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            promLogger{log},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
	})
}

type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) { l.log.Warn("metrics", "err", slogArgs(v)) }

func slogArgs(v []any) any {
	if len(v) == 1 {
		return v[0]
	}
	return v
}

// statsCollector turns one Monitor.Stats snapshot per scrape into metrics.
// Label values are queue names and fixed enums (state, class) only.
type statsCollector struct {
	eng         Monitor
	depth       *prometheus.Desc
	enqueued    *prometheus.Desc
	completed   *prometheus.Desc
	retried     *prometheus.Desc
	dead        *prometheus.Desc
	rejected    *prometheus.Desc
	evicted     *prometheus.Desc
	bytes       *prometheus.Desc
	oldest      *prometheus.Desc
	groups      *prometheus.Desc
	groupAge    *prometheus.Desc
	paused      *prometheus.Desc
	shed        *prometheus.Desc
	info        *prometheus.Desc
	breaker     *prometheus.Desc
	running     *prometheus.Desc
	alerting    *prometheus.Desc
	alertsTotal *prometheus.Desc
	drainETA    *prometheus.Desc
	inRate      *prometheus.Desc
	outRate     *prometheus.Desc
	short       *prometheus.Desc
	uptime      *prometheus.Desc
}

func newStatsCollector(eng Monitor) *statsCollector {
	q := []string{"queue"}
	return &statsCollector{
		eng:       eng,
		depth:     prometheus.NewDesc("edgeq_queue_depth", "Jobs stored in a queue, by state.", []string{"queue", "state"}, nil),
		enqueued:  prometheus.NewDesc("edgeq_jobs_enqueued_total", "Jobs admitted into a queue.", q, nil),
		completed: prometheus.NewDesc("edgeq_jobs_completed_total", "Jobs of a queue that finished (acked).", q, nil),
		retried:   prometheus.NewDesc("edgeq_jobs_retried_total", "Attempts of a queue's jobs that were retried.", q, nil),
		dead:      prometheus.NewDesc("edgeq_jobs_dead_total", "Jobs of a queue moved to the dead-letter set.", q, nil),
		rejected:  prometheus.NewDesc("edgeq_jobs_rejected_total", "Jobs refused for a queue, by reason (invalid, too_large, queue_full, rate_limited, shed, disk_full, unavailable), on every transport; queue=\"\" for jobs naming no existing queue.", []string{"queue", "reason"}, nil),
		evicted:   prometheus.NewDesc("edgeq_jobs_evicted_total", "Jobs a queue accepted then dropped by its bounds, by reason (evicted: on_full evict_oldest; expired_age: older than max_age).", []string{"queue", "reason"}, nil),
		bytes:     prometheus.NewDesc("edgeq_queue_bytes", "Payload bytes of a queue's ready, delayed and leased jobs (what max_bytes bounds).", q, nil),
		oldest:    prometheus.NewDesc("edgeq_queue_oldest_age_seconds", "Age of the oldest ready job of a queue; 0 when none is ready.", q, nil),
		groups:    prometheus.NewDesc("edgeq_queue_groups", "Ordered groups of a queue with work (ready, leased or a retry waiting).", q, nil),
		groupAge:  prometheus.NewDesc("edgeq_queue_oldest_group_age_seconds", "Age of the head of a queue's oldest ordered group; 0 when no group has a ready job.", q, nil),
		paused:    prometheus.NewDesc("edgeq_queue_paused", "1 while dispatch of a queue is paused.", q, nil),
		shed:      prometheus.NewDesc("edgeq_queue_shed", "1 while a queue's new jobs are shed by the governor.", q, nil),
		info:      prometheus.NewDesc("edgeq_queue_info", "Always 1; labels a queue with its priority class.", []string{"queue", "class"}, nil),
		short:     prometheus.NewDesc("edgeq_store_short", "1 when the store came back at open without acknowledged writes.", nil, nil),
		uptime:    prometheus.NewDesc("edgeq_uptime_seconds", "Seconds since the engine started.", nil, nil),

		breaker:     prometheus.NewDesc("edgeq_queue_breaker_state", "State of a queue's circuit breaker: 0 closed, 1 open, 2 half-open.", q, nil),
		running:     prometheus.NewDesc("edgeq_queue_running", "In-process jobs of a queue running now.", q, nil),
		alerting:    prometheus.NewDesc("edgeq_queue_backlog_alert", "1 while a queue's backlog alert is raised (alert_age or alert_depth crossed).", q, nil),
		alertsTotal: prometheus.NewDesc("edgeq_backlog_alerts_total", "Backlog alerts raised for a queue.", q, nil),
		drainETA:    prometheus.NewDesc("edgeq_queue_drain_eta_seconds", "Estimated seconds until a queue's backlog drains at the current rates; absent while it is not shrinking.", q, nil),
		inRate:      prometheus.NewDesc("edgeq_queue_in_rate", "Jobs per second admitted into a queue over the last minute.", q, nil),
		outRate:     prometheus.NewDesc("edgeq_queue_out_rate", "Jobs per second of a queue completed or dead-lettered over the last minute.", q, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.depth, c.enqueued, c.completed, c.retried, c.dead, c.rejected, c.evicted, c.bytes, c.oldest, c.groups, c.groupAge, c.paused, c.shed, c.info,
		c.breaker, c.running, c.alerting, c.alertsTotal, c.drainETA, c.inRate, c.outRate, c.short, c.uptime,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector; it is safe for concurrent use
// as long as Monitor.Stats is.
func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.eng.Stats()
	emit := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		m, err := prometheus.NewConstMetric(d, t, v, labels...)
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}
	own, rest := splitQueues(st.Queues, metricQueues)
	for _, q := range own {
		c.collectQueue(emit, q, true)
	}
	if len(rest) > 0 {
		c.collectQueue(emit, sumQueues(rest), false)
	}
	for _, reason := range engine.RejectReasons {
		emit(c.rejected, prometheus.CounterValue, float64(st.Rejected[reason]), "", reason)
	}
	emit(c.short, prometheus.GaugeValue, b2f(st.StoreShort))
	emit(c.uptime, prometheus.GaugeValue, st.Uptime.Seconds())
}

type emitFunc func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string)

// collectQueue emits the series of one queue; of the sum of the other
// queues (own false) only those that add up.
func (c *statsCollector) collectQueue(emit emitFunc, q engine.QueueStats, own bool) {
	n := q.Name
	emit(c.depth, prometheus.GaugeValue, float64(q.Ready), n, "ready")
	emit(c.depth, prometheus.GaugeValue, float64(q.Delayed), n, "delayed")
	emit(c.depth, prometheus.GaugeValue, float64(q.Leased), n, "leased")
	emit(c.depth, prometheus.GaugeValue, float64(q.Dead), n, "dead")
	emit(c.depth, prometheus.GaugeValue, float64(q.Done), n, "done")
	emit(c.enqueued, prometheus.CounterValue, float64(q.EnqueuedTotal), n)
	emit(c.completed, prometheus.CounterValue, float64(q.CompletedTotal), n)
	emit(c.retried, prometheus.CounterValue, float64(q.RetriedTotal), n)
	emit(c.dead, prometheus.CounterValue, float64(q.DeadTotal), n)
	for _, reason := range engine.RejectReasons {
		emit(c.rejected, prometheus.CounterValue, float64(q.Rejected[reason]), n, reason)
	}
	for _, reason := range engine.EvictReasons {
		emit(c.evicted, prometheus.CounterValue, float64(q.Evicted[reason]), n, reason)
	}
	if !q.BytesUnknown {
		emit(c.bytes, prometheus.GaugeValue, float64(q.Bytes), n)
	}
	emit(c.oldest, prometheus.GaugeValue, q.OldestReadyAge.Seconds(), n)
	emit(c.groups, prometheus.GaugeValue, float64(q.Groups), n)
	emit(c.groupAge, prometheus.GaugeValue, q.OldestGroupAge.Seconds(), n)
	emit(c.running, prometheus.GaugeValue, float64(q.Running), n)
	emit(c.alertsTotal, prometheus.CounterValue, float64(q.AlertsTotal), n)
	emit(c.inRate, prometheus.GaugeValue, q.InRate, n)
	emit(c.outRate, prometheus.GaugeValue, q.OutRate, n)
	if !own {
		return
	}
	emit(c.paused, prometheus.GaugeValue, b2f(q.Paused), n)
	emit(c.shed, prometheus.GaugeValue, b2f(q.Shed), n)
	emit(c.info, prometheus.GaugeValue, 1, n, className(q.Class))
	emit(c.breaker, prometheus.GaugeValue, float64(q.Breaker), n)
	emit(c.alerting, prometheus.GaugeValue, b2f(q.Alerting), n)
	if q.DrainETA != nil {
		emit(c.drainETA, prometheus.GaugeValue, q.DrainETA.Seconds(), n)
	}
}

// metricQueues is how many queues that are not configured get series of
// their own, the deepest first: with thousands of queues a scrape would
// otherwise take megabytes (issue 14).
const metricQueues = 50

// otherQueue labels the sums of the queues without series of their own. It
// cannot be a queue's name, which never starts with '_'.
const otherQueue = "_other"

// splitQueues picks the queues that get series of their own: every
// configured one and the n deepest others (stored jobs, then name). Both
// parts keep the order of qs.
func splitQueues(qs []engine.QueueStats, n int) (own, rest []engine.QueueStats) {
	var others []int
	for i, q := range qs {
		if !q.Configured {
			others = append(others, i)
		}
	}
	if len(others) <= n {
		return qs, nil
	}
	stored := func(q engine.QueueStats) int64 { return q.Ready + q.Delayed + q.Leased + q.Dead }
	slices.SortStableFunc(others, func(a, b int) int {
		return cmp.Compare(stored(qs[b]), stored(qs[a]))
	})
	folded := make([]bool, len(qs))
	for _, i := range others[n:] {
		folded[i] = true
	}
	for i, q := range qs {
		if folded[i] {
			rest = append(rest, q)
		} else {
			own = append(own, q)
		}
	}
	return own, rest
}

// sumQueues adds up qs under otherQueue.
func sumQueues(qs []engine.QueueStats) engine.QueueStats {
	s := engine.QueueStats{Name: otherQueue, Rejected: make(map[string]uint64, len(engine.RejectReasons)),
		Evicted: make(map[string]uint64, len(engine.EvictReasons))}
	for _, q := range qs {
		s.Ready += q.Ready
		s.Delayed += q.Delayed
		s.Leased += q.Leased
		s.Dead += q.Dead
		s.EnqueuedTotal += q.EnqueuedTotal
		s.CompletedTotal += q.CompletedTotal
		s.RetriedTotal += q.RetriedTotal
		s.DeadTotal += q.DeadTotal
		for r, n := range q.Rejected {
			s.Rejected[r] += n
		}
		s.Bytes += q.Bytes
		s.BytesUnknown = s.BytesUnknown || q.BytesUnknown
		for r, n := range q.Evicted {
			s.Evicted[r] += n
		}
		s.OldestReadyAge = max(s.OldestReadyAge, q.OldestReadyAge)
		s.Groups += q.Groups
		s.OldestGroupAge = max(s.OldestGroupAge, q.OldestGroupAge)
		s.Running += q.Running
		s.AlertsTotal += q.AlertsTotal
		s.InRate += q.InRate
		s.OutRate += q.OutRate
	}
	return s
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// histogramCollector exports the engine's histograms (Monitor.Histograms) at
// scrape time under fixed names.
type histogramCollector struct {
	eng   Monitor
	hists []exportedHistogram
}

// exportedHistogram is one engine histogram and its metric.
type exportedHistogram struct {
	desc *prometheus.Desc
	pick func(engine.Histograms) engine.Histogram
}

func newHistogramCollector(eng Monitor) *histogramCollector {
	return &histogramCollector{eng: eng, hists: []exportedHistogram{
		{prometheus.NewDesc("edgeq_commit_seconds", "Time to commit and sync one batch of the committer.", nil, nil),
			func(h engine.Histograms) engine.Histogram { return h.CommitSeconds }},
		{prometheus.NewDesc("edgeq_commit_batch_size", "Operations per committed batch.", nil, nil),
			func(h engine.Histograms) engine.Histogram { return h.CommitBatchSize }},
		{prometheus.NewDesc("edgeq_sync_seconds", "Time of one fsync of the store (a group commit).", nil, nil),
			func(h engine.Histograms) engine.Histogram { return h.SyncSeconds }},
		{prometheus.NewDesc("edgeq_sync_ops", "Operations made durable by one fsync of the store (the group commit's size).", nil, nil),
			func(h engine.Histograms) engine.Histogram { return h.SyncOps }},
		{prometheus.NewDesc("edgeq_enqueue_seconds", "Time of an enqueue from admission to its answer.", nil, nil),
			func(h engine.Histograms) engine.Histogram { return h.EnqueueSeconds }},
	}}
}

// Describe implements prometheus.Collector.
func (c *histogramCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, x := range c.hists {
		ch <- x.desc
	}
}

// Collect implements prometheus.Collector; it is safe for concurrent use
// as long as Monitor.Histograms is.
func (c *histogramCollector) Collect(ch chan<- prometheus.Metric) {
	hs := c.eng.Histograms()
	for _, x := range c.hists {
		h := x.pick(hs)
		buckets := make(map[float64]uint64, len(h.Bounds))
		for i, b := range h.Bounds {
			if i < len(h.Counts) {
				buckets[b] = h.Counts[i]
			}
		}
		m, err := prometheus.NewConstHistogram(x.desc, h.Count, h.Sum, buckets)
		if err != nil {
			m = prometheus.NewInvalidMetric(x.desc, err)
		}
		ch <- m
	}
}

// MQTTStats is what /metrics shows of the MQTT transport (Config.MQTT).
type MQTTStats struct {
	Connected  bool
	Received   uint64            // messages received
	Acked      uint64            // messages acknowledged to the broker (taken, duplicate or refused)
	Rejected   map[string]uint64 // messages refused with a notice, by reason
	Dropped    uint64            // notices, events and alerts not published
	Reconnects uint64            // connections after the first
	InHand     int64             // bytes of received messages held now
}

// mqttCollector exports MQTTStats, read at scrape time.
type mqttCollector struct {
	stats      func() (MQTTStats, bool)
	connected  *prometheus.Desc
	received   *prometheus.Desc
	acked      *prometheus.Desc
	rejected   *prometheus.Desc
	dropped    *prometheus.Desc
	reconnects *prometheus.Desc
	inHand     *prometheus.Desc
}

func newMQTTCollector(stats func() (MQTTStats, bool)) *mqttCollector {
	return &mqttCollector{
		stats:      stats,
		connected:  prometheus.NewDesc("edgeq_mqtt_connected", "1 while the MQTT connection is up and subscribed.", nil, nil),
		received:   prometheus.NewDesc("edgeq_mqtt_messages_received_total", "MQTT messages received.", nil, nil),
		acked:      prometheus.NewDesc("edgeq_mqtt_messages_acked_total", "MQTT messages acknowledged to the broker: stored, duplicate or refused with a notice.", nil, nil),
		rejected:   prometheus.NewDesc("edgeq_mqtt_messages_rejected_total", "MQTT messages refused with a notice, by reason.", []string{"reason"}, nil),
		dropped:    prometheus.NewDesc("edgeq_mqtt_publishes_dropped_total", "Notices, events and alerts not published: buffer full or disconnected.", nil, nil),
		reconnects: prometheus.NewDesc("edgeq_mqtt_reconnects_total", "MQTT connections made after the first.", nil, nil),
		inHand:     prometheus.NewDesc("edgeq_mqtt_in_hand_bytes", "Bytes of received MQTT messages held now, waiting for or in their commit.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *mqttCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connected, c.received, c.acked, c.rejected, c.dropped, c.reconnects, c.inHand} {
		ch <- d
	}
}

// Collect implements prometheus.Collector; it emits nothing while MQTT is
// off.
func (c *mqttCollector) Collect(ch chan<- prometheus.Metric) {
	st, ok := c.stats()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, b2f(st.Connected))
	ch <- prometheus.MustNewConstMetric(c.received, prometheus.CounterValue, float64(st.Received))
	ch <- prometheus.MustNewConstMetric(c.acked, prometheus.CounterValue, float64(st.Acked))
	for r, n := range st.Rejected {
		ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(n), r)
	}
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.Dropped))
	ch <- prometheus.MustNewConstMetric(c.reconnects, prometheus.CounterValue, float64(st.Reconnects))
	ch <- prometheus.MustNewConstMetric(c.inHand, prometheus.GaugeValue, float64(st.InHand))
}
