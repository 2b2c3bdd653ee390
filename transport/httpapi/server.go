package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// Engine is what the HTTP API needs of the engine, by who uses it;
// *engine.Engine satisfies it. Implementations must be safe for concurrent
// use. The server never retains or reuses a slice it passes in (payloads
// belong to the engine after Enqueue and EnqueueBatch).
type Engine interface {
	Producer
	Worker
	Admin
	Monitor
}

// Producer is what the enqueue endpoints use.
type Producer interface {
	Enqueue(ctx context.Context, n job.New) (job.Result, error)
	// EnqueueBatch enqueues all of jobs or none.
	EnqueueBatch(ctx context.Context, queue string, jobs []job.New) ([]job.Result, error)
	// Refused counts n jobs for queue that the server refused with err
	// before they reached Enqueue or EnqueueBatch (which count their own).
	Refused(queue string, n int, err error)
}

// Worker is what the endpoints of a job's lease use.
type Worker interface {
	// Lease long-polls up to r.Wait itself; it returns early with ctx.
	Lease(ctx context.Context, r engine.LeaseRequest) ([]*job.Job, error)
	Ack(ctx context.Context, id job.ID, lease string) error
	// Nack's delay is engine.NackBackoff for the queue's backoff.
	Nack(ctx context.Context, id job.ID, lease string, delay time.Duration, reason string) (job.State, error)
	Fail(ctx context.Context, id job.ID, lease string, reason string) error
	Extend(ctx context.Context, id job.ID, lease string, ttr time.Duration) (time.Time, error)
}

// Admin is what the endpoints that inspect and manage jobs and queues use.
type Admin interface {
	// Job reads a job with its payload.
	Job(ctx context.Context, id job.ID) (*job.Job, error)
	Cancel(ctx context.Context, id job.ID) error
	Pause(ctx context.Context, queue string) error
	Resume(ctx context.Context, queue string) error
	// Purge deletes a queue's ready and delayed jobs.
	Purge(ctx context.Context, queue string) (int, error)
	// DeadList lists dead jobs with ID > after, oldest first; next is 0
	// when there are no more.
	DeadList(ctx context.Context, queue string, after job.ID, limit int) (jobs []*job.Job, next job.ID, err error)
	DeadRetry(ctx context.Context, queue string, limit int) (int, error)
	DeadPurge(ctx context.Context, queue string) (int, error)
	Move(ctx context.Context, r engine.MoveRequest) (moved, remaining int, err error)
}

// Monitor is what stats, metrics, readiness and the status page read.
type Monitor interface {
	Stats() engine.Stats
	QueueStats(name string) (engine.QueueStats, error)
	// Ready answers nil while the engine accepts jobs.
	Ready() error
	// Shedding answers the governor's level and the queues it sheds.
	Shedding() engine.Shedding
	// Histograms snapshots the engine's histograms by name (read at scrape time).
	Histograms() map[string]engine.Histogram
}

// Config configures a Server. Zero values mean defaults.
type Config struct {
	Addr            string // listen address, default "127.0.0.1:7070"
	Token           string // "": no authentication; else "Authorization: Bearer Token" on every endpoint but /healthz
	TLSCert, TLSKey string // PEM files; both or neither
	MaxPayload      int    // bytes, default 1 MiB
	// Hosts are the names clients may use in the Host header besides IP
	// addresses, localhost and Addr's host; others are refused, so that a
	// web page cannot reach the API through a DNS name it controls.
	Hosts []string
	// MaxBodies bounds the bytes of request bodies being read at once,
	// default 16 MiB and never less than one largest batch body; one
	// connection may hold a quarter of it, or one largest batch body.
	MaxBodies int64
	// BodyIdle cuts off a request body that sends nothing for this long,
	// default 10s.
	BodyIdle time.Duration
	Logger   *slog.Logger
	Governor Governor // optional: the governor block, drills and gauges
	// MQTT, when set, is read at each scrape of /metrics for the MQTT
	// transport's series; it answers ok false while MQTT is off.
	MQTT func() (st MQTTStats, ok bool)
}

// Server timeouts. Nothing may cut a request shorter than the longest long
// poll of /lease (60s): an expired read deadline also cancels the request's
// context in net/http.
const (
	readHeaderTimeout = 10 * time.Second
	requestTimeout    = engine.MaxLeaseWait + 60*time.Second // ReadTimeout and WriteTimeout
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
)

