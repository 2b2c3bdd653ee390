package mqttapi

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgeq/edgeq/engine/job"
)

// item is one received message on its way to the engine.
type item struct {
	msg    mqtt.Message
	queue  string  // "" when the message names no queue
	n      job.New // the job, when reason == ""
	reason string  // why it is refused; "" while it may be taken
	skip   bool    // ack without a job or notice (edgeq's own topics)
	hold   bool    // leave unacked: the broker redelivers it
}

// ingest takes messages from the intake in groups until Stop, then
// handles what is left in the intake and returns once every group is
// acked. Groups commit and ack one at a time, on this goroutine, so jobs of
// a queue are stored in arrival order, the first of two messages with one
// key is the one kept, and the broker sees PUBACKs in arrival order. The
// intake fills while a group commits, so groups grow with the load (per
// connection the broker's in-flight window bounds the messages in hand
// anyway). A group always ends: its enqueues give up when runCtx does.
func (c *Client) ingest() {
	for {
		group := make([]mqtt.Message, 0, maxGroup)
		select {
		case m := <-c.intake:
			group = append(group, m)
		case <-c.stopping:
			for {
				group := make([]mqtt.Message, 0, maxGroup)
				c.fill(&group)
				if len(group) == 0 {
					return
				}
				c.runOnce(group)
			}
		}
		c.fill(&group)
		c.runOnce(group)
	}
}

// fill appends the messages waiting in the intake, up to maxGroup.
func (c *Client) fill(group *[]mqtt.Message) {
	for len(*group) < maxGroup {
		select {
		case m := <-c.intake:
			*group = append(*group, m)
		default:
			return
		}
	}
}

// runOnce enqueues a group, one batch per queue, then acks the group in
// arrival order and publishes the notices of refused messages.
func (c *Client) runOnce(group []mqtt.Message) {
	now := time.Now()
	items := make([]item, len(group))
	byQueue := map[string][]int{}
	for i, m := range group {
		c.received.Add(1)
		items[i] = c.classify(m)
		if it := &items[i]; it.reason == "" && !it.skip {
			byQueue[it.queue] = append(byQueue[it.queue], i)
		}
	}
	var wg sync.WaitGroup
	for q, idx := range byQueue {
		wg.Go(func() { c.commit(q, idx, items) })
	}
	wg.Wait()
	var size int64 // of the group, given back once it is acked
	for i := range items {
		it := &items[i]
		size += msgBytes(it.msg)
		if it.hold {
			c.held.Add(1)
			continue
		}
		it.msg.Ack()
		c.acked.Add(1)
		if it.reason != "" {
			c.countRejected(it.reason)
			c.eng.Refused(it.queue, 1, job.ReasonErr(it.reason))
			q := it.queue
			if q == "" {
				q = unrouted
			}
			c.publish(c.cfg.Prefix+"/rejected/"+q, notice(it.reason, it.msg.Topic(), it.n.Key, now), false)
		}
	}
	c.hand.give(size)
}

// classify resolves a message's queue and builds its job, or says why it
// is refused.
func (c *Client) classify(m mqtt.Message) item {
	topic, payload := m.Topic(), m.Payload()
	it := item{msg: m}
	if ownTopic(c.cfg.Prefix, topic) {
		it.skip = true
		return it
	}
	headers := map[string]string{"mqtt-topic": topic}
	if q, submit, ok := topicQueue(c.cfg.Prefix, topic); ok {
		if !job.ValidQueueName(q) {
			it.reason = ReasonInvalid
			return it
		}
		it.queue = q
		if c.cfg.StrictQueues && !c.routed(q) {
			it.reason = ReasonInvalid
			return it
		}
		if !submit {
			return c.raw(it, payload, headers, Route{})
		}
		// A base64 payload takes 4/3 of its size; options take little.
		if len(payload) > c.cfg.MaxPayload/3*4+64<<10 {
			it.reason = ReasonTooLarge
			return it
		}
		n, err := decodeEnvelope(q, payload)
		if err != nil {
			it.reason = ReasonInvalid
			return it
		}
		if n.Headers == nil {
			n.Headers = headers
		} else if _, set := n.Headers["mqtt-topic"]; !set {
			n.Headers["mqtt-topic"] = topic
		}
		it.n = n
		return it
	}
	for _, r := range c.cfg.Routes {
		if matchFilter(r.Filter, topic) {
			it.queue = r.Queue
			return c.raw(it, payload, headers, r)
		}
	}
	// A subscription of an older configuration, kept by the persistent
	// session, can still deliver here.
	it.reason = ReasonInvalid
	return it
}

// routed reports whether a route targets queue q.
func (c *Client) routed(q string) bool {
	for _, r := range c.cfg.Routes {
		if r.Queue == q {
			return true
		}
	}
	return false
}

// raw makes a job of a payload taken as is.
func (c *Client) raw(it item, payload []byte, headers map[string]string, r Route) item {
	if len(payload) > c.cfg.MaxPayload {
		it.reason = ReasonTooLarge
		return it
	}
	ct := "application/octet-stream"
	if json.Valid(payload) {
		ct = "application/json"
	}
	it.n = job.New{Queue: it.queue, Payload: payload, ContentType: ct, Headers: headers,
		Key: keyFrom(payload, r.KeyField), Group: keyFrom(payload, r.GroupField)}
	return it
}

// commit enqueues the items idx of one queue: as one batch, and one by one
// when the batch is refused (a batch is all or nothing; one bad message
// must not refuse the others).
func (c *Client) commit(queue string, idx []int, items []item) {
	if len(idx) > 1 {
		news := make([]job.New, len(idx))
		for k, i := range idx {
			news[k] = items[i].n
		}
		rs, err := c.eng.EnqueueBatchUncounted(c.runCtx, queue, news)
		if err == nil {
			c.taken(rs)
			return
		}
		// In arrival order, so that order and key precedence hold.
		for _, i := range idx {
			c.enqueueOne(queue, &items[i])
		}
		return
	}
	c.enqueueOne(queue, &items[idx[0]])
}

func (c *Client) taken(rs []job.Result) {
	for _, r := range rs {
		if r.Duplicate {
			c.duplicates.Add(1)
		} else {
			c.enqueued.Add(1)
		}
	}
}

// enqueueOne enqueues one item. A refusal with a reason becomes a notice;
// a transient failure (intake full, store error) is retried, since an MQTT
// message cannot be refused back to its sender; shutdown holds the message
// unacked.
func (c *Client) enqueueOne(queue string, it *item) {
	backoff := 50 * time.Millisecond
	for {
		rs, err := c.eng.EnqueueBatchUncounted(c.runCtx, queue, []job.New{it.n})
		if err == nil {
			c.taken(rs)
			return
		}
		if it.reason = reasonOf(err); it.reason != "" {
			return
		}
		if c.runCtx.Err() != nil || errors.Is(err, job.ErrShuttingDown) ||
			errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			it.hold = true
			return
		}
		c.log.Warn("mqtt enqueue failed; retrying", "queue", queue, "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-c.runCtx.Done():
			t.Stop()
			it.hold = true
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// reasonOf maps an enqueue error to the reason of a rejection notice
// (job.Reason); "" means the error is not a refusal or, unavailable, one
// that is retried since an MQTT message cannot be refused back.
func reasonOf(err error) string {
	if r := job.Reason(err); r != job.ReasonUnavailable {
		return r
	}
	return ""
}
