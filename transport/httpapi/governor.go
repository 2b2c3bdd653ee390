package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/resource"
)

// Governor is the resource governor as the API uses it (internal/daemon adapts
// resource.Governor to it). Its methods must be safe for concurrent use.
type Governor interface {
	// Status is the governor's state: the block of GET /v1/stats and the
	// figures of /metrics.
	Status() resource.Status
	// LevelChanges counts the level changes since the daemon started.
	LevelChanges() uint64
	// Drill forces level for d; ClearDrill ends a drill.
	Drill(level job.Level, d time.Duration) error
	ClearDrill()
}

// DrillRequest is the body of POST /v1/governor/drill.
type DrillRequest struct {
	Level    string `json:"level"`
	Duration string `json:"duration"` // Go duration, e.g. "60s"
}

// maxDrillBody bounds the drill request body.
const maxDrillBody = 4 << 10

// governorBlock is the governor block of GET /v1/stats and the drill
// answers; nil when no governor runs.
func (s *Server) governorBlock() *GovernorStats {
	if s.gov == nil {
		return nil
	}
	return governorStats(s.gov.Status())
}

// governorStats is st in its SPEC §5 wire form: null for a figure the
// governor does not know, percentages to one decimal.
func governorStats(st resource.Status) *GovernorStats {
	g := &GovernorStats{Level: st.Level.String(), Concurrency: st.Concurrency, Reason: st.Reason}
	s := st.Sample
	if s.Known.Has(resource.SignalCPU) {
		g.CPUPercent = new(round1(s.CPUBusy))
	}
	if s.Known.Has(resource.SignalMemory) {
		g.MemoryPercent = new(round1(s.MemPercent()))
	}
	if s.Known.Has(resource.SignalDisk) {
		g.DiskFreeBytes = new(s.DiskFree)
	}
	if st.Drill != nil {
		g.Drill = &DrillState{Level: st.Drill.Level.String(), Until: st.Drill.Until.UTC()}
	}
	return g
}

// round1 rounds a percentage to one decimal, as the governor logs it.
func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// drill serves POST /v1/governor/drill.
func (s *Server) drill(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.gov == nil {
		return nil, fmt.Errorf("%w: no governor runs", job.ErrUnavailable)
	}
	if err := wantJSON(r, "application/json"); err != nil {
		return nil, err
	}
	var req DrillRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxDrillBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("%w: body: want {\"level\",\"duration\"}: %v", job.ErrInvalidArgument, err)
	}
	level, err := job.ParseLevel(req.Level)
	if err != nil {
		return nil, fmt.Errorf("%w: level: %v", job.ErrInvalidArgument, err)
	}
	d, err := time.ParseDuration(req.Duration)
	if err != nil || d <= 0 {
		return nil, fmt.Errorf("%w: duration: want a positive Go duration such as \"60s\", got %q", job.ErrInvalidArgument, req.Duration)
	}
	if err := s.gov.Drill(level, d); err != nil {
		return nil, fmt.Errorf("%w: %v", job.ErrInvalidArgument, err)
	}
	s.log.Warn("governor drill", "level", level, "duration", d, "remote", r.RemoteAddr)
	return s.governorBlock(), nil
}

// clearDrill serves DELETE /v1/governor/drill.
func (s *Server) clearDrill(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.gov == nil {
		return nil, fmt.Errorf("%w: no governor runs", job.ErrUnavailable)
	}
	s.gov.ClearDrill()
	s.log.Info("governor drill cleared", "remote", r.RemoteAddr)
	return s.governorBlock(), nil
}

// governorCollector exports the governor's figures at scrape time.
type governorCollector struct {
	gov                                  Governor
	level, conc, changes, cpu, mem, disk *prometheus.Desc
}

func newGovernorCollector(g Governor) *governorCollector {
	return &governorCollector{
		gov:     g,
		level:   prometheus.NewDesc("edgeq_governor_level", "Governor pressure level: 0 normal, 1 elevated, 2 high, 3 critical.", nil, nil),
		conc:    prometheus.NewDesc("edgeq_governor_concurrency", "Worker limit set by the governor.", nil, nil),
		changes: prometheus.NewDesc("edgeq_governor_level_changes_total", "Governor level changes.", nil, nil),
		cpu:     prometheus.NewDesc("edgeq_host_cpu_percent", "Host CPU busy percent as the governor saw it.", nil, nil),
		mem:     prometheus.NewDesc("edgeq_host_memory_percent", "Memory in use, percent of the effective limit (cgroup or host).", nil, nil),
		disk:    prometheus.NewDesc("edgeq_host_disk_free_bytes", "Free bytes on the data directory's file system.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *governorCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.level, c.conc, c.changes, c.cpu, c.mem, c.disk} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *governorCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.gov.Status()
	s := st.Sample
	ch <- prometheus.MustNewConstMetric(c.level, prometheus.GaugeValue, float64(st.Level))
	ch <- prometheus.MustNewConstMetric(c.conc, prometheus.GaugeValue, float64(st.Concurrency))
	ch <- prometheus.MustNewConstMetric(c.changes, prometheus.CounterValue, float64(c.gov.LevelChanges()))
	if s.Known.Has(resource.SignalCPU) {
		ch <- prometheus.MustNewConstMetric(c.cpu, prometheus.GaugeValue, s.CPUBusy)
	}
	if s.Known.Has(resource.SignalMemory) {
		ch <- prometheus.MustNewConstMetric(c.mem, prometheus.GaugeValue, s.MemPercent())
	}
	if s.Known.Has(resource.SignalDisk) {
		ch <- prometheus.MustNewConstMetric(c.disk, prometheus.GaugeValue, float64(s.DiskFree))
	}
}