// Server serves the HTTP API. Its methods are safe for concurrent use.
type Server struct {
	eng         Engine
	gov         Governor // nil: no governor
	log         *slog.Logger
	addr        string
	maxPayload  int
	auth        bool
	tokenSum    [sha256.Size]byte
	bodies      bodyBudget
	bodyIdle    time.Duration
	hosts       map[string]bool // lowercased names allowed in Host besides IPs
	cop         *http.CrossOriginProtection
	tlsConfig   *tls.Config
	mux         *http.ServeMux // routes plus the JSON 404/405 catch-all
	paths       []routePath    // the routes split into segments, for miss
	metrics     http.Handler
	internalLog rateLog
	bufs        sync.Pool // *bytes.Buffer for bodies of unknown length
	resps       sync.Pool // *enqueued, the answers of single-job enqueues

	shutting atomic.Bool     // set once by Shutdown; new requests answer 503
	drainCtx context.Context // cancelled by Shutdown: ends long polls
	drain    context.CancelFunc

	mu      sync.Mutex
	srv     *http.Server // guarded by mu; nil until Start
	ln      net.Listener // guarded by mu
	stopped bool         // guarded by mu
	stopErr error        // guarded by mu; the result of the first Shutdown
	done    chan struct{}
	wg      sync.WaitGroup // the Serve goroutine

	testHookShutdown func() // called when http.Server.Shutdown has closed the listener
}

// New returns a Server for eng; it does not listen until Start. It loads the
// TLS key pair, if any, so that a bad one is reported here.
func New(cfg Config, eng Engine) (*Server, error) {
	if eng == nil {
		return nil, errors.New("httpapi: nil engine")
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("httpapi: TLSCert and TLSKey: set both or neither")
	}
	if cfg.MaxPayload < 0 {
		return nil, fmt.Errorf("httpapi: MaxPayload: must not be negative, got %d", cfg.MaxPayload)
	}
	s := &Server{
		eng:        eng,
		log:        cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)).With("component", "httpapi"),
		addr:       cmp.Or(cfg.Addr, "127.0.0.1:7070"),
		maxPayload: cmp.Or(cfg.MaxPayload, 1<<20),
		gov:        cfg.Governor,
		auth:       cfg.Token != "",
		tokenSum:   sha256.Sum256([]byte(cfg.Token)),
		done:       make(chan struct{}),
	}
	if cfg.MaxBodies < 0 || cfg.BodyIdle < 0 {
		return nil, errors.New("httpapi: MaxBodies and BodyIdle must not be negative")
	}
	s.bodies.max = max(cmp.Or(cfg.MaxBodies, defaultMaxBodies), s.batchLimit())
	s.bodies.perConn = max(s.bodies.max/4, s.batchLimit())
	s.bodyIdle = cmp.Or(cfg.BodyIdle, defaultBodyIdle)
	s.hosts = map[string]bool{"localhost": true}
	if h, _, err := net.SplitHostPort(s.addr); err == nil && h != "" {
		s.hosts[strings.ToLower(h)] = true
	}
	for _, h := range cfg.Hosts {
		s.hosts[strings.ToLower(h)] = true
	}
	s.cop = http.NewCrossOriginProtection()
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("httpapi: load tls key pair: %w", err)
		}
		s.tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	s.drainCtx, s.drain = context.WithCancel(context.Background())
	s.bufs.New = func() any { return new(bytes.Buffer) }
	s.resps.New = func() any { return &enqueued{b: make([]byte, 0, 192)} }
	s.metrics = newMetricsHandler(eng, s.gov, cfg.MQTT, s.log)
	s.mux = http.NewServeMux()
	for _, rt := range s.routeTable() {
		s.mux.HandleFunc(rt.pattern, rt.handler)
		s.paths = append(s.paths, splitPattern(rt.pattern))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { s.writeError(w, s.miss(w, r)) })
	return s, nil
}

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
		{"POST /v1/jobs/{id}/nack", s.decorate(s.nack)},
		{"POST /v1/jobs/{id}/fail", s.decorate(s.fail)},
		{"POST /v1/jobs/{id}/extend", s.decorate(s.extend)},
		{"GET /v1/jobs/{id}", s.decorate(s.getJob)},
		{"DELETE /v1/jobs/{id}", s.decorate(s.cancel)},
		{"GET /v1/queues", s.decorate(s.listQueues)},
		{"GET /v1/queues/{q}", s.decorate(s.getQueue)},
		{"POST /v1/queues/{q}/pause", s.decorate(s.pause)},
		{"POST /v1/queues/{q}/resume", s.decorate(s.resume)},
		{"GET /v1/queues/{q}/dead", s.decorate(s.deadList)},
		{"POST /v1/queues/{q}/dead/retry", s.decorate(s.deadRetry)},
		{"DELETE /v1/queues/{q}/dead", s.decorate(s.deadPurge)},
		{"POST /v1/queues/{q}/move", s.decorate(s.move)},
		{"GET /v1/stats", s.decorate(s.stats)},
		{"POST /v1/governor/drill", s.decorate(s.drill)},
		{"DELETE /v1/governor/drill", s.decorate(s.clearDrill)},
		{"GET /metrics", s.metrics.ServeHTTP},
		{"GET /healthz", s.decorate(s.healthz)},
		{"GET /readyz", s.decorate(s.readyz)},
		{"GET /{$}", s.statusPage},
	}
}

// Handler returns the API's handler (the Server itself), for mounting in
// another server or in tests; Start serves it too.
func (s *Server) Handler() http.Handler { return s }

