package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newMetricsHandler serves /metrics from a registry of its own (never the
// global one): the engine's stats, read at scrape time, plus the Go runtime
// and process collectors.
func newMetricsHandler(eng Engine, gov Governor, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newStatsCollector(eng),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if gov != nil {
		reg.MustRegister(newGovernorCollector(gov))
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

// statsCollector turns one Engine.Stats snapshot per scrape into metrics.
// Label values are queue names and fixed enums (state, class) only.
type statsCollector struct {
	eng       Engine
	depth     *prometheus.Desc
	enqueued  *prometheus.Desc
	completed *prometheus.Desc
	retried   *prometheus.Desc
	dead      *prometheus.Desc
	rejected  *prometheus.Desc
	oldest    *prometheus.Desc
	paused    *prometheus.Desc
	shed      *prometheus.Desc
	info      *prometheus.Desc
	short     *prometheus.Desc
	uptime    *prometheus.Desc
}

func newStatsCollector(eng Engine) *statsCollector {
	q := []string{"queue"}
	return &statsCollector{
		eng:       eng,
		depth:     prometheus.NewDesc("edgeq_queue_depth", "Jobs stored in a queue, by state.", []string{"queue", "state"}, nil),
		enqueued:  prometheus.NewDesc("edgeq_jobs_enqueued_total", "Jobs admitted into a queue.", q, nil),
		completed: prometheus.NewDesc("edgeq_jobs_completed_total", "Jobs of a queue that finished (acked).", q, nil),
		retried:   prometheus.NewDesc("edgeq_jobs_retried_total", "Attempts of a queue's jobs that were retried.", q, nil),
		dead:      prometheus.NewDesc("edgeq_jobs_dead_total", "Jobs of a queue moved to the dead-letter set.", q, nil),
		rejected:  prometheus.NewDesc("edgeq_jobs_rejected_total", "Enqueues refused for a queue (full, rate limited, shed...).", q, nil),
		oldest:    prometheus.NewDesc("edgeq_queue_oldest_age_seconds", "Age of the oldest ready job of a queue; 0 when none is ready.", q, nil),
		paused:    prometheus.NewDesc("edgeq_queue_paused", "1 while dispatch of a queue is paused.", q, nil),
		shed:      prometheus.NewDesc("edgeq_queue_shed", "1 while a queue's new jobs are shed by the governor.", q, nil),
		info:      prometheus.NewDesc("edgeq_queue_info", "Always 1; labels a queue with its priority class.", []string{"queue", "class"}, nil),
		short:     prometheus.NewDesc("edgeq_store_short", "1 when the store came back at open without acknowledged writes.", nil, nil),
		uptime:    prometheus.NewDesc("edgeq_uptime_seconds", "Seconds since the engine started.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.depth, c.enqueued, c.completed, c.retried, c.dead, c.rejected, c.oldest, c.paused, c.shed, c.info, c.short, c.uptime} {
		ch <- d
	}
}

// Collect implements prometheus.Collector; it is safe for concurrent use
// as long as Engine.Stats is.
func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.eng.Stats()
	emit := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		m, err := prometheus.NewConstMetric(d, t, v, labels...)
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}
	for _, q := range st.Queues {
		n := q.Name
		emit(c.depth, prometheus.GaugeValue, float64(q.Ready), n, "ready")
		emit(c.depth, prometheus.GaugeValue, float64(q.Delayed), n, "delayed")
		emit(c.depth, prometheus.GaugeValue, float64(q.Leased), n, "leased")
		emit(c.depth, prometheus.GaugeValue, float64(q.Dead), n, "dead")
		emit(c.enqueued, prometheus.CounterValue, float64(q.EnqueuedTotal), n)
		emit(c.completed, prometheus.CounterValue, float64(q.CompletedTotal), n)
		emit(c.retried, prometheus.CounterValue, float64(q.RetriedTotal), n)
		emit(c.dead, prometheus.CounterValue, float64(q.DeadTotal), n)
		emit(c.rejected, prometheus.CounterValue, float64(q.RejectedTotal), n)
		emit(c.oldest, prometheus.GaugeValue, q.OldestReadyAge.Seconds(), n)
		emit(c.paused, prometheus.GaugeValue, b2f(q.Paused), n)
		emit(c.shed, prometheus.GaugeValue, b2f(q.Shed), n)
		emit(c.info, prometheus.GaugeValue, 1, n, className(q.Class))
	}
	emit(c.short, prometheus.GaugeValue, b2f(st.StoreShort))
	emit(c.uptime, prometheus.GaugeValue, st.Uptime.Seconds())
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
