package native

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

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
