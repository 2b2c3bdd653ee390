package native

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeq/edgeq/transport/httpapi"
)

// Config configures a Server. Zero values mean defaults; the server
// listens on nothing unless Listen or Socket is set.
type Config struct {
	Listen     string      // TCP address ("127.0.0.1:7701"); "" for none
	Socket     string      // unix socket path; "" for none
	SocketMode os.FileMode // the socket file's mode, default 0660
	// Token is the HTTP API's bearer token: "" leaves TCP open; else a TCP
	// connection's first frame must be a hello that carries it. The unix
	// socket's file mode is its access control.
	Token       string
	MaxPayload  int           // bytes, default 1 MiB
	MaxFrame    int           // bytes, default 8 × MaxPayload, at least DefaultMaxFrame
	MaxInFlight int           // requests of one connection not yet answered, default 128
	MaxConns    int           // connections at once, default 1024
	IdleTimeout time.Duration // a connection that sends nothing this long is closed, default 5m
	Logger      *slog.Logger
}

const (
	defaultInFlight = 128
	defaultMaxConns = 1024
	defaultIdle     = 5 * time.Minute
	frameTimeout    = 30 * time.Second // a frame's bytes, once it started
	writeTimeout    = 30 * time.Second // an answer's write
	minFrameSlack   = 1 << 10          // room for a request's fields beside the largest payload
)

// Server serves the native protocol. Its methods are safe for concurrent
// use.
type Server struct {
	eng         Engine
	log         *slog.Logger
	cfg         Config
	maxPayload  int
	maxFrame    int
	maxInFlight int
	maxConns    int
	idle        time.Duration
	auth        bool
	tokenSum    [sha256.Size]byte
	internalLog rateLog

	shutting atomic.Bool     // set by Shutdown: requests read after it answer shutting_down
	drainCtx context.Context // cancelled by Shutdown: ends long polls
	drain    context.CancelFunc

	mu      sync.Mutex
	lns     []net.Listener // guarded by mu
	conns   map[*conn]bool // guarded by mu
	tcpAddr net.Addr       // guarded by mu
	started bool           // guarded by mu
	stopped bool           // guarded by mu
	wg      sync.WaitGroup // accept loops and connections
}

// New returns a Server of eng; it does not listen until Start.
func New(cfg Config, eng Engine) (*Server, error) {
	if eng == nil {
		return nil, errors.New("native: nil engine")
	}
	if cfg.MaxPayload < 0 || cfg.MaxFrame < 0 || cfg.MaxInFlight < 0 || cfg.MaxConns < 0 || cfg.IdleTimeout < 0 {
		return nil, errors.New("native: MaxPayload, MaxFrame, MaxInFlight, MaxConns and IdleTimeout must not be negative")
	}
	s := &Server{
		eng:         eng,
		log:         cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)).With("component", "native"),
		cfg:         cfg,
		maxPayload:  cmp.Or(cfg.MaxPayload, 1<<20),
		maxInFlight: cmp.Or(cfg.MaxInFlight, defaultInFlight),
		maxConns:    cmp.Or(cfg.MaxConns, defaultMaxConns),
		idle:        cmp.Or(cfg.IdleTimeout, defaultIdle),
		auth:        cfg.Token != "",
		tokenSum:    sha256.Sum256([]byte(cfg.Token)),
		conns:       map[*conn]bool{},
	}
	s.maxFrame = cmp.Or(cfg.MaxFrame, DefaultFrameFor(s.maxPayload))
	if s.maxFrame < s.maxPayload+minFrameSlack {
		return nil, fmt.Errorf("native: MaxFrame %d: below max_payload %d plus %d bytes for a request's fields", s.maxFrame, s.maxPayload, minFrameSlack)
	}
	if s.maxFrame > 1<<31-1 {
		return nil, fmt.Errorf("native: MaxFrame %d: at most %d", s.maxFrame, 1<<31-1)
	}
	s.cfg.SocketMode = cmp.Or(cfg.SocketMode, 0o660)
	s.drainCtx, s.drain = context.WithCancel(context.Background())
	return s, nil
}

