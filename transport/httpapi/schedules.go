package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/schedule"
)

// Schedules is the scheduler as the API uses it (engine/schedule.Scheduler).
// Its methods must be safe for concurrent use.
type Schedules interface {
	List() []schedule.Status
	Get(name string) (schedule.Status, error)
	Put(ctx context.Context, name string, spec schedule.Spec) (schedule.Status, bool, error)
	Delete(ctx context.Context, name string) error
	Stats() schedule.Stats
}

// ScheduleDoc is a schedule as JSON: its definition (defaults filled in),
// where it comes from ("file" or "api"), its last and next run times (null
// when there is none) and its runs by result since the daemon started.
type ScheduleDoc struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	schedule.Spec
	LastFireAt *time.Time        `json:"last_fire_at"`
	NextFireAt *time.Time        `json:"next_fire_at"`
	Runs       map[string]uint64 `json:"runs"`
}

// ScheduleList answers GET /v1/schedules.
type ScheduleList struct {
	Schedules []ScheduleDoc `json:"schedules"`
}

// ScheduleStats is the schedules block of GET /v1/stats.
type ScheduleStats struct {
	Count int               `json:"count"`
	Runs  map[string]uint64 `json:"runs"` // by result: fired, skipped_overlap, skipped_missed, refused
}

// maxScheduleBody bounds a PUT /v1/schedules/{name} body beyond its payload.
const maxScheduleBody = 64 << 10

func scheduleDoc(st schedule.Status) ScheduleDoc {
	d := ScheduleDoc{Name: st.Name, Source: st.Source, Spec: st.Spec, Runs: st.Runs}
	if !st.Last.IsZero() {
		d.LastFireAt = new(st.Last.UTC())
	}
	if !st.Next.IsZero() {
		d.NextFireAt = new(st.Next.UTC())
	}
	return d
}

var errNoScheduler = fmt.Errorf("%w: no scheduler runs", job.ErrUnavailable)

func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.schedules == nil {
		return nil, errNoScheduler
	}
	if err := parseQuery(r.URL.RawQuery); err != nil {
		return nil, err
	}
	out := ScheduleList{Schedules: []ScheduleDoc{}}
	for _, st := range s.schedules.List() {
		out.Schedules = append(out.Schedules, scheduleDoc(st))
	}
	return out, nil
}

func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.schedules == nil {
		return nil, errNoScheduler
	}
	if err := parseQuery(r.URL.RawQuery); err != nil {
		return nil, err
	}
	st, err := s.schedules.Get(r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	return scheduleDoc(st), nil
}

// putSchedule creates (201) or replaces (200) an API schedule.
func (s *Server) putSchedule(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.schedules == nil {
		return nil, errNoScheduler
	}
	if err := parseQuery(r.URL.RawQuery); err != nil {
		return nil, err
	}
	if err := wantJSON(r, "application/json"); err != nil {
		return nil, err
	}
	var spec schedule.Spec
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, int64(s.maxPayload)*2+maxScheduleBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("%w: body: want a schedule {\"cron\",\"queue\",...}: %v", job.ErrInvalidArgument, err)
	}
	if len(spec.Payload) > s.maxPayload || len(spec.PayloadB64)/4*3 > s.maxPayload {
		return nil, fmt.Errorf("%w: payload: above max_payload (%d bytes)", job.ErrTooLarge, s.maxPayload)
	}
	st, created, err := s.schedules.Put(r.Context(), r.PathValue("name"), spec)
	if err != nil {
		return nil, err
	}
	s.log.Info("schedule put", "schedule", st.Name, "remote", r.RemoteAddr)
	if created {
		return withStatus{status: http.StatusCreated, v: scheduleDoc(st)}, nil
	}
	return scheduleDoc(st), nil
}

func (s *Server) deleteSchedule(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.schedules == nil {
		return nil, errNoScheduler
	}
	if err := parseQuery(r.URL.RawQuery); err != nil {
		return nil, err
	}
	name := r.PathValue("name")
	if err := s.schedules.Delete(r.Context(), name); err != nil {
		return nil, err
	}
	s.log.Info("schedule deleted", "schedule", name, "remote", r.RemoteAddr)
	return OKResult{OK: true}, nil
}

// scheduleStats is the schedules block of GET /v1/stats; nil without a
// scheduler.
func (s *Server) scheduleStats() *ScheduleStats {
	if s.schedules == nil {
		return nil
	}
	st := s.schedules.Stats()
	return &ScheduleStats{Count: st.Schedules, Runs: st.Runs}
}

// scheduleCollector exports the schedules' figures at scrape time.
type scheduleCollector struct {
	sch         Schedules
	count, runs *prometheus.Desc
}

func newScheduleCollector(sch Schedules) *scheduleCollector {
	return &scheduleCollector{
		sch:   sch,
		count: prometheus.NewDesc("edgeq_schedules", "Schedules defined (file and API).", nil, nil),
		runs: prometheus.NewDesc("edgeq_schedule_fires_total",
			"Runs of a schedule since start, by result: fired, skipped_overlap, skipped_missed, refused.", []string{"schedule", "result"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *scheduleCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.count
	ch <- c.runs
}

// Collect implements prometheus.Collector.
func (c *scheduleCollector) Collect(ch chan<- prometheus.Metric) {
	list := c.sch.List()
	ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(len(list)))
	for _, st := range list {
		for _, r := range schedule.Results {
			ch <- prometheus.MustNewConstMetric(c.runs, prometheus.CounterValue, float64(st.Runs[r]), st.Name, r)
		}
	}
}
