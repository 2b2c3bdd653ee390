package native

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/httpapi"
	"github.com/edgeq/edgeq/transport/wire"
)

// IsAddr reports whether addr names a native endpoint: unix:///path,
// tcp://host:port or native://host:port.
func IsAddr(addr string) bool {
	_, _, err := ParseAddr(addr)
	return err == nil
}

// ParseAddr splits a native address into a network and an address for
// net.Dial.
func ParseAddr(addr string) (network, address string, err error) {
	scheme, rest, ok := strings.Cut(addr, "://")
	switch {
	case !ok:
		return "", "", fmt.Errorf("native address %q: want unix:///path, tcp://host:port or native://host:port", addr)
	case scheme == "unix" && rest != "":
		return "unix", rest, nil
	case (scheme == "tcp" || scheme == "native") && rest != "":
		if _, _, err := net.SplitHostPort(rest); err != nil {
			return "", "", fmt.Errorf("native address %q: %w", addr, err)
		}
		return "tcp", rest, nil
	}
	return "", "", fmt.Errorf("native address %q: want unix:///path, tcp://host:port or native://host:port", addr)
}

// ClientConfig configures a Client. Zero values mean defaults.
type ClientConfig struct {
	Token string // sent in each connection's hello; "" sends none
	// Conns is the connections that short calls (enqueues, acks...) are
	// pipelined on, default 2. A long poll (a lease with a wait) takes a
	// connection of its own, so that no answer waits behind it.
	Conns int
	// MaxIdlePolls bounds the long-poll connections kept for reuse,
	// default 64.
	MaxIdlePolls int
	// Coalesce sends concurrent Enqueue calls for one queue together in
	// one batch frame while the previous one is in flight: one engine op
	// and one answer for many jobs. Each caller gets its own answer; a
	// batch refused for a reason that may be one job's (invalid_argument,
	// payload_too_large, queue_full, rate_limited, unavailable,
	// disk_full) is sent again job by job, so a refusal is the job's own.
	// Payloads above 16 KiB always go alone.
	Coalesce bool
}

// Client speaks the native protocol, with the same methods, types and
// errors as httpapi.Client for the job operations: refusals are
// *httpapi.APIError with the HTTP status of their code. It is safe for
// concurrent use: concurrent calls are pipelined on a few connections, many
// frames to a write. Connections are dialled when first needed and again
// after one breaks. No method has a timeout of its own: use ctx.
type Client struct {
	network, address string
	token            string
	maxIdlePolls     int
	dialer           net.Dialer

	next   atomic.Uint32
	shared []sharedSlot

	coalesce bool

	mu     sync.Mutex
	polls  []*clientConn    // guarded by mu: idle long-poll connections
	lanes  map[string]*lane // guarded by mu: coalesced enqueues by queue
	closed bool             // guarded by mu
	wg     sync.WaitGroup   // every connection's reader and writer, and the lanes' senders
}

type sharedSlot struct {
	mu sync.Mutex
	cc *clientConn // guarded by mu
}

// NewClient returns a client of the server at addr (ParseAddr); it dials
// nothing yet.
func NewClient(addr string, cfg ClientConfig) (*Client, error) {
	network, address, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	c := &Client{
		network: network, address: address, token: cfg.Token,
		maxIdlePolls: max(cfg.MaxIdlePolls, 0),
		dialer:       net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second},
		shared:       make([]sharedSlot, max(cfg.Conns, 0)),
		coalesce:     cfg.Coalesce,
		lanes:        map[string]*lane{},
	}
	if len(c.shared) == 0 {
		c.shared = make([]sharedSlot, 2)
	}
	if cfg.MaxIdlePolls == 0 {
		c.maxIdlePolls = 64
	}
	return c, nil
}

// Close closes the client's connections and waits for their goroutines;
// calls in flight answer an error. Calls after Close answer an error.
func (c *Client) Close() {
	c.mu.Lock()
	c.closed = true
	polls := c.polls
	c.polls = nil
	c.mu.Unlock()
	for _, cc := range polls {
		cc.close(net.ErrClosed)
	}
	for i := range c.shared {
		sl := &c.shared[i]
		sl.mu.Lock()
		if sl.cc != nil {
			sl.cc.close(net.ErrClosed)
			sl.cc = nil
		}
		sl.mu.Unlock()
	}
	c.wg.Wait()
}