// ServeHTTP refuses what a web page could send, authenticates, refuses new
// work while shutting down and routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if path != "/healthz" {
		if err := s.checkSite(r); err != nil {
			s.writeError(w, err)
			return
		}
	}
	if path != "/healthz" && !(path == "/" && r.Method == http.MethodGet) && s.auth && !s.authorized(r) {
		s.writeError(w, fmt.Errorf("%w: want Authorization: Bearer TOKEN", errUnauthorized))
		return
	}
	if s.shutting.Load() && path != "/healthz" && path != "/readyz" && path != "/metrics" {
		w.Header().Set("Connection", "close")
		s.writeError(w, job.ErrShuttingDown)
		return
	}
	if !cleanPath(path) {
		// The mux would redirect to the cleaned path: a client that
		// follows it lands on another endpoint ("/v1/queues//jobs" →
		// "/v1/queues/jobs"). Answer the path as sent instead.
		s.writeError(w, s.miss(w, r))
		return
	}
	s.mux.ServeHTTP(w, r)
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

// checkSite refuses a Host that is not one of the server's names (DNS
// rebinding: a page of a name its author points at this box reads it as
// its own) and a state-changing request from another origin (cross-site
// request forgery: without a token, a page's POST would be obeyed).
// Requests without Origin or Sec-Fetch-Site come from no browser and pass.
func (s *Server) checkSite(r *http.Request) error {
	if !s.knownHost(r.Host) {
		return fmt.Errorf("%w: host %q is not a name of this server (add it to http.hosts)", errForbidden, r.Host)
	}
	if err := s.cop.Check(r); err != nil {
		return fmt.Errorf("%w: %s from another origin (Origin %q, Sec-Fetch-Site %q)", errForbidden, r.Method, r.Header.Get("Origin"), r.Header.Get("Sec-Fetch-Site"))
	}
	return nil
}

// knownHost accepts an IP address (no page can rebind one), localhost,
// the listen address's host and the configured names, with any port; and
// no Host at all (HTTP/1.0, no browser).
func (s *Server) knownHost(host string) bool {
	if host == "" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return s.hosts[strings.ToLower(strings.TrimSuffix(host, "."))]
}

// authorized compares the bearer token in constant time; comparing hashes
// also hides the token's length.
func (s *Server) authorized(r *http.Request) bool {
	const scheme = "Bearer "
	v := r.Header.Get("Authorization")
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(v[len(scheme):])))
	return subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) == 1
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

// serverLog carries net/http's error log into slog: failed TLS handshakes
// (port scanners, plain HTTP on the TLS port) at debug so that they cannot
// flood the log, everything else (accept errors, handler panics) at warn.
type serverLog struct{ log *slog.Logger }

func (l serverLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.Contains(msg, "TLS handshake error") {
		l.log.Debug("http server", "msg", msg)
	} else {
		l.log.Warn("http server", "msg", msg)
	}
	return len(p), nil
}

// Start binds the listener and serves in a goroutine owned by the Server.
// It fails when the address cannot be bound, when the Server was started
// before or when it was shut down.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return fmt.Errorf("httpapi: start: %w", job.ErrShuttingDown)
	case s.srv != nil:
		return errors.New("httpapi: start: already started")
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("httpapi: listen %s: %w", s.addr, err)
	}
	srv := &http.Server{
		Handler:           s,
		TLSConfig:         s.tlsConfig,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       requestTimeout,
		WriteTimeout:      requestTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnContext:       withConnBodies,
		ErrorLog:          log.New(serverLog{s.log}, "", 0),
	}
	if s.testHookShutdown != nil {
		srv.RegisterOnShutdown(s.testHookShutdown)
	}
	s.srv, s.ln = srv, ln
	s.wg.Go(func() {
		var err error
		if s.tlsConfig != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http serve stopped", "err", err)
		}
	})
	s.log.Info("http api listening", "addr", ln.Addr().String(), "tls", s.tlsConfig != nil, "auth", s.auth)
	return nil
}

// Addr returns the bound address, nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown stops the server: new requests answer 503 shutting_down at once,
// long polls of /lease end, the listener closes, and Shutdown waits for the
// in-flight requests and the Serve goroutine. When ctx ends first it closes
// the remaining connections, still waits for the goroutine, and returns
// ctx's error. It is idempotent and safe before Start; later calls wait for
// the first one (or their own ctx) and return its result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutting.Store(true)
	s.drain()
	s.mu.Lock()
	first := !s.stopped
	s.stopped = true
	srv := s.srv
	s.mu.Unlock()
	if !first {
		select {
		case <-s.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.stopErr
	}
	var err error
	if srv != nil {
		if err = srv.Shutdown(ctx); err != nil {
			err = fmt.Errorf("httpapi: shutdown: %w", err)
			_ = srv.Close()
		}
		s.wg.Wait()
	}
	s.mu.Lock()
	s.stopErr = err
	s.mu.Unlock()
	close(s.done)
	return err
}
