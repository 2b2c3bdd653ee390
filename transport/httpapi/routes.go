package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/edgeq/edgeq/engine/job"
)

// route is one endpoint: its pattern, the role a token needs for it, how
// a token's queues limit it, and its handler. guard checks the role and
// the queues; handlers never do.
type route struct {
	pattern string
	role    Role
	scope   scope
	// queryQueue names a query parameter that names a second queue the
	// route touches (scopeQueue), e.g. the target of a move.
	queryQueue string
	handler    http.HandlerFunc
}

// routeTable lists every endpoint of SPEC §5, each with its role (issue
// 21); a status page at the root must use the pattern "GET /{$}" so that
// the catch-all keeps answering JSON 404s.
func (s *Server) routeTable() []route {
	d := s.decorate
	return []route{
		{pattern: "POST /v1/queues/{q}/jobs", role: RoleProduce, scope: scopeQueue, handler: d(s.enqueue)},
		{pattern: "DELETE /v1/queues/{q}/jobs", role: RoleAdmin, scope: scopeQueue, handler: d(s.purge)},
		{pattern: "POST /v1/queues/{q}/batch", role: RoleProduce, scope: scopeQueue, handler: d(s.enqueueBatch)},
		{pattern: "POST /v1/queues/{q}/lease", role: RoleWork, scope: scopeQueue, handler: d(s.lease)},
		{pattern: "POST /v1/jobs/{id}/ack", role: RoleWork, scope: scopeLease, handler: d(s.ack)},
		{pattern: "POST /v1/acks", role: RoleWork, scope: scopeLease, handler: d(s.acks)},
		{pattern: "POST /v1/jobs/{id}/nack", role: RoleWork, scope: scopeLease, handler: d(s.nack)},
		{pattern: "POST /v1/jobs/{id}/fail", role: RoleWork, scope: scopeLease, handler: d(s.fail)},
		{pattern: "POST /v1/jobs/{id}/extend", role: RoleWork, scope: scopeLease, handler: d(s.extend)},
		{pattern: "GET /v1/jobs/{id}", role: RoleRead, scope: scopeJob, handler: d(s.getJob)},
		{pattern: "DELETE /v1/jobs/{id}", role: RoleAdmin, scope: scopeJob, handler: d(s.cancel)},
		{pattern: "POST /v1/jobs/{id}/retry", role: RoleAdmin, scope: scopeJob, handler: d(s.retry)},
		{pattern: "GET /v1/queues", role: RoleRead, scope: scopeList, handler: d(s.listQueues)},
		{pattern: "GET /v1/queues/{q}", role: RoleRead, scope: scopeQueue, handler: d(s.getQueue)},
		{pattern: "POST /v1/queues/{q}/pause", role: RoleAdmin, scope: scopeQueue, handler: d(s.pause)},
		{pattern: "POST /v1/queues/{q}/resume", role: RoleAdmin, scope: scopeQueue, handler: d(s.resume)},
		{pattern: "GET /v1/queues/{q}/dead", role: RoleAdmin, scope: scopeQueue, handler: d(s.deadList)},
		{pattern: "POST /v1/queues/{q}/dead/retry", role: RoleAdmin, scope: scopeQueue, handler: d(s.deadRetry)},
		{pattern: "DELETE /v1/queues/{q}/dead", role: RoleAdmin, scope: scopeQueue, handler: d(s.deadPurge)},
		{pattern: "POST /v1/queues/{q}/move", role: RoleAdmin, scope: scopeQueue, queryQueue: "to", handler: d(s.move)},
		{pattern: "GET /v1/stats", role: RoleRead, scope: scopeList, handler: d(s.stats)},
		{pattern: "GET /v1/stats/history", role: RoleRead, scope: scopeList, handler: d(s.statsHistory)},
		{pattern: "GET /v1/schedules", role: RoleRead, scope: scopeAll, handler: d(s.listSchedules)},
		{pattern: "GET /v1/schedules/{name}", role: RoleRead, scope: scopeAll, handler: d(s.getSchedule)},
		{pattern: "PUT /v1/schedules/{name}", role: RoleAdmin, scope: scopeAll, handler: d(s.putSchedule)},
		{pattern: "DELETE /v1/schedules/{name}", role: RoleAdmin, scope: scopeAll, handler: d(s.deleteSchedule)},
		{pattern: "POST /v1/governor/drill", role: RoleAdmin, scope: scopeAll, handler: d(s.drill)},
		{pattern: "DELETE /v1/governor/drill", role: RoleAdmin, scope: scopeAll, handler: d(s.clearDrill)},
		{pattern: "GET /metrics", role: RoleRead, scope: scopeAll, handler: s.metrics.ServeHTTP},
		{pattern: "GET /healthz", role: RolePublic, scope: scopeNone, handler: d(s.healthz)},
		{pattern: "GET /readyz", role: RoleRead, scope: scopeNone, handler: d(s.readyz)},
		{pattern: "GET /{$}", role: RolePublic, scope: scopeNone, handler: s.statusPage},
		{pattern: "GET /v1/openapi.json", role: RolePublic, scope: scopeNone, handler: s.openapi},
		{pattern: "GET /v1/whoami", role: RoleRead, scope: scopeNone, handler: d(s.whoami)},
	}
}

// RouteInfo describes one endpoint: its method, path pattern and the role
// a token needs for it (RolePublic: none).
type RouteInfo struct {
	Method, Path string
	Role         Role
}

// Routes lists the endpoints a Server registers, in table order, for
// documentation and tests. It is safe for concurrent use.
func Routes() []RouteInfo {
	// The table only takes method values of the Server; none is called.
	s := &Server{metrics: http.NotFoundHandler()}
	return s.routes()
}

func (s *Server) routes() []RouteInfo {
	var out []RouteInfo
	for _, rt := range s.routeTable() {
		method, path, _ := strings.Cut(rt.pattern, " ")
		out = append(out, RouteInfo{Method: method, Path: path, Role: rt.role})
	}
	return out
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