var errClientClosed = errors.New("native: client closed")

// sharedConn is a pipelined connection, dialled when first needed.
func (c *Client) sharedConn(ctx context.Context) (*clientConn, error) {
	sl := &c.shared[int(c.next.Add(1))%len(c.shared)]
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.cc != nil && !sl.cc.broken() {
		return sl.cc, nil
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, errClientClosed
	}
	cc, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	sl.cc = cc
	return cc, nil
}

// pollConn takes a connection for one long poll.
func (c *Client) pollConn(ctx context.Context) (*clientConn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errClientClosed
	}
	for len(c.polls) > 0 {
		cc := c.polls[len(c.polls)-1]
		c.polls = c.polls[:len(c.polls)-1]
		if !cc.broken() {
			c.mu.Unlock()
			return cc, nil
		}
	}
	c.mu.Unlock()
	return c.dial(ctx)
}

// putPoll returns a long-poll connection whose call was answered.
func (c *Client) putPoll(cc *clientConn) {
	c.mu.Lock()
	if !c.closed && !cc.broken() && len(c.polls) < c.maxIdlePolls {
		c.polls = append(c.polls, cc)
		cc = nil
	}
	c.mu.Unlock()
	if cc != nil {
		cc.close(net.ErrClosed)
	}
}

func (c *Client) dial(ctx context.Context) (*clientConn, error) {
	nc, err := c.dialer.DialContext(ctx, c.network, c.address)
	if err != nil {
		return nil, fmt.Errorf("native: %w", err)
	}
	cc := newClientConn(nc, &c.wg)
	var hello []param
	if c.token != "" {
		hello = []param{{"token", c.token}}
	}
	// Pipelined: the calls behind it need not wait for its answer. A
	// refused hello breaks the connection with its error.
	cc.send(opHello, Version, hello, nil, true)
	return cc, nil
}

// call sends a request on a shared connection, or for a long poll on one
// of its own, and answers the ok body.
func (c *Client) call(ctx context.Context, op byte, target string, params []param, data []byte) ([]byte, error) {
	poll := op == opLease && hasWait(params)
	var cc *clientConn
	var err error
	if poll {
		cc, err = c.pollConn(ctx)
	} else {
		cc, err = c.sharedConn(ctx)
	}
	if err != nil {
		return nil, err
	}
	pc, err := cc.send(op, target, params, data, false)
	if err != nil {
		return nil, err
	}
	select {
	case <-pc.done:
		if poll {
			c.putPoll(cc)
		}
		return pc.body, pc.err
	case <-ctx.Done():
		if poll {
			// Its answer would hold back the next poll's.
			cc.close(ctx.Err())
		}
		return nil, ctx.Err()
	}
}

func hasWait(ps []param) bool {
	for _, p := range ps {
		if p.name == "wait" {
			return true
		}
	}
	return false
}

// Enqueue enqueues one job, answered once it is durable; a duplicate key
// answers the first job's id with Duplicate set. With Coalesce,
// concurrent calls for a queue share batch frames.
func (c *Client) Enqueue(ctx context.Context, queue string, payload []byte, o httpapi.EnqueueOptions) (httpapi.EnqueueResult, error) {
	if c.coalesce && len(payload) <= coalesceMaxPayload {
		return c.enqueueCoalesced(ctx, queue, payload, o)
	}
	return c.enqueueOne(ctx, queue, payload, o)
}

// enqueueOne enqueues one job in a frame of its own.
func (c *Client) enqueueOne(ctx context.Context, queue string, payload []byte, o httpapi.EnqueueOptions) (httpapi.EnqueueResult, error) {
	body, err := c.call(ctx, opEnqueue, queue, enqueueParams(nil, &o), payload)
	if err != nil {
		return httpapi.EnqueueResult{}, err
	}
	d := decoder{b: body}
	r := decodeResult(&d)
	if d.end(); d.err != nil {
		return httpapi.EnqueueResult{}, fmt.Errorf("native enqueue: decode answer: %w", d.err)
	}
	return httpapi.EnqueueResult{ID: r.ID, Queue: queue, State: r.State, Durable: r.Durable, Duplicate: r.Duplicate}, nil
}

