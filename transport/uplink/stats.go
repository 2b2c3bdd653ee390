package uplink

import (
	"sync"
	"sync/atomic"
	"time"
)

// BatchBuckets are the upper bounds of the batch size histogram.
var BatchBuckets = [...]int{1, 2, 5, 10, 20, 50, 100, 200, 500}

// Stats is what an uplink has done, for /v1/stats and /metrics.
type Stats struct {
	Type         string    `json:"type"`
	Connected    bool      `json:"connected"`
	DownSince    time.Time `json:"down_since,omitzero"`   // zero while connected
	LastSuccess  time.Time `json:"last_success,omitzero"` // zero before the first acknowledgement
	JobsSent     uint64    `json:"jobs_sent"`
	BytesSent    uint64    `json:"bytes_sent"`
	JobsFailed   uint64    `json:"jobs_failed"`
	Batches      uint64    `json:"batches"`
	Reconnects   uint64    `json:"reconnects"`
	Alerting     bool      `json:"alerting"`      // down longer than alert_after
	Rate         float64   `json:"rate"`          // jobs/s over the last full second
	Bandwidth    float64   `json:"bandwidth"`     // bytes/s over the last full second
	MaxRate      float64   `json:"max_rate"`      // 0: no cap
	MaxBandwidth int64     `json:"max_bandwidth"` // 0: no cap
	Compression  float64   `json:"compression"`   // bytes sent / bytes before compression; 1: none
	BatchSizes   []uint64  `json:"batch_sizes"`   // counts by BatchBuckets, then the rest
	BatchBuckets []int     `json:"batch_buckets"` // the histogram's upper bounds
}

// stats counts an uplink's work; safe for concurrent use.
type stats struct {
	connected   atomic.Bool
	downSince   atomic.Int64 // unix nanoseconds; 0 while connected
	lastSuccess atomic.Int64 // unix nanoseconds
	jobs        atomic.Uint64
	bytes       atomic.Uint64
	failed      atomic.Uint64
	batches     atomic.Uint64
	reconnects  atomic.Uint64
	rawBytes    atomic.Uint64 // bodies before compression
	wireBytes   atomic.Uint64 // the same bodies as sent
	alerting    atomic.Bool
	sizes       [len(BatchBuckets) + 1]atomic.Uint64

	mu sync.Mutex // guards the rate window
	// sec is the second being counted, secJobs and secBytes its counts;
	// lastJobs and lastBytes the last full second's.
	sec                 int64
	secJobs, secBytes   float64
	lastJobs, lastBytes float64
}

func (s *stats) init(now time.Time) { s.downSince.Store(now.UnixNano()) }

// up and down record the connection's state.
func (s *stats) up() {
	s.connected.Store(true)
	s.downSince.Store(0)
}

func (s *stats) down(now time.Time) {
	s.connected.Store(false)
	s.downSince.CompareAndSwap(0, now.UnixNano())
}

// sent records a batch of n jobs of which ok made it with okBytes bytes.
func (s *stats) sent(now time.Time, n, ok, okBytes int) {
	s.batches.Add(1)
	i := 0
	for i < len(BatchBuckets) && n > BatchBuckets[i] {
		i++
	}
	s.sizes[i].Add(1)
	s.jobs.Add(uint64(ok))
	s.bytes.Add(uint64(okBytes))
	s.failed.Add(uint64(n - ok))
	if ok > 0 {
		s.lastSuccess.Store(now.UnixNano())
	}
	s.mu.Lock()
	s.rollLocked(now)
	s.secJobs += float64(ok)
	s.secBytes += float64(okBytes)
	s.mu.Unlock()
}

// compressed records a body of raw bytes sent as wire bytes.
func (s *stats) compressed(raw, wire int) {
	s.rawBytes.Add(uint64(raw))
	s.wireBytes.Add(uint64(wire))
}

// rollLocked moves the window to now's second.
func (s *stats) rollLocked(now time.Time) {
	sec := now.Unix()
	switch {
	case sec == s.sec:
		return
	case sec == s.sec+1:
		s.lastJobs, s.lastBytes = s.secJobs, s.secBytes
	default:
		s.lastJobs, s.lastBytes = 0, 0
	}
	s.sec, s.secJobs, s.secBytes = sec, 0, 0
}

func (s *stats) snapshot(now time.Time) Stats {
	st := Stats{
		Connected:    s.connected.Load(),
		JobsSent:     s.jobs.Load(),
		BytesSent:    s.bytes.Load(),
		JobsFailed:   s.failed.Load(),
		Batches:      s.batches.Load(),
		Reconnects:   s.reconnects.Load(),
		Alerting:     s.alerting.Load(),
		Compression:  1,
		BatchBuckets: BatchBuckets[:],
		BatchSizes:   make([]uint64, len(s.sizes)),
	}
	if raw := s.rawBytes.Load(); raw > 0 {
		st.Compression = float64(s.wireBytes.Load()) / float64(raw)
	}
	if t := s.downSince.Load(); t != 0 {
		st.DownSince = time.Unix(0, t)
	}
	if t := s.lastSuccess.Load(); t != 0 {
		st.LastSuccess = time.Unix(0, t)
	}
	for i := range s.sizes {
		st.BatchSizes[i] = s.sizes[i].Load()
	}
	s.mu.Lock()
	s.rollLocked(now)
	st.Rate, st.Bandwidth = s.lastJobs, s.lastBytes
	s.mu.Unlock()
	return st
}

// Stats answers what u has done. Safe for concurrent use.
func (u *Uplink) Stats() Stats {
	st := u.stats.snapshot(time.Now())
	st.Type, st.MaxRate, st.MaxBandwidth = u.cfg.Type, u.cfg.MaxRate, u.cfg.MaxBandwidth
	return st
}

// DownFor answers how long u has been down at now; 0 while connected.
func (u *Uplink) DownFor(now time.Time) time.Duration {
	t := u.stats.downSince.Load()
	if t == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, t))
}

// CheckAlert raises u's alert when it has been down longer than
// AlertAfter at now and clears it once u is up; changed says whether this
// call did either. Safe for concurrent use.
func (u *Uplink) CheckAlert(now time.Time) (raised, changed bool) {
	raised = u.cfg.AlertAfter > 0 && u.DownFor(now) > u.cfg.AlertAfter
	return raised, u.stats.alerting.Swap(raised) != raised
}
