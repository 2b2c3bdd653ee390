package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
)

// Role is what a token may do; each route needs one (routeTable).
type Role string

// The roles of SPEC §5 and issue 21. RoleAdmin implies the other three.
const (
	RoleProduce Role = "produce" // enqueue
	RoleWork    Role = "work"    // lease, ack, nack, fail, extend
	RoleRead    Role = "read"    // stats, jobs, metrics, readiness
	RoleAdmin   Role = "admin"   // everything else: pause, purge, move, dead letters, drills
	// RolePublic marks a route that needs no token (/healthz, the status
	// page, the API document); no token holds it.
	RolePublic Role = "public"
)

// Roles are the roles a token may hold, in the order the docs give them.
var Roles = []Role{RoleProduce, RoleWork, RoleRead, RoleAdmin}

// Token is one bearer token of the API: its name (for the log, never the
// value), its roles and the queues it may touch as path.Match globs (none:
// every queue).
type Token struct {
	Name   string
	Value  string
	Roles  []Role
	Queues []string
}

// TokenFileName is the name the single Config.Token is logged under.
const TokenFileName = "token_file"

// CheckTokens validates tokens as New does: names and values present and
// unique, roles known, globs well formed. Errors name the token by its
// index and name.
func CheckTokens(tokens []Token) error {
	names := map[string]int{}
	values := map[[sha256.Size]byte]string{}
	var errs []error
	for i, t := range tokens {
		at := fmt.Sprintf("tokens[%d]", i)
		if t.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: empty", at))
		} else if j, ok := names[t.Name]; ok {
			errs = append(errs, fmt.Errorf("%s.name: %q is also the name of tokens[%d]", at, t.Name, j))
		} else {
			names[t.Name] = i
		}
		if strings.TrimSpace(t.Value) == "" {
			errs = append(errs, fmt.Errorf("%s (%s): empty token", at, t.Name))
		} else if other, ok := values[sha256.Sum256([]byte(t.Value))]; ok {
			errs = append(errs, fmt.Errorf("%s (%s): same token as %s", at, t.Name, other))
		} else {
			values[sha256.Sum256([]byte(t.Value))] = t.Name
		}
		if len(t.Roles) == 0 {
			errs = append(errs, fmt.Errorf("%s.roles: none; want some of %s", at, rolesList()))
		}
		for _, r := range t.Roles {
			if !slices.Contains(Roles, r) {
				errs = append(errs, fmt.Errorf("%s.roles: unknown role %q; want some of %s", at, r, rolesList()))
			}
		}
		for _, g := range t.Queues {
			if _, err := path.Match(g, ""); err != nil || g == "" {
				errs = append(errs, fmt.Errorf("%s.queues: bad glob %q", at, g))
			}
		}
	}
	return errors.Join(errs...)
}

func rolesList() string {
	s := make([]string, len(Roles))
	for i, r := range Roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// scope says how a route's queue restriction applies to a token limited
// to some queues.
type scope uint8

const (
	// scopeQueue: the route names its queue in the path ({q}, and the
	// target of a move); a queue outside the token's is refused.
	scopeQueue scope = iota
	// scopeJob: the route names a job ({id}); the job's queue is looked up
	// and a job of another queue is refused.
	scopeJob
	// scopeLease: the route acts on a lease, which only a lease of the
	// job's queue handed out: no queue check.
	scopeLease
	// scopeList: the answer lists queues; it shows the token's only.
	scopeList
	// scopeAll: the answer covers every queue (metrics, drills): refused
	// to a token limited to some queues.
	scopeAll
	// scopeNone: the route concerns no queue (health, readiness, docs).
	scopeNone
)

// authToken is a configured token, by the hash of its value.
type authToken struct {
	name   string
	sum    [sha256.Size]byte
	roles  []Role
	queues []string // nil: every queue
}

// may reports whether t holds role.
func (t *authToken) may(role Role) bool {
	return slices.Contains(t.roles, role) || slices.Contains(t.roles, RoleAdmin)
}

// mayQueue reports whether t may touch queue q.
func (t *authToken) mayQueue(q string) bool {
	if t.queues == nil {
		return true
	}
	for _, g := range t.queues {
		if ok, _ := path.Match(g, q); ok {
			return true
		}
	}
	return false
}

// newAuthTokens checks and hashes the tokens of cfg: Token (as an admin
// token named TokenFileName) and Tokens.
func newAuthTokens(cfg Config) ([]authToken, error) {
	all := cfg.Tokens
	if cfg.Token != "" {
		all = append([]Token{{Name: TokenFileName, Value: cfg.Token, Roles: []Role{RoleAdmin}}}, all...)
	}
	if err := CheckTokens(all); err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	out := make([]authToken, len(all))
	for i, t := range all {
		out[i] = authToken{name: t.Name, sum: sha256.Sum256([]byte(strings.TrimSpace(t.Value))), roles: slices.Clone(t.Roles)}
		if len(t.Queues) > 0 {
			out[i].queues = slices.Clone(t.Queues)
		}
	}
	return out, nil
}

// identify answers the token the request's bearer credential is, or nil.
// It compares hashes in constant time (which also hides the tokens'
// lengths) against every token, so that the time taken does not say which
// one matched.
func (s *Server) identify(r *http.Request) *authToken {
	const scheme = "Bearer "
	v := r.Header.Get("Authorization")
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return nil
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(v[len(scheme):])))
	var found *authToken
	for i := range s.tokens {
		if subtle.ConstantTimeCompare(sum[:], s.tokens[i].sum[:]) == 1 {
			found = &s.tokens[i]
		}
	}
	return found
}

