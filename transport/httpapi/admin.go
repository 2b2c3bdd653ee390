package httpapi

import (
	"net/http"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/wire"
)

// The admins' and monitors' endpoints: jobs, queues, dead letters, stats
// and health.

// Limits of the list endpoints.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := s.noQueryID(r)
	if err != nil {
		return nil, err
	}
	j, err := s.eng.Job(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return wire.FromJob(j, true), nil
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := s.noQueryID(r)
	if err != nil {
		return nil, err
	}
	return OKResult{OK: true}, s.eng.Cancel(r.Context(), id)
}

// retry serves POST /v1/jobs/{id}/retry: one dead job back to ready.
func (s *Server) retry(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := s.noQueryID(r)
	if err != nil {
		return nil, err
	}
	return OKResult{OK: true}, s.eng.RetryDead(r.Context(), id)
}

func (s *Server) noQueryID(r *http.Request) (job.ID, error) {
	if err := parseQuery(r.URL.RawQuery); err != nil {
		return 0, err
	}
	return jobID(r)
}

func (s *Server) listQueues(w http.ResponseWriter, r *http.Request) (any, error) {
	return QueueList{Queues: queuesToWire(visibleQueues(r, s.eng.Stats().Queues, queueName))}, nil
}

func (s *Server) getQueue(w http.ResponseWriter, r *http.Request) (any, error) {
	q, err := s.eng.QueueStats(r.PathValue("q"))
	if err != nil {
		return nil, err
	}
	return queueStatsToWire(q), nil
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.PathValue("q")
	return PauseResult{Queue: q, Paused: true}, s.eng.Pause(r.Context(), q)
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.PathValue("q")
	return PauseResult{Queue: q, Paused: false}, s.eng.Resume(r.Context(), q)
}

func (s *Server) purge(w http.ResponseWriter, r *http.Request) (any, error) {
	n, err := s.eng.Purge(r.Context(), r.PathValue("q"))
	return DeletedResult{Deleted: n}, err
}

func (s *Server) deadList(w http.ResponseWriter, r *http.Request) (any, error) {
	var limitArg, afterArg string
	if err := parseQuery(r.URL.RawQuery, param{"limit", &limitArg}, param{"after", &afterArg}); err != nil {
		return nil, err
	}
	limit, err := parseInt("limit", limitArg, 1, maxListLimit, defaultListLimit)
	if err != nil {
		return nil, err
	}
	var after job.ID
	if afterArg != "" {
		if after, err = job.ParseID(afterArg); err != nil {
			return nil, invalidArg("after", "want a job id (16 hex digits), got %q", afterArg)
		}
	}
	jobs, next, err := s.eng.DeadList(r.Context(), r.PathValue("q"), after, limit)
	if err != nil {
		return nil, err
	}
	out := JobList{Jobs: wire.FromJobs(jobs, false)}
	if next != 0 {
		out.Next = next.String()
	}
	return out, nil
}

func (s *Server) deadRetry(w http.ResponseWriter, r *http.Request) (any, error) {
	var limitArg string
	if err := parseQuery(r.URL.RawQuery, param{"limit", &limitArg}); err != nil {
		return nil, err
	}
	limit, err := parseInt("limit", limitArg, 1, maxListLimit, defaultListLimit)
	if err != nil {
		return nil, err
	}
	n, err := s.eng.DeadRetry(r.Context(), r.PathValue("q"), limit)
	return MovedResult{Moved: n}, err
}

func (s *Server) deadPurge(w http.ResponseWriter, r *http.Request) (any, error) {
	n, err := s.eng.DeadPurge(r.Context(), r.PathValue("q"))
	return DeletedResult{Deleted: n}, err
}

// queueName is the name of a queue's stats.
func queueName(q engine.QueueStats) string { return q.Name }

// stats serves GET /v1/stats. A token limited to some queues sees those
// only; the governor and uplink blocks are the box's. The governor block is null when no governor
// is wired to the server; the uplinks block is absent without uplinks.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) (any, error) {
	st := s.eng.Stats()
	doc := StatsDoc{
		Governor:   s.governorBlock(),
		Queues:     queuesToWire(visibleQueues(r, st.Queues, queueName)),
		UptimeS:    st.Uptime.Seconds(),
		StoreShort: st.StoreShort,
		Schedules:  s.scheduleStats(),
	}
	if s.uplinks != nil {
		doc.Uplinks = s.uplinks()
	}
	return doc, nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) (any, error) {
	return Health{Status: "ok"}, nil
}

// readyz answers 200 while the engine accepts jobs, else 503 with the
// reason: an error, or at governor level critical the Readiness document.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.shutting.Load() {
		return nil, job.ErrShuttingDown
	}
	if err := s.eng.Ready(); err != nil {
		a := classify(err, false)
		if a.status != http.StatusServiceUnavailable {
			a = answer{status: http.StatusServiceUnavailable, code: "unavailable", message: err.Error(), retryAfter: a.retryAfter}
		}
		a.retryAfter = max(a.retryAfter, 1)
		return a, nil
	}
	sh := s.eng.Shedding()
	doc := Readiness{Status: "ready", Level: sh.Level.String(), Paused: sh.Paused, Refused: sh.Refused}
	if sh.Level < job.LevelCritical {
		return doc, nil
	}
	doc.Status = "shedding"
	return withStatus{status: http.StatusServiceUnavailable, v: doc, retryAfter: int(engine.ShedRetryAfter.Seconds())}, nil
}
