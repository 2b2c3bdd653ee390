package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeq/edgeq/transport/wire"
)

// Coalescing configures the client-side group commit of Client.Enqueue
// and Client.Ack (Client.Coalesce). Zero values are the defaults.
type Coalescing struct {
	// MaxLines bounds the jobs (or acks) of one request: 0 is 256, at most
	// 1000 (the server's batch limit).
	MaxLines int
	// Linger is how long a batch that is not full waits for more jobs
	// before it goes: 0 sends at once what came while the previous request
	// was in flight (as the engine's own group commit does); at most 10ms.
	Linger time.Duration
	// InFlight bounds the requests of one queue (and of acks) in flight at
	// once: 0 is 1, at most 16.
	InFlight int
}

// Limits of Coalescing.
const (
	defaultCoalesceLines = 256
	maxCoalesceLinger    = 10 * time.Millisecond
	maxCoalesceInFlight  = 16
	// coalesceMaxPayload is the largest payload that is coalesced; larger
	// ones go alone, so a batch body stays far below the server's limit.
	coalesceMaxPayload = 16 << 10
	// coalesceMaxBody bounds the encoded lines of one batch request.
	coalesceMaxBody = 512 << 10
)

// Coalesce makes Enqueue coalesce concurrent calls for the same queue into
// one batch request (POST /v1/queues/{q}/batch) while a request for that
// queue is in flight, and Ack coalesce concurrent acks into POST /v1/acks
// requests (one for a lone ack too): fewer requests, and one commit on the
// daemon for many jobs. Each caller still gets its own answer: its job's
// id, duplicate flag and durability, or its own refusal; its own ack's
// answer. The batch endpoint is all or nothing, so when the daemon refuses
// a batch for a reason that may concern only some of its jobs, each of them
// is sent again alone (it was not stored). A
// transport error is every caller's answer, as it would be for a single
// request. Jobs with headers or a payload above 16 KiB, and JSON payloads
// that span lines, are always sent alone: a batch line would carry them
// differently.
//
// Off by default: a refused batch counts each of its jobs in the daemon's
// rejected totals before they are sent again alone, and a caller with no
// concurrent peers gains nothing. Call it before the client is used; it is
// not safe for concurrent use with Enqueue. Close waits for the batches in
// flight.
func (c *Client) Coalesce(cfg Coalescing) error {
	switch {
	case cfg.MaxLines < 0 || cfg.MaxLines > maxBatchLines:
		return fmt.Errorf("coalescing: max lines: %d is outside 0..%d", cfg.MaxLines, maxBatchLines)
	case cfg.Linger < 0 || cfg.Linger > maxCoalesceLinger:
		return fmt.Errorf("coalescing: linger: %s is outside 0..%s", cfg.Linger, maxCoalesceLinger)
	case cfg.InFlight < 0 || cfg.InFlight > maxCoalesceInFlight:
		return fmt.Errorf("coalescing: in flight: %d is outside 0..%d", cfg.InFlight, maxCoalesceInFlight)
	}
	cfg.MaxLines = cmp.Or(cfg.MaxLines, defaultCoalesceLines)
	cfg.InFlight = cmp.Or(cfg.InFlight, 1)
	c.co = &coalescer{c: c, cfg: cfg, lanes: make(map[string]*lane)}
	return nil
}

// Close waits for the coalesced batches in flight (Coalesce), then closes
// the client's idle connections. The client may be used again afterwards.
func (c *Client) Close() {
	if c.co != nil {
		c.co.wg.Wait()
	}
	c.CloseIdleConnections()
}

// coalescer holds the jobs waiting for a batch request, by queue. A lane's
// sender goroutine runs while the lane has jobs and ends when it is empty;
// the coalescer starts it and Close waits for it.
type coalescer struct {
	c     *Client
	cfg   Coalescing
	wg    sync.WaitGroup
	mu    sync.Mutex
	lanes map[string]*lane // enqueues by queue; guarded by mu
	acks  lane             // guarded by mu
}

// lane is one queue's jobs, or the acks, waiting to go. A queue's lane
// stays once made: a few words a queue the client ever enqueued into.
type lane struct {
	senders int     // senders running, at most Coalescing.InFlight; guarded by coalescer.mu
	sending int     // senders with a request in flight; guarded by coalescer.mu
	waiting []*call // guarded by coalescer.mu
}

// call is one Enqueue or Ack waiting for its answer.
type call struct {
	ctx  context.Context
	line []byte  // an enqueue's encoded batch line, without its newline
	ack  AckItem // an ack's job and lease
	done chan struct{}
	// Written by the sender before done is closed.
	res   EnqueueResult
	err   error
	alone bool // the batch was refused: send the job alone
}

// coalescible reports whether a job travels the same way in a batch line
// as in a single request.
func coalescible(payload []byte, o *EnqueueOptions) bool {
	return len(payload) <= coalesceMaxPayload && len(o.Headers) == 0 &&
		!(wire.IsJSONType(o.ContentType) && bytes.ContainsAny(payload, "\r\n"))
}

// enqueue queues one job on its lane and waits for its answer or ctx. A
// job still waiting when ctx ends is taken off the lane and never sent.
func (co *coalescer) enqueue(ctx context.Context, queue string, payload []byte, o EnqueueOptions) (EnqueueResult, error) {
	o.ContentType = cmp.Or(o.ContentType, "application/octet-stream") // as a single request stores it
	line, err := BatchLine{Payload: payload, EnqueueOptions: o}.MarshalJSON()
	if err != nil {
		return EnqueueResult{}, err
	}
	cl := &call{ctx: ctx, line: line, done: make(chan struct{})}
	co.mu.Lock()
	ln := co.lanes[queue]
	if ln == nil {
		ln = &lane{}
		co.lanes[queue] = ln
	}
	co.mu.Unlock()
	if err := co.wait(ln, cl, func(batch []*call) { co.sendBatch(queue, batch) }); err != nil {
		return EnqueueResult{}, err
	}
	if cl.alone {
		return co.c.enqueueOne(ctx, queue, payload, o)
	}
	return cl.res, cl.err
}

