package httpapi

import "github.com/prometheus/client_golang/prometheus"

// UplinkStats is one uplink as /v1/stats and /metrics show it
// (Config.Uplinks, issue 19): its connection, its queues' backlog, what
// it sent and how fast against its caps.
type UplinkStats struct {
	Name         string   `json:"name"`
	Type         string   `json:"type"`
	Connected    bool     `json:"connected"`
	DownForS     float64  `json:"down_for_s"`             // 0 while connected
	LastSuccess  string   `json:"last_success,omitempty"` // RFC 3339; absent before the first acknowledgement
	Alerting     bool     `json:"alerting"`               // down longer than alert_after
	Queues       []string `json:"queues"`                 // the queues that send through it
	BacklogJobs  int64    `json:"backlog_jobs"`           // ready, delayed and leased jobs of its queues
	BacklogBytes *int64   `json:"backlog_bytes"`          // their payload bytes; null when a queue's were not counted at the start
	OldestAgeS   float64  `json:"oldest_age_s"`           // the oldest ready job among its queues
	JobsSent     uint64   `json:"jobs_sent"`
	BytesSent    uint64   `json:"bytes_sent"`
	JobsFailed   uint64   `json:"jobs_failed"`
	Reconnects   uint64   `json:"reconnects"`
	Compression  float64  `json:"compression"` // bytes sent per byte before compression; 1: none
	Batches      uint64   `json:"batches"`
	BatchBuckets []int    `json:"batch_buckets"` // upper bounds of BatchSizes' buckets
	BatchSizes   []uint64 `json:"batch_sizes"`   // batches by size, one more bucket than bounds
	Rate         float64  `json:"rate"`          // jobs/s over the last full second
	MaxRate      float64  `json:"max_rate"`      // 0: no cap
	Bandwidth    float64  `json:"bandwidth"`     // payload bytes/s over the last full second
	MaxBandwidth int64    `json:"max_bandwidth"` // 0: no cap
}

// uplinkCollector exports the uplinks' stats, read at scrape time.
type uplinkCollector struct {
	stats                                                    func() []UplinkStats
	connected, downFor, alerting, backlog, backlogBytes      *prometheus.Desc
	oldest                                                   *prometheus.Desc
	jobsSent, bytesSent, jobsFailed, reconnects, compression *prometheus.Desc
	batchSize, rate, maxRate, bandwidth, maxBandwidth        *prometheus.Desc
}

func newUplinkCollector(stats func() []UplinkStats) *uplinkCollector {
	u := []string{"uplink"}
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, u, nil) }
	return &uplinkCollector{
		stats:        stats,
		connected:    d("edgeq_uplink_connected", "1 while an uplink's connection is up."),
		downFor:      d("edgeq_uplink_down_seconds", "Seconds an uplink has been down; 0 while up."),
		alerting:     d("edgeq_uplink_alert", "1 while an uplink has been down longer than its alert_after."),
		backlog:      d("edgeq_uplink_backlog_jobs", "Ready, delayed and leased jobs of the queues that send through an uplink."),
		backlogBytes: d("edgeq_uplink_backlog_bytes", "Payload bytes of the ready, delayed and leased jobs of the queues that send through an uplink."),
		oldest:       d("edgeq_uplink_oldest_age_seconds", "Age of the oldest ready job among an uplink's queues."),
		jobsSent:     d("edgeq_uplink_jobs_sent_total", "Jobs an uplink's server acknowledged."),
		bytesSent:    d("edgeq_uplink_bytes_sent_total", "Payload bytes of the jobs an uplink's server acknowledged."),
		jobsFailed:   d("edgeq_uplink_jobs_failed_total", "Jobs of an uplink's batches that were not acknowledged (retried)."),
		reconnects:   d("edgeq_uplink_reconnects_total", "Connections an uplink made after its first."),
		compression:  d("edgeq_uplink_compression_ratio", "Bytes sent per byte before compression; 1 without compression."),
		batchSize:    d("edgeq_uplink_batch_size", "Jobs per batch an uplink sent."),
		rate:         d("edgeq_uplink_rate", "Jobs per second an uplink sent over the last full second."),
		maxRate:      d("edgeq_uplink_max_rate", "An uplink's max_rate in jobs per second; 0: no cap."),
		bandwidth:    d("edgeq_uplink_bandwidth_bytes", "Payload bytes per second an uplink sent over the last full second."),
		maxBandwidth: d("edgeq_uplink_max_bandwidth_bytes", "An uplink's max_bandwidth in bytes per second; 0: no cap."),
	}
}

// Describe implements prometheus.Collector.
func (c *uplinkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connected, c.downFor, c.alerting, c.backlog, c.backlogBytes, c.oldest, c.jobsSent, c.bytesSent,
		c.jobsFailed, c.reconnects, c.compression, c.batchSize, c.rate, c.maxRate, c.bandwidth, c.maxBandwidth} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *uplinkCollector) Collect(ch chan<- prometheus.Metric) {
	for _, u := range c.stats() {
		g := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, u.Name)
		}
		n := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), u.Name)
		}
		g(c.connected, b2f(u.Connected))
		g(c.downFor, u.DownForS)
		g(c.alerting, b2f(u.Alerting))
		g(c.backlog, float64(u.BacklogJobs))
		if u.BacklogBytes != nil {
			g(c.backlogBytes, float64(*u.BacklogBytes))
		}
		g(c.oldest, u.OldestAgeS)
		n(c.jobsSent, u.JobsSent)
		n(c.bytesSent, u.BytesSent)
		n(c.jobsFailed, u.JobsFailed)
		n(c.reconnects, u.Reconnects)
		g(c.compression, u.Compression)
		g(c.rate, u.Rate)
		g(c.maxRate, u.MaxRate)
		g(c.bandwidth, u.Bandwidth)
		g(c.maxBandwidth, float64(u.MaxBandwidth))
		buckets := make(map[float64]uint64, len(u.BatchBuckets))
		var count uint64
		for i, b := range u.BatchBuckets {
			count += u.BatchSizes[i]
			buckets[float64(b)] = count
		}
		count += u.BatchSizes[len(u.BatchBuckets)]
		// The sum of sizes is not kept: jobs sent and failed are.
		ch <- prometheus.MustNewConstHistogram(c.batchSize, count, float64(u.JobsSent+u.JobsFailed), buckets, u.Name)
	}
}
