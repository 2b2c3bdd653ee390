package mqttapi

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/wire"
)

// OnEvent publishes a job event to {prefix}/events/{queue} when
// Config.Events is on, and a job its queue dropped (engine.EventEvicted)
// to {prefix}/rejected/{queue} always. It never blocks
// (engine.Config.OnEvent runs on the committer): a full buffer drops the
// event and counts it in Stats.Dropped.
func (c *Client) OnEvent(ev engine.Event) {
	if ev.Kind == engine.EventEvicted {
		c.publish(c.cfg.Prefix+"/rejected/"+ev.Queue, evictedNotice(ev), false)
		return
	}
	if !c.cfg.Events {
		return
	}
	b := make([]byte, 0, 64)
	b = append(b, `{"id":"`...)
	b = append(b, ev.ID.String()...)
	b = append(b, `","event":"`...)
	b = append(b, ev.Kind.String()...)
	b = append(b, `","attempt":`...)
	b = strconv.AppendInt(b, int64(ev.Attempt), 10)
	if res, b64 := wire.ResultFields(ev.Result); res != nil {
		b = append(b, `,"result":`...)
		b = append(b, res...)
	} else if b64 != nil {
		b = append(b, `,"result_b64":"`...)
		b = base64.StdEncoding.AppendEncode(b, b64)
		b = append(b, '"')
	}
	if ev.ResultTruncated {
		b = append(b, `,"result_truncated":true`...)
	}
	b = append(b, '}')
	c.publish(c.cfg.Prefix+"/events/"+ev.Queue, b, false)
}

// alert is the JSON of {prefix}/alerts.
type alert struct {
	Kind   string  `json:"kind"` // "backlog" or "governor"
	Queue  string  `json:"queue,omitempty"`
	Raised *bool   `json:"raised,omitempty"`
	What   string  `json:"what,omitempty"` // backlog: "age" or "depth"
	AgeSec float64 `json:"age_seconds,omitempty"`
	Depth  int64   `json:"depth,omitempty"`
	From   string  `json:"from,omitempty"` // governor levels
	To     string  `json:"to,omitempty"`
	Reason string  `json:"reason,omitempty"`
	At     string  `json:"at"`
}

// OnAlert publishes a backlog alert, retained, to {prefix}/alerts. It never
// blocks.
func (c *Client) OnAlert(a engine.Alert) {
	raised := a.Raised
	c.publishAlert(alert{Kind: "backlog", Queue: a.Queue, Raised: &raised, What: a.Kind,
		AgeSec: a.Age.Seconds(), Depth: a.Depth, At: stamp(a.At)})
}

// OnLevel publishes a governor level change, retained, to {prefix}/alerts.
// It never blocks.
func (c *Client) OnLevel(from, to job.Level, reason string, at time.Time) {
	c.publishAlert(alert{Kind: "governor", From: from.String(), To: to.String(), Reason: reason, At: stamp(at)})
}

func (c *Client) publishAlert(a alert) {
	b, err := json.Marshal(a)
	if err != nil {
		return
	}
	c.publish(c.cfg.Prefix+"/alerts", b, true)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Handler is the mqtt handler type (SPEC 7): it publishes a job's payload
// at QoS 1 to a topic and acks the job on PUBACK. It is safe for concurrent
// use. Until Bind gives it a connected Client, jobs are retried.
type Handler struct {
	topic   string
	timeout time.Duration
	client  atomic.Pointer[Client]
}

// NewHandler returns a handler publishing to topic, in which {queue} and
// {id} stand for the job's queue and id. timeout bounds the wait for the
// PUBACK, default 30s.
func NewHandler(topic string, timeout time.Duration) *Handler {
	return &Handler{topic: topic, timeout: cmp.Or(timeout, 30*time.Second)}
}

// Bind sets the client the handler publishes through.
func (h *Handler) Bind(c *Client) { h.client.Store(c) }

// Handle implements engine.Handler. A broker that is not connected or does
// not answer in time is a failure of the target: Retry, counted by the
// queue's breaker. A publish that timed out may still arrive later, so
// subscribers see at-least-once delivery.
func (h *Handler) Handle(ctx context.Context, j *job.Job) engine.Outcome {
	c := h.client.Load()
	if c == nil || !c.live.Load() {
		return engine.Outcome{Verdict: engine.Retry, Error: "mqtt: not connected", TargetFailed: true}
	}
	topic := strings.NewReplacer("{queue}", j.Queue, "{id}", j.ID.String()).Replace(h.topic)
	t := c.pc.Publish(topic, 1, false, j.Payload)
	timer := time.NewTimer(h.timeout)
	defer timer.Stop()
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return engine.Outcome{Verdict: engine.Retry, Error: "mqtt: publish: " + err.Error(), TargetFailed: true}
		}
		return engine.Outcome{Verdict: engine.Ack}
	case <-timer.C:
		return engine.Outcome{Verdict: engine.Retry, Error: "mqtt: no PUBACK within " + h.timeout.String(), TargetFailed: true}
	case <-ctx.Done():
		return engine.Outcome{Verdict: engine.Retry, Error: "mqtt: " + ctx.Err().Error(), TargetFailed: true}
	}
}

// evictedNotice is the JSON of the notice of a job its queue accepted then
// dropped: reason (engine.EvictReasons), id, queue and when.
func evictedNotice(ev engine.Event) []byte {
	b := make([]byte, 0, 96+len(ev.Queue))
	b = append(b, `{"reason":`...)
	b = wire.AppendJSONString(b, ev.Error)
	b = append(b, `,"id":"`...)
	b = append(b, ev.ID.String()...)
	b = append(b, `","queue":`...)
	b = wire.AppendJSONString(b, ev.Queue)
	b = append(b, `,"at":"`...)
	b = ev.At.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// notice is the JSON of a rejection notice.
func notice(reason, topic, key string, at time.Time) []byte {
	b := make([]byte, 0, 96+len(topic)+len(key))
	b = append(b, `{"reason":`...)
	b = wire.AppendJSONString(b, reason)
	b = append(b, `,"topic":`...)
	b = wire.AppendJSONString(b, topic)
	b = append(b, `,"key":`...)
	b = wire.AppendJSONString(b, key)
	b = append(b, `,"at":"`...)
	b = at.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}
