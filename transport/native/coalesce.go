package native

import (
	"context"
	"errors"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/transport/httpapi"
)

// coalesceBytes bounds the payload bytes of one coalesced batch frame,
// far below any max_frame; a payload above coalesceMaxPayload goes alone.
const (
	coalesceBytes      = 512 << 10
	coalesceMaxPayload = 16 << 10
)

// lane holds one queue's enqueues waiting for a batch frame; its sender
// runs while it has some. Fields are guarded by Client.mu.
type lane struct {
	sending bool
	waiting []*coCall
}

// coCall is one coalesced Enqueue waiting for its answer.
type coCall struct {
	ctx     context.Context
	payload []byte
	o       httpapi.EnqueueOptions
	done    chan struct{}
	res     httpapi.EnqueueResult // set before done is closed
	err     error
}

// enqueueCoalesced queues an enqueue on its queue's lane, starting the
// lane's sender if it is idle, and waits for its answer.
func (c *Client) enqueueCoalesced(ctx context.Context, queue string, payload []byte, o httpapi.EnqueueOptions) (httpapi.EnqueueResult, error) {
	cc := &coCall{ctx: ctx, payload: payload, o: o, done: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return httpapi.EnqueueResult{}, errClientClosed
	}
	l := c.lanes[queue]
	if l == nil {
		l = &lane{}
		c.lanes[queue] = l
	}
	l.waiting = append(l.waiting, cc)
	if !l.sending {
		l.sending = true
		c.wg.Go(func() { c.sendLane(queue, l) })
	}
	c.mu.Unlock()
	select {
	case <-cc.done:
		return cc.res, cc.err
	case <-ctx.Done():
		return httpapi.EnqueueResult{}, ctx.Err()
	}
}

// sendLane sends what waits on l, one batch frame at a time, until l is
// empty: what comes while a frame is in flight goes in the next one.
func (c *Client) sendLane(queue string, l *lane) {
	for {
		c.mu.Lock()
		var take []*coCall
		size := 0
		for len(l.waiting) > 0 && len(take) < engine.MaxBatchJobs && size < coalesceBytes {
			cc := l.waiting[0]
			l.waiting[0] = nil
			l.waiting = l.waiting[1:]
			if cc.ctx.Err() != nil {
				continue // its caller is gone: not sent
			}
			take = append(take, cc)
			size += len(cc.payload)
		}
		if len(take) == 0 {
			l.sending = false
			l.waiting = nil
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.sendBatch(queue, take)
	}
}

// sendBatch sends calls as one batch frame (a lone one as an enqueue) and
// answers each. A batch refused for a reason that may be one job's is sent
// again job by job: the batch stored nothing.
func (c *Client) sendBatch(queue string, calls []*coCall) {
	ctx := context.Background()
	if len(calls) == 1 {
		cc := calls[0]
		cc.res, cc.err = c.enqueueOne(cc.ctx, queue, cc.payload, cc.o)
		close(cc.done)
		return
	}
	lines := make([]httpapi.BatchLine, len(calls))
	for i, cc := range calls {
		lines[i] = httpapi.BatchLine{Payload: cc.payload, EnqueueOptions: cc.o}
	}
	res, err := c.EnqueueBatch(ctx, queue, lines)
	if err == nil && len(res) != len(calls) {
		err = errors.New("native batch: answers and jobs differ in number")
	}
	var ae *httpapi.APIError
	if err != nil && errors.As(err, &ae) && mayBeOneJobs(ae.Code) {
		for _, cc := range calls {
			cc.res, cc.err = c.enqueueOne(cc.ctx, queue, cc.payload, cc.o)
			close(cc.done)
		}
		return
	}
	for i, cc := range calls {
		if err != nil {
			cc.err = err
		} else {
			r := res[i]
			cc.res = httpapi.EnqueueResult{ID: r.ID, Queue: queue, State: r.State, Durable: r.Durable, Duplicate: r.Duplicate}
		}
		close(cc.done)
	}
}

// mayBeOneJobs reports whether a batch refused with code may have been
// refused for some of its jobs only.
func mayBeOneJobs(code string) bool {
	switch code {
	case "invalid_argument", "payload_too_large", "queue_full", "rate_limited", "unavailable", "disk_full":
		return true
	}
	return false
}
