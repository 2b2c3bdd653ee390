package native

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/wire"
)

// errUnauthorized answers a TCP connection without the token; its code is
// the HTTP API's.
var errUnauthorized = errors.New("unauthorized")

// conn is one client connection. Its reader (serve) reads frames and
// queues a call for each, in order, on pending; its writer (write) answers
// them in that order; each request runs in a goroutine of its own.
type conn struct {
	s        *Server
	nc       net.Conn
	needAuth bool // reader-owned: a hello with the token must come first

	ctx    context.Context // ends the connection's requests once it is gone
	cancel context.CancelFunc

	pending chan *call // reader → writer, arrival order; its capacity bounds requests in flight

	mu      sync.Mutex
	cond    sync.Cond // signalled as answers free bytes
	inBytes int       // guarded by mu: bytes of requests not yet answered
}

// call is a request from its arrival to its answer.
type call struct {
	done chan struct{} // closed once out is set
	out  []byte        // the answer frame
	size int           // the request frame's bytes
}

func newConn(s *Server, nc net.Conn, needAuth bool) *conn {
	c := &conn{s: s, nc: nc, needAuth: needAuth, pending: make(chan *call, s.maxInFlight-1)}
	c.cond.L = &c.mu
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// refuse answers a connection the server will not serve with err
// (unavailable) and closes it.
func (c *conn) refuse(err error) {
	defer c.cancel()
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.nc.Write(c.errorFrame(fmt.Errorf("%w: %w", job.ErrUnavailable, err)))
	c.lingerClose()
}

// stopReading ends the reader's wait for the next frame (Shutdown).
func (c *conn) stopReading() { _ = c.nc.SetReadDeadline(time.Now()) }

// kill closes the connection at once and ends its requests.
func (c *conn) kill() {
	c.cancel()
	_ = c.nc.Close()
}

// budget bounds the bytes of one connection's requests not yet answered.
func (c *conn) budget() int { return 4 * c.s.maxFrame }

// serve reads and dispatches frames until the client closes, a frame is
// refused for good, the connection idles out or the server shuts down;
// then it waits for the answers to go out and closes the connection.
func (c *conn) serve() {
	var handlers sync.WaitGroup
	var writer sync.WaitGroup
	writer.Go(c.write)
	br := bufio.NewReaderSize(c.nc, 16<<10)
	lastFrame, gone := c.read(br, &handlers)
	if gone {
		// The client closed or stopped sending: nobody reads the answers
		// of its long polls, and jobs leased for them would wait for
		// their TTR.
		c.cancel()
	}
	handlers.Wait()
	close(c.pending)
	writer.Wait()
	if lastFrame {
		c.lingerClose()
	} else {
		_ = c.nc.Close()
	}
	c.cancel()
}

// read reads frames until it should stop. It answers linger when it
// stopped on a refused frame, whose answer must reach the client before
// the connection closes, and gone when the client closed, broke or idled
// out (not on Shutdown).
func (c *conn) read(br *bufio.Reader, handlers *sync.WaitGroup) (linger, gone bool) {
	var hdr [frameHeader]byte
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.s.idle))
		if c.s.shutting.Load() {
			return false, false
		}
		n, err := readFrameLen(br, &hdr, c.s.maxFrame)
		if err != nil {
			var tl *errFrameTooLarge
			if errors.As(err, &tl) {
				c.answerNow(&wire.FieldError{Field: "frame", Msg: tl.Error()[len("frame: "):], Sentinel: job.ErrTooLarge}, 0)
				return true, false
			}
			return false, !c.s.shutting.Load()
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(frameTimeout))
		c.acquire(n)
		frame := make([]byte, n)
		if _, err := io.ReadFull(br, frame); err != nil {
			c.release(n)
			return false, !c.s.shutting.Load()
		}
		kind, body := frame[0], frame[1:]
		switch {
		case kind == opHello:
			if err := c.hello(body); err != nil {
				c.answerNow(err, n)
				return true, false
			}
			c.needAuth = false
			b := beginFrame(nil, statusOK)
			b = appendStr(b, Version)
			b = appendUvarint(b, c.s.maxFrame)
			b = appendUvarint(b, c.s.maxInFlight)
			c.pending <- &call{done: closedChan, out: endFrame(b, 0), size: n}
		case c.needAuth:
			c.answerNow(fmt.Errorf("%w: send a hello with the token first", errUnauthorized), n)
			return true, false
		case c.s.shutting.Load():
			c.answerNow(job.ErrShuttingDown, n)
		default:
			cl := &call{done: make(chan struct{}), size: n}
			c.pending <- cl // blocks while MaxInFlight requests are unanswered
			handlers.Go(func() { c.run(cl, kind, body) })
		}
	}
}