func decodeResult(d *decoder) httpapi.BatchResult {
	var r httpapi.BatchResult
	r.ID = d.str("id")
	r.State = d.str("state")
	f := d.byte1("flags")
	r.Durable, r.Duplicate = f&flagDurable != 0, f&flagDuplicate != 0
	return r
}

// enqueueParams appends the parameters of options o.
func enqueueParams(ps []param, o *httpapi.EnqueueOptions) []param {
	add := func(name, v string) {
		if v != "" {
			ps = append(ps, param{name, v})
		}
	}
	dur := func(name string, d time.Duration) {
		if d != 0 {
			add(name, d.String())
		}
	}
	tm := func(name string, t time.Time) {
		if !t.IsZero() {
			add(name, t.Format(time.RFC3339Nano))
		}
	}
	add("key", o.Key)
	dur("delay", o.Delay)
	tm("run_at", o.RunAt)
	if o.MaxAttempts != 0 {
		add("max_attempts", strconv.Itoa(o.MaxAttempts))
	}
	dur("ttr", o.TTR)
	dur("expires_in", o.ExpiresIn)
	tm("expires_at", o.ExpiresAt)
	add("content_type", o.ContentType)
	for k, v := range o.Headers {
		ps = append(ps, param{headerParam + k, v})
	}
	return ps
}

// EnqueueBatch enqueues all lines or none; results are in line order.
func (c *Client) EnqueueBatch(ctx context.Context, queue string, lines []httpapi.BatchLine) ([]httpapi.BatchResult, error) {
	data := binary.AppendUvarint(nil, uint64(len(lines)))
	var ps []param
	for _, l := range lines {
		ps = enqueueParams(ps[:0], &l.EnqueueOptions)
		data = appendParams(data, ps)
		data = appendBytes(data, l.Payload)
	}
	body, err := c.call(ctx, opBatch, queue, nil, data)
	if err != nil {
		return nil, err
	}
	d := decoder{b: body}
	n := d.count("jobs", 3)
	out := make([]httpapi.BatchResult, n)
	for i := range out {
		out[i] = decodeResult(&d)
	}
	if d.end(); d.err != nil {
		return nil, fmt.Errorf("native batch: decode answer: %w", d.err)
	}
	return out, nil
}

// Lease leases up to max jobs (0: 1), waiting up to wait for the first one;
// ttr 0 is the queue's. It answers an empty list when none came in time.
func (c *Client) Lease(ctx context.Context, queue string, max int, wait, ttr time.Duration) ([]httpapi.Job, error) {
	var ps []param
	if max != 0 {
		ps = append(ps, param{"max", strconv.Itoa(max)})
	}
	if wait != 0 {
		ps = append(ps, param{"wait", wait.String()})
	}
	if ttr != 0 {
		ps = append(ps, param{"ttr", ttr.String()})
	}
	body, err := c.call(ctx, opLease, queue, ps, nil)
	if err != nil {
		return nil, err
	}
	jobs, err := decodeJobs(body)
	if err != nil {
		return nil, fmt.Errorf("native lease: decode answer: %w", err)
	}
	return jobs, nil
}

