package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/edgeq/edgeq/engine/job"
)

type route struct {
	pattern string
	handler http.HandlerFunc
}

// routeTable lists every endpoint of SPEC §5 served so far. Further ones
// (move, governor drill, the status page) register here too; a status page
// at the root must use the pattern "GET /{$}" so that the catch-all keeps
// answering JSON 404s.
func (s *Server) routeTable() []route {
	return []route{
		{"POST /v1/queues/{q}/jobs", s.decorate(s.enqueue)},
		{"DELETE /v1/queues/{q}/jobs", s.decorate(s.purge)},
		{"POST /v1/queues/{q}/batch", s.decorate(s.enqueueBatch)},
		{"POST /v1/queues/{q}/lease", s.decorate(s.lease)},
		{"POST /v1/jobs/{id}/ack", s.decorate(s.ack)},
		{"POST /v1/acks", s.decorate(s.acks)},
		{"POST /v1/jobs/{id}/nack", s.decorate(s.nack)},
		{"POST /v1/jobs/{id}/fail", s.decorate(s.fail)},
		{"POST /v1/jobs/{id}/extend", s.decorate(s.extend)},
		{"GET /v1/jobs/{id}", s.decorate(s.getJob)},
		{"DELETE /v1/jobs/{id}", s.decorate(s.cancel)},
		{"POST /v1/jobs/{id}/retry", s.decorate(s.retry)},
		{"GET /v1/queues", s.decorate(s.listQueues)},
		{"GET /v1/queues/{q}", s.decorate(s.getQueue)},
		{"POST /v1/queues/{q}/pause", s.decorate(s.pause)},
		{"POST /v1/queues/{q}/resume", s.decorate(s.resume)},
		{"GET /v1/queues/{q}/dead", s.decorate(s.deadList)},
		{"POST /v1/queues/{q}/dead/retry", s.decorate(s.deadRetry)},
		{"DELETE /v1/queues/{q}/dead", s.decorate(s.deadPurge)},
		{"POST /v1/queues/{q}/move", s.decorate(s.move)},
		{"GET /v1/stats", s.decorate(s.stats)},
		{"GET /v1/stats/history", s.decorate(s.statsHistory)},
		{"GET /v1/schedules", s.decorate(s.listSchedules)},
		{"GET /v1/schedules/{name}", s.decorate(s.getSchedule)},
		{"PUT /v1/schedules/{name}", s.decorate(s.putSchedule)},
		{"DELETE /v1/schedules/{name}", s.decorate(s.deleteSchedule)},
		{"POST /v1/governor/drill", s.decorate(s.drill)},
		{"DELETE /v1/governor/drill", s.decorate(s.clearDrill)},
		{"GET /metrics", s.metrics.ServeHTTP},
		{"GET /healthz", s.decorate(s.healthz)},
		{"GET /readyz", s.decorate(s.readyz)},
		{"GET /{$}", s.statusPage},
	}
}

// cleanPath reports whether p has no empty, "." or ".." segment (a
// trailing slash aside): whether the mux takes it as it is.
func cleanPath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	for i := 1; i < len(p); {
		seg, _, _ := strings.Cut(p[i:], "/")
		last := i+len(seg) == len(p)
		if (seg == "" && !last) || seg == "." || seg == ".." {
			return false
		}
		i += len(seg) + 1
	}
	return true
}

// miss is the refusal of a request no route took, answered as JSON: a path that fits a route
// but for an empty or dot segment where the route takes a queue or a job id
// names that segment (400 invalid_queue, 400 invalid_argument); a path that
// fits routes of other methods answers 405 with Allow; anything else 404.
// It matches the raw segments itself (the mux needs clean paths, and does
// not match a wildcard to an empty segment).
func (s *Server) miss(w http.ResponseWriter, r *http.Request) error {
	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	var allow []string
	for _, p := range s.paths {
		vals, ok := p.match(segs)
		if !ok {
			continue
		}
		if p.method != r.Method && !(p.method == http.MethodGet && r.Method == http.MethodHead) {
			allow = append(allow, p.method)
			if p.method == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
			continue
		}
		if err := badSegment(vals); err != nil {
			return err
		}
	}
	if len(allow) > 0 {
		slices.Sort(allow)
		allowed := strings.Join(slices.Compact(allow), ", ")
		w.Header().Set("Allow", allowed)
		return fmt.Errorf("%w: %s %s (allowed: %s)", errMethodNotAllowed, r.Method, r.URL.Path, allowed)
	}
	return fmt.Errorf("%w: no route for %s %s", job.ErrNotFound, r.Method, r.URL.Path)
}

// routePath is a route's method and path segments; a wildcard segment is
// held as its name in braces.
type routePath struct {
	method string
	segs   []string
}

// splitPattern splits a route pattern ("POST /v1/queues/{q}/jobs").
func splitPattern(pattern string) routePath {
	method, path, _ := strings.Cut(pattern, " ")
	return routePath{method: method, segs: strings.Split(strings.TrimPrefix(path, "/"), "/")}
}

// match matches escaped path segments; a wildcard takes any one segment,
// even an empty one. It answers the wildcards' unescaped values by name.
func (p routePath) match(segs []string) (map[string]string, bool) {
	if len(segs) != len(p.segs) {
		return nil, false
	}
	var vals map[string]string
	for i, ps := range p.segs {
		if ps == "{$}" {
			if segs[i] != "" {
				return nil, false
			}
			continue
		}
		if !strings.HasPrefix(ps, "{") {
			if ps != segs[i] {
				return nil, false
			}
			continue
		}
		v, err := url.PathUnescape(segs[i])
		if err != nil {
			return nil, false
		}
		if vals == nil {
			vals = make(map[string]string, 2)
		}
		vals[strings.Trim(ps, "{}")] = v
	}
	return vals, true
}

// badSegment is the refusal of a wildcard value that no handler takes.
func badSegment(vals map[string]string) error {
	if q, ok := vals["q"]; ok {
		if err := job.CheckQueueName(q); err != nil {
			return err
		}
	}
	if id, ok := vals["id"]; ok {
		if _, err := parseJobID(id); err != nil {
			return err
		}
	}
	return nil
}
