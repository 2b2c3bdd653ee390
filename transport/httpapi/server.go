package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// Config configures a Server. Zero values mean defaults.
type Config struct {
	Addr  string // listen address, default "127.0.0.1:7070"
	Token string // an admin token (named TokenFileName); with Tokens empty too, no authentication
	// Tokens are scoped tokens (issue 21): each route needs a role, and a
	// token limited to some queues touches those only.
	Tokens          []Token
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
	// Uplinks, when set, is read by /v1/stats and each scrape of /metrics
	// for the uplinks' block and series.
	Uplinks func() []UplinkStats
	// HistoryEvery is how often the status page's history is sampled
	// (GET /v1/stats/history); 0: every 10 s, an hour in 360 samples.
	HistoryEvery time.Duration
	// Schedules, when set, serves /v1/schedules and the schedules' block
	// of /v1/stats and series of /metrics.
	Schedules Schedules
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
	uplinks     func() []UplinkStats // nil: no uplinks
	history     *history             // the status page's charts, sampled while started
	gov         Governor             // nil: no governor
	schedules   Schedules            // nil: no scheduler
	log         *slog.Logger
	addr        string
	maxPayload  int
	tokens      []authToken // none: the API is open
	forbidLog   rateLog
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
		schedules:  cfg.Schedules,
		done:       make(chan struct{}),
	}
	tokens, err := newAuthTokens(cfg)
	if err != nil {
		return nil, err
	}
	s.tokens = tokens
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
	s.metrics = newMetricsHandler(eng, s.gov, cfg.MQTT, cfg.Uplinks, cfg.Schedules, s.log)
	s.uplinks = cfg.Uplinks
	if cfg.HistoryEvery < 0 {
		return nil, fmt.Errorf("httpapi: HistoryEvery: must not be negative, got %v", cfg.HistoryEvery)
	}
	s.history = &history{every: cmp.Or(cfg.HistoryEvery, defaultHistoryInt)}
	s.mux = http.NewServeMux()
	for _, rt := range s.routeTable() {
		s.mux.HandleFunc(rt.pattern, s.guard(rt))
		s.paths = append(s.paths, splitPattern(rt.pattern))
	}
	s.mux.HandleFunc("/", s.missed)
	return s, nil
}

// Handler returns the API's handler (the Server itself), for mounting in
// another server or in tests; Start serves it too.
func (s *Server) Handler() http.Handler { return s }

// ServeHTTP refuses what a web page could send, refuses new work while
// shutting down and routes; each route authenticates and authorizes
// (guard), and so does a miss.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if path != "/healthz" {
		if err := s.checkSite(r); err != nil {
			s.writeError(w, err)
			return
		}
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
		s.missed(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// missed answers a request no route takes: 401 without a token, as any
// route would, else the refusal miss finds.
func (s *Server) missed(w http.ResponseWriter, r *http.Request) {
	if _, err := s.authenticate(r); err != nil {
		s.writeError(w, err)
		return
	}
	s.writeError(w, s.miss(w, r))
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
	s.wg.Go(func() { s.history.run(s.drainCtx, s) })
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
	s.log.Info("http api listening", "addr", ln.Addr().String(), "tls", s.tlsConfig != nil, "auth", len(s.tokens) > 0)
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