// decodeJobs decodes a lease answer (docs/protocol.md §4).
func decodeJobs(body []byte) ([]httpapi.Job, error) {
	d := decoder{b: body}
	n := d.count("jobs", 16)
	jobs := make([]httpapi.Job, n)
	for i := range jobs {
		j := &jobs[i]
		j.ID = d.str("id")
		j.Queue = d.str("queue")
		j.State = job.StateLeased.String()
		j.Attempt = int(d.uvarint("attempt"))
		j.MaxAttempts = int(d.uvarint("max_attempts"))
		j.CreatedAt = d.time("created_at")
		j.RunAt = d.time("run_at")
		j.ExpiresAt = d.time("expires_at")
		j.Key = d.str("key")
		lease := wire.Lease{ID: d.str("lease_id"), ExpiresAt: d.time("lease_expires_at")}
		j.Lease = &lease
		h := d.count("headers", 2)
		j.Headers = make(map[string]string, h)
		for range h {
			k := d.str("header name")
			j.Headers[k] = d.str("header value")
		}
		j.ContentType = d.str("content_type")
		j.LastError = d.str("last_error")
		p := d.bytes("payload")
		if d.err != nil {
			break
		}
		p = append([]byte{}, p...)
		if wire.IsJSONType(j.ContentType) && json.Valid(p) {
			j.Payload = p
		} else {
			j.PayloadB64 = p
		}
	}
	if d.end(); d.err != nil {
		return nil, d.err
	}
	return jobs, nil
}

// Ack marks a leased job done.
func (c *Client) Ack(ctx context.Context, id, lease string) error {
	_, err := c.call(ctx, opAck, id, []param{{"lease", lease}}, nil)
	return err
}

// Acks acks many leased jobs in one request and one commit: one error per
// ack, in order (nil: acked), as httpapi.Client.Acks answers.
func (c *Client) Acks(ctx context.Context, acks []httpapi.AckItem) ([]error, error) {
	data := binary.AppendUvarint(nil, uint64(len(acks)))
	for _, a := range acks {
		data = appendStr(data, a.ID)
		data = appendStr(data, a.Lease)
	}
	body, err := c.call(ctx, opAcks, "", nil, data)
	if err != nil {
		return nil, err
	}
	d := decoder{b: body}
	n := d.count("acks", 1)
	if d.err == nil && n != len(acks) {
		return nil, fmt.Errorf("native acks: %d answers to %d acks", n, len(acks))
	}
	errs := make([]error, n)
	for i := range errs {
		if d.byte1("acked") == 1 {
			continue
		}
		code, msg := d.str("code"), d.str("message")
		errs[i] = httpapi.ErrorForCode(code, msg, int(d.uvarint("retry_after_s")))
	}
	if d.end(); d.err != nil {
		return nil, fmt.Errorf("native acks: decode answer: %w", d.err)
	}
	return errs, nil
}

// Nack sends a leased job back for a retry after delay (0: now;
// engine.NackBackoff: the queue's backoff) and answers the state it went
// to.
func (c *Client) Nack(ctx context.Context, id, lease string, delay time.Duration, reason string) (string, error) {
	ps := []param{{"lease", lease}}
	if delay != engine.NackBackoff {
		ps = append(ps, param{"delay", delay.String()})
	}
	if reason != "" {
		ps = append(ps, param{"error", reason})
	}
	body, err := c.call(ctx, opNack, id, ps, nil)
	if err != nil {
		return "", err
	}
	d := decoder{b: body}
	st := d.str("state")
	if d.end(); d.err != nil {
		return "", fmt.Errorf("native nack: decode answer: %w", d.err)
	}
	return st, nil
}

// Fail sends a leased job straight to the dead-letter set.
func (c *Client) Fail(ctx context.Context, id, lease, reason string) error {
	ps := []param{{"lease", lease}}
	if reason != "" {
		ps = append(ps, param{"error", reason})
	}
	_, err := c.call(ctx, opFail, id, ps, nil)
	return err
}

// Extend renews a lease for ttr (0: the lease's own) and answers its new
// expiry.
func (c *Client) Extend(ctx context.Context, id, lease string, ttr time.Duration) (time.Time, error) {
	ps := []param{{"lease", lease}}
	if ttr != 0 {
		ps = append(ps, param{"ttr", ttr.String()})
	}
	body, err := c.call(ctx, opExtend, id, ps, nil)
	if err != nil {
		return time.Time{}, err
	}
	d := decoder{b: body}
	t := d.time("expires_at")
	if d.end(); d.err != nil {
		return time.Time{}, fmt.Errorf("native extend: decode answer: %w", d.err)
	}
	return t, nil
}