// DefaultFrameFor is max_frame's default for a max_payload: room for a
// batch of a few of the largest payloads.
func DefaultFrameFor(maxPayload int) int { return max(8*maxPayload, DefaultMaxFrame) }

// MaxFrame is the largest frame the server reads.
func (s *Server) MaxFrame() int { return s.maxFrame }

// Start listens on the configured TCP address and unix socket and serves
// them until Shutdown. A socket file nobody listens on is replaced; one
// that answers is refused.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.stopped {
		return errors.New("native: Start called twice or after Shutdown")
	}
	s.started = true
	if s.cfg.Listen != "" {
		ln, err := net.Listen("tcp", s.cfg.Listen)
		if err != nil {
			return fmt.Errorf("native: listen %s: %w", s.cfg.Listen, err)
		}
		s.lns = append(s.lns, ln)
		s.tcpAddr = ln.Addr()
	}
	if s.cfg.Socket != "" {
		ln, err := listenUnix(s.cfg.Socket, s.cfg.SocketMode)
		if err != nil {
			for _, l := range s.lns {
				_ = l.Close()
			}
			s.lns = nil
			return err
		}
		s.lns = append(s.lns, ln)
	}
	for _, ln := range s.lns {
		_, isTCP := ln.(*net.TCPListener)
		s.wg.Go(func() { s.accept(ln, isTCP) })
	}
	return nil
}

// listenUnix listens on a unix socket at path with mode.
func listenUnix(path string, mode os.FileMode) (net.Listener, error) {
	if _, err := os.Lstat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("native: socket %s: another process listens on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("native: remove stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("native: listen on socket: %w", err)
	}
	if err := os.Chmod(path, mode); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("native: socket mode: %w", err)
	}
	return ln, nil
}

// Addr is the TCP listener's address, nil without one (or before Start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tcpAddr
}

// accept serves the connections of ln until it is closed.
func (s *Server) accept(ln net.Listener, isTCP bool) {
	pause := 5 * time.Millisecond
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.shutting.Load() {
				return
			}
			// Out of file descriptors and the like: wait a little,
			// longer each time, rather than spin.
			s.log.Warn("accept", "err", err, "retry_in", pause)
			t := time.NewTimer(pause)
			select {
			case <-s.drainCtx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			pause = min(2*pause, time.Second)
			continue
		}
		pause = 5 * time.Millisecond
		c := newConn(s, nc, isTCP && s.auth)
		s.mu.Lock()
		switch {
		case s.stopped:
			s.mu.Unlock()
			_ = nc.Close()
			continue
		case len(s.conns) >= s.maxConns:
			s.mu.Unlock()
			s.wg.Go(func() { c.refuse(fmt.Errorf("connections: at most %d at once (native.max_conns)", s.maxConns)) })
			continue
		}
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Go(func() {
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		})
	}
}

// authorized reports whether token is the server's.
func (s *Server) authorized(token string) bool {
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) == 1
}

// answer maps err through the HTTP API's table, logging internal errors
// at a bounded rate.
func (s *Server) answer(err error) (code, message string, retryAfterS int) {
	code, message, retryAfterS = httpapi.ErrorAnswer(err, s.shutting.Load())
	if code == "internal" {
		s.internalLog.log(s.log, err)
	}
	return code, message, retryAfterS
}

// Shutdown stops the listeners (removing the socket file), answers
// shutting_down to requests read from now on, ends long polls, and waits
// until every request read so far is answered and every connection closed,
// or ctx ends: then it closes the connections left and returns ctx's
// error. It is idempotent and safe before Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	first := !s.stopped
	s.stopped = true
	s.shutting.Store(true)
	if first {
		for _, ln := range s.lns {
			_ = ln.Close()
		}
	}
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()
	s.drain()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.kill()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// rateLog logs at most one error a second, counting the ones it drops.
type rateLog struct {
	last    atomic.Int64 // unix nanoseconds of the last line
	dropped atomic.Int64
}

func (l *rateLog) log(log *slog.Logger, err error) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(time.Second) || !l.last.CompareAndSwap(last, now) {
		l.dropped.Add(1)
		return
	}
	log.Error("internal error answered", "err", err, "dropped", l.dropped.Swap(0))
}