// hello checks a hello: the version, and on TCP with a token, the token.
func (c *conn) hello(body []byte) error {
	r, err := decodeRequest(body)
	if err != nil {
		return wire.InvalidArg("hello", "%v", err)
	}
	if r.target != Version {
		return wire.InvalidArg("version", "want %s, got %q", Version, r.target)
	}
	var token string
	if err := setParams(r.params, paramSpec{"token", &token}); err != nil {
		return err
	}
	if c.needAuth && !c.s.authorized(token) {
		if token == "" {
			return fmt.Errorf("%w: hello without a token", errUnauthorized)
		}
		return fmt.Errorf("%w: wrong token", errUnauthorized)
	}
	return nil
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// answerNow queues an error answer to a request the reader refused itself.
func (c *conn) answerNow(err error, size int) {
	c.pending <- &call{done: closedChan, out: c.errorFrame(err), size: size}
}

func (c *conn) errorFrame(err error) []byte {
	if errors.Is(err, errUnauthorized) {
		return appendError(nil, "unauthorized", trimSentinel(err, errUnauthorized), 0)
	}
	code, msg, retry := c.s.answer(err)
	return appendError(nil, code, msg, retry)
}

// trimSentinel is err's message without its sentinel's prefix, as the
// HTTP API words it.
func trimSentinel(err, sentinel error) string {
	m, p := err.Error(), sentinel.Error()+": "
	if len(m) > len(p) && m[:len(p)] == p {
		return m[len(p):]
	}
	return m
}

// opFunc serves one op: it appends the ok answer's body to b.
type opFunc func(s *Server, ctx context.Context, r request, b []byte) ([]byte, error)

var ops = [...]opFunc{
	opEnqueue: (*Server).enqueue,
	opBatch:   (*Server).batch,
	opLease:   (*Server).lease,
	opAck:     (*Server).ack,
	opNack:    (*Server).nack,
	opFail:    (*Server).fail,
	opExtend:  (*Server).extend,
	opAcks:    (*Server).acks,
}

// run serves one request and hands its answer to the writer.
func (c *conn) run(cl *call, kind byte, body []byte) {
	defer close(cl.done)
	var f opFunc
	if int(kind) < len(ops) {
		f = ops[kind]
	}
	if f == nil {
		cl.out = c.errorFrame(wire.InvalidArg("op", "unknown op %d", kind))
		return
	}
	r, err := decodeRequest(body)
	if err != nil {
		cl.out = c.errorFrame(wire.InvalidArg("frame", "%v", err))
		return
	}
	b := beginFrame(make([]byte, 0, 64), statusOK)
	b, err = f(c.s, c.ctx, r, b)
	if err != nil {
		cl.out = c.errorFrame(err)
		return
	}
	cl.out = endFrame(b, 0)
}

// write is the connection's only writer: it answers the calls in order,
// flushing whenever it would otherwise wait. Once a write fails it keeps
// draining, without writing, so that the reader and handlers finish.
func (c *conn) write() {
	bw := bufio.NewWriterSize(c.nc, 16<<10)
	broken := false
	flush := func() {
		if !broken && bw.Buffered() > 0 {
			_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := bw.Flush(); err != nil {
				broken = true
				c.cancel()
			}
		}
	}
	for cl := range c.pending {
		select {
		case <-cl.done:
		default:
			flush()
			<-cl.done
		}
		if !broken {
			if bw.Available() < len(cl.out) {
				_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			}
			if _, err := bw.Write(cl.out); err != nil {
				broken = true
				c.cancel()
			}
		}
		c.release(cl.size)
		if len(c.pending) == 0 {
			flush()
		}
	}
	flush()
}

// acquire waits until n more bytes of requests fit the connection's
// budget; a frame alone may take all of it.
func (c *conn) acquire(n int) {
	c.mu.Lock()
	for c.inBytes > 0 && c.inBytes+n > c.budget() {
		c.cond.Wait()
	}
	c.inBytes += n
	c.mu.Unlock()
}

func (c *conn) release(n int) {
	c.mu.Lock()
	c.inBytes -= n
	c.mu.Unlock()
	c.cond.Signal()
}

// lingerClose closes after the last answer, reading what the client still
// sends for a moment: closing with unread bytes would reset the connection
// and could lose that answer.
func (c *conn) lingerClose() {
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
		_ = c.nc.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.Copy(io.Discard, io.LimitReader(c.nc, int64(c.s.maxFrame)+frameHeader))
	}
	_ = c.nc.Close()
}