// clientConn is one connection of a Client: callers queue frames in out
// and wait in FIFO order; the writer goroutine sends out, the reader hands
// each answer to the oldest waiting call.
type clientConn struct {
	nc   net.Conn
	kick chan struct{} // cap 1: out has frames to send

	mu      sync.Mutex
	out     []byte         // guarded by mu: frames not yet written
	waiting []*pendingCall // guarded by mu: calls without an answer, oldest first
	err     error          // guarded by mu: set once the connection broke
	done    chan struct{}  // closed once err is set
}

type pendingCall struct {
	done  chan struct{}
	hello bool
	body  []byte
	err   error
}

func newClientConn(nc net.Conn, wg *sync.WaitGroup) *clientConn {
	cc := &clientConn{nc: nc, kick: make(chan struct{}, 1), done: make(chan struct{})}
	wg.Go(cc.writeLoop)
	wg.Go(cc.readLoop)
	return cc
}

func (cc *clientConn) broken() bool {
	select {
	case <-cc.done:
		return true
	default:
		return false
	}
}

// send queues a request frame and its waiting call.
func (cc *clientConn) send(op byte, target string, params []param, data []byte, hello bool) (*pendingCall, error) {
	pc := &pendingCall{done: make(chan struct{}), hello: hello}
	cc.mu.Lock()
	if cc.err != nil {
		err := cc.err
		cc.mu.Unlock()
		return nil, err
	}
	cc.out = appendRequest(cc.out, op, target, params, data)
	cc.waiting = append(cc.waiting, pc)
	cc.mu.Unlock()
	select {
	case cc.kick <- struct{}{}:
	default:
	}
	return pc, nil
}

// close breaks the connection with err, answering it to every waiting call.
func (cc *clientConn) close(err error) {
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		return
	}
	cc.err = err
	waiting := cc.waiting
	cc.waiting = nil
	close(cc.done)
	cc.mu.Unlock()
	_ = cc.nc.Close()
	for _, pc := range waiting {
		pc.err = err
		close(pc.done)
	}
}

// writeLoop sends what callers queued, all of it in one write.
func (cc *clientConn) writeLoop() {
	var buf []byte
	for {
		select {
		case <-cc.done:
			return
		case <-cc.kick:
		}
		cc.mu.Lock()
		buf, cc.out = cc.out, buf[:0]
		cc.mu.Unlock()
		if len(buf) == 0 {
			continue
		}
		if _, err := cc.nc.Write(buf); err != nil {
			cc.close(fmt.Errorf("native: write: %w", err))
			return
		}
		if cap(buf) > 1<<20 {
			buf = nil // do not keep one large batch's buffer
		}
	}
}

// readLoop answers the waiting calls in order.
func (cc *clientConn) readLoop() {
	br := bufio.NewReaderSize(cc.nc, 16<<10)
	var hdr [frameHeader]byte
	for {
		n, err := readFrameLen(br, &hdr, 1<<31-1)
		var frame []byte
		if err == nil {
			frame = make([]byte, n)
			_, err = io.ReadFull(br, frame)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			cc.close(fmt.Errorf("native: read: %w", err))
			return
		}
		cc.mu.Lock()
		if len(cc.waiting) == 0 {
			cc.mu.Unlock()
			cc.close(errors.New("native: an answer to no request"))
			return
		}
		pc := cc.waiting[0]
		cc.waiting[0] = nil
		cc.waiting = cc.waiting[1:]
		cc.mu.Unlock()
		switch frame[0] {
		case statusOK:
			pc.body = frame[1:]
		case statusError:
			pc.err = decodeError(frame[1:])
		default:
			pc.err = fmt.Errorf("native: answer of unknown status %d", frame[0])
		}
		close(pc.done)
		if pc.hello && pc.err != nil {
			cc.close(pc.err) // the calls behind it get the same refusal
			return
		}
	}
}

func decodeError(body []byte) error {
	d := decoder{b: body}
	code, msg := d.str("code"), d.str("message")
	retry := d.uvarint("retry_after_s")
	if d.err != nil {
		return fmt.Errorf("native: decode error answer: %w", d.err)
	}
	return httpapi.ErrorForCode(code, msg, int(min(retry, 1<<31)))
}