// ack queues one ack on the ack lane and waits for its answer or ctx.
func (co *coalescer) ack(ctx context.Context, id, lease string) error {
	cl := &call{ctx: ctx, ack: AckItem{ID: id, Lease: lease}, done: make(chan struct{})}
	if err := co.wait(&co.acks, cl, co.sendAcks); err != nil {
		return err
	}
	return cl.err
}

// wait puts cl on ln, starts a sender for ln (which sends batches with
// flush) when every running one has a request in flight and there are
// fewer than InFlight, and waits for cl's answer or ctx. A call still waiting
// when ctx ends is taken off the lane and never sent; wait then answers
// ctx's error.
func (co *coalescer) wait(ln *lane, cl *call, flush func([]*call)) error {
	co.mu.Lock()
	ln.waiting = append(ln.waiting, cl)
	if ln.senders == ln.sending && ln.senders < co.cfg.InFlight {
		ln.senders++
		co.wg.Go(func() { co.send(ln, flush) })
	}
	co.mu.Unlock()
	select {
	case <-cl.done:
		return nil
	case <-cl.ctx.Done():
		co.mu.Lock()
		co.dropLocked(ln, cl)
		co.mu.Unlock()
		return cl.ctx.Err()
	}
}

// dropLocked takes cl off ln if it is still waiting.
func (co *coalescer) dropLocked(ln *lane, cl *call) {
	for i, w := range ln.waiting {
		if w == cl {
			ln.waiting = append(ln.waiting[:i], ln.waiting[i+1:]...)
			return
		}
	}
}

// send is a lane's sender: it sends the waiting calls in batches with
// flush until the lane is empty.
func (co *coalescer) send(ln *lane, flush func([]*call)) {
	for {
		batch := co.take(ln)
		if len(batch) == 0 {
			return
		}
		flush(batch)
		co.mu.Lock()
		ln.sending--
		co.mu.Unlock()
	}
}

// take takes the next batch off ln, after lingering for more when it is
// not full; none when the lane is empty, and then the sender ends.
func (co *coalescer) take(ln *lane) []*call {
	co.mu.Lock()
	if co.cfg.Linger > 0 && len(ln.waiting) > 0 && len(ln.waiting) < co.cfg.MaxLines {
		co.mu.Unlock()
		time.Sleep(co.cfg.Linger) // bounded by Coalesce; the sender is nobody's caller
		co.mu.Lock()
	}
	defer co.mu.Unlock()
	n, size := 0, 0
	for n < len(ln.waiting) && n < co.cfg.MaxLines {
		l := len(ln.waiting[n].line) + len(ln.waiting[n].ack.ID) + len(ln.waiting[n].ack.Lease) + 1
		if n > 0 && size+l > coalesceMaxBody {
			break
		}
		size += l
		n++
	}
	if n == 0 {
		ln.senders--
		return nil
	}
	ln.sending++
	batch := make([]*call, n)
	copy(batch, ln.waiting)
	ln.waiting = append(ln.waiting[:0], ln.waiting[n:]...)
	return batch
}

// batchContext is the context of a batch's request: it ends when every
// caller in the batch has given up. The caller calls release once the
// request is done.
func batchContext(batch []*call) (ctx context.Context, release func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var left atomic.Int64
	left.Store(int64(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, cl := range batch {
		stops[i] = context.AfterFunc(cl.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// sendAcks sends one batch of acks (POST /v1/acks) and answers its
// callers, each with its own ack's answer.
func (co *coalescer) sendAcks(batch []*call) {
	ctx, release := batchContext(batch)
	defer release()
	items := make([]AckItem, len(batch))
	for i, cl := range batch {
		items[i] = cl.ack
	}
	errs, err := co.c.Acks(ctx, items)
	for i, cl := range batch {
		if err != nil {
			cl.err = err
		} else {
			cl.err = errs[i]
		}
		close(cl.done)
	}
}

// sendBatch sends one batch and answers its callers. Its request ends when
// every caller in it has given up.
func (co *coalescer) sendBatch(queue string, batch []*call) {
	ctx, release := batchContext(batch)
	defer release()
	var body bytes.Buffer
	for _, cl := range batch {
		body.Write(cl.line)
		body.WriteByte('\n')
	}
	res, err := co.c.postBatch(ctx, queue, &body)
	var ae *APIError
	switch {
	case err == nil && len(res) != len(batch):
		err = fmt.Errorf("POST batch: %d answers to %d jobs", len(res), len(batch))
	case errors.As(err, &ae) && len(batch) > 1 && !queueWide(ae):
		// Refused whole, so nothing was stored: each job goes again alone
		// and gets its own answer.
		for _, cl := range batch {
			cl.alone = true
			close(cl.done)
		}
		return
	}
	for i, cl := range batch {
		if err != nil {
			cl.err = err
		} else {
			r := res[i]
			cl.res = EnqueueResult{ID: r.ID, Queue: queue, State: r.State, Durable: r.Durable, Duplicate: r.Duplicate}
		}
		close(cl.done)
	}
}

// queueWide reports whether a refusal of a batch would be every one of its
// jobs' refusal alone too: it concerns the queue, the token or the daemon,
// not a job.
func queueWide(e *APIError) bool {
	switch e.Code {
	case "invalid_queue", "unknown_queue", "unauthorized", "forbidden", "shutting_down", "shed":
		return true
	}
	return e.Status == http.StatusNotFound
}
