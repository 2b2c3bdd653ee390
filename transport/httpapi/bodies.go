package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/wire"
)

// Defaults of the body limits (Config.MaxBodies, Config.BodyIdle).
const (
	defaultMaxBodies = 16 << 20
	defaultBodyIdle  = 10 * time.Second
)

// bodyBudget bounds the bytes of request bodies being read at once, in all
// and per connection, so that many slow or stalled bodies cannot pile up in
// memory. Safe for concurrent use.
type bodyBudget struct {
	max, perConn int64
	used         atomic.Int64
}

// connBodies is one connection's share of the budget.
type connBodies struct{ used atomic.Int64 }

type connBodiesKey struct{}

// withConnBodies is the server's ConnContext: each connection gets a share.
func withConnBodies(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connBodiesKey{}, new(connBodies))
}

// take reserves n bytes for a body read on the connection of ctx, or
// refuses with ErrUnavailable and a retry-after when that would cross a bound.
func (b *bodyBudget) take(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	if used := b.used.Add(n); used > b.max {
		b.used.Add(-n)
		return job.Retry(fmt.Errorf("%w: request bodies being read would hold %d bytes, the limit is %d (http.bodies_in_flight)", job.ErrUnavailable, used, b.max), time.Second)
	}
	if c, ok := ctx.Value(connBodiesKey{}).(*connBodies); ok {
		if used := c.used.Add(n); used > b.perConn {
			c.used.Add(-n)
			b.used.Add(-n)
			return job.Retry(fmt.Errorf("%w: request bodies being read on this connection would hold %d bytes, the limit is %d", job.ErrUnavailable, used, b.perConn), time.Second)
		}
	}
	return nil
}

// give returns n bytes taken on the connection of ctx.
func (b *bodyBudget) give(ctx context.Context, n int64) {
	if n <= 0 {
		return
	}
	b.used.Add(-n)
	if c, ok := ctx.Value(connBodiesKey{}).(*connBodies); ok {
		c.used.Add(-n)
	}
}

// body reads one request body under the budget and the idle deadline.
// Bytes of a body of known length are taken before the first read; of one
// of unknown length as they arrive. The caller calls done once it has read
// what it wants, and release when it no longer holds the bytes.
type body struct {
	s     *Server
	ctx   context.Context
	r     io.ReadCloser
	dl    readDeadliner // nil when the writer cannot set one (tests' recorders)
	limit int64         // most bytes taken for an unknown length (limit+1 lets MaxBytesReader see an overflow)
	known bool
	stall bool  // cut off by the idle timeout
	held  int64 // bytes taken from the budget
	read  int64
}

// openBody starts reading r's body of at most limit bytes; it refuses at
// once when the budget has no room for a body of known length.
func (s *Server) openBody(w http.ResponseWriter, r *http.Request, limit int64) (*body, error) {
	dl, _ := w.(readDeadliner)
	b := &body{s: s, ctx: r.Context(), r: r.Body, dl: dl, limit: limit + 1}
	if r.ContentLength >= 0 {
		if err := s.bodies.take(b.ctx, r.ContentLength); err != nil {
			return nil, err
		}
		b.known, b.held = true, r.ContentLength
	}
	return b, nil
}

// Read reads with a read deadline of the idle timeout from now, so a body
// that stops moving is cut off instead of holding its share.
func (b *body) Read(p []byte) (int, error) {
	var extra int64
	if !b.known {
		if room := b.limit - b.read; int64(len(p)) > room {
			p = p[:max(room, 0)]
		}
		if extra = b.read + int64(len(p)) - b.held; extra > 0 {
			if err := b.s.bodies.take(b.ctx, extra); err != nil {
				return 0, err
			}
			b.held += extra
		}
	}
	if b.dl != nil {
		_ = b.dl.SetReadDeadline(time.Now().Add(b.s.bodyIdle))
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	if !b.known && b.held > b.read {
		b.s.bodies.give(b.ctx, b.held-b.read)
		b.held = b.read
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		b.stall = true
		err = &stalledError{idle: b.s.bodyIdle}
	}
	return n, err
}

// Close closes the request body.
func (b *body) Close() error { return b.r.Close() }

// done restores the request's own read deadline once the body is read, so
// that the idle timeout cannot end the request while it waits on the engine.
// A stalled body keeps its expired deadline: net/http then gives up reading
// the rest at once, answers and closes the connection.
func (b *body) done() {
	if !b.stall && b.dl != nil {
		_ = b.dl.SetReadDeadline(time.Now().Add(requestTimeout))
	}
}

// release gives the body's bytes back to the budget.
func (b *body) release() {
	b.s.bodies.give(b.ctx, b.held)
	b.held = 0
}

// readDeadliner is what net/http's HTTP/1 and HTTP/2 response writers offer
// (the method http.ResponseController calls), asserted directly so that the
// hot path allocates nothing for it.
type readDeadliner interface{ SetReadDeadline(time.Time) error }

// stalledError is a body cut off by the idle timeout.
type stalledError struct{ idle time.Duration }

func (e *stalledError) Error() string {
	return fmt.Sprintf("stalled: no bytes for %s (http.body_idle_timeout)", e.idle)
}

// bodyError turns an error of reading a body into its refusal.
func bodyError(err error) error {
	var mbe *http.MaxBytesError
	var stalled *stalledError
	switch {
	case errors.As(err, &mbe):
		return &wire.FieldError{Field: "body", Msg: fmt.Sprintf("above the limit of %d bytes", mbe.Limit), Sentinel: job.ErrTooLarge}
	case errors.Is(err, job.ErrUnavailable):
		return err // a full budget: 503 with Retry-After
	case errors.As(err, &stalled):
		return invalidArg("body", "%v", stalled)
	}
	return invalidArg("body", "read: %v", err)
}