// authenticate answers 401 unless the request carries a known token (or
// the API is open).
func (s *Server) authenticate(r *http.Request) (*authToken, error) {
	if len(s.tokens) == 0 {
		return nil, nil
	}
	if t := s.identify(r); t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("%w: want Authorization: Bearer TOKEN", errUnauthorized)
}

// guard wraps a route's handler with its access check: the token, its
// role and its queues. It is the only place roles are checked.
func (s *Server) guard(rt route) http.HandlerFunc {
	if rt.role == RolePublic {
		return rt.handler
	}
	return func(w http.ResponseWriter, r *http.Request) {
		t, err := s.authenticate(r)
		if err == nil && t != nil {
			r, err = s.authorize(r, t, rt)
		}
		if err != nil {
			s.writeError(w, err)
			return
		}
		rt.handler(w, r)
	}
}

// authorize refuses (403 forbidden) a request t may not make on rt; for a
// list route it answers r carrying t's queues for the handler to filter.
func (s *Server) authorize(r *http.Request, t *authToken, rt route) (*http.Request, error) {
	if !t.may(rt.role) {
		s.refusal(t, rt, "role", string(rt.role))
		return r, fmt.Errorf("%w: token %q lacks the role %s that %s needs", errForbidden, t.name, rt.role, rt.pattern)
	}
	if t.queues == nil {
		return r, nil
	}
	var queues []string
	switch rt.scope {
	case scopeQueue:
		queues = append(queues, r.PathValue("q"))
		if to := rt.queryQueue; to != "" {
			if v := r.URL.Query().Get(to); v != "" {
				queues = append(queues, v)
			}
		}
	case scopeJob:
		id, err := parseJobID(r.PathValue("id"))
		if err != nil {
			return r, nil // the handler refuses it
		}
		j, err := s.eng.Job(r.Context(), id)
		if err != nil {
			return r, nil // the handler answers it (404, 503...)
		}
		queues = append(queues, j.Queue)
	case scopeList:
		return r.WithContext(context.WithValue(r.Context(), tokenKey{}, t)), nil
	case scopeAll:
		s.refusal(t, rt, "queues", strings.Join(t.queues, ","))
		return r, fmt.Errorf("%w: token %q is limited to queues %s and %s covers every queue", errForbidden, t.name, strings.Join(t.queues, ", "), rt.pattern)
	}
	for _, q := range queues {
		if !t.mayQueue(q) {
			s.refusal(t, rt, "queue", q)
			return r, fmt.Errorf("%w: token %q may not touch queue %q (its queues: %s)", errForbidden, t.name, q, strings.Join(t.queues, ", "))
		}
	}
	return r, nil
}

// refusal logs a 403 at a bounded rate, naming the token, never its value.
func (s *Server) refusal(t *authToken, rt route, what, v string) {
	if dropped, ok := s.forbidLog.allow(); ok {
		s.log.Warn("request forbidden", "token", t.name, "route", rt.pattern, what, v, "dropped", dropped)
	}
}

// tokenKey carries the token of a list request to its handler.
type tokenKey struct{}

// visibleQueues answers the queues of qs the request's token may see, in
// order: all of them unless the token is limited to some.
func visibleQueues[T any](r *http.Request, qs []T, name func(T) string) []T {
	t, _ := r.Context().Value(tokenKey{}).(*authToken)
	if t == nil {
		return qs
	}
	return slices.DeleteFunc(slices.Clone(qs), func(q T) bool { return !t.mayQueue(name(q)) })
}

// WhoAmI answers GET /v1/whoami: the token the request carries, its roles
// and its queues (null: every queue). The status page hides what the
// token may not do. Without tokens configured the API is open: roles
// [admin].
type WhoAmI struct {
	Name   string   `json:"name"`
	Roles  []Role   `json:"roles"`
	Queues []string `json:"queues"`
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := parseQuery(r.URL.RawQuery); err != nil {
		return nil, err
	}
	t := s.identify(r)
	if t == nil {
		return WhoAmI{Roles: []Role{RoleAdmin}}, nil
	}
	return WhoAmI{Name: t.name, Roles: t.roles, Queues: t.queues}, nil
}
