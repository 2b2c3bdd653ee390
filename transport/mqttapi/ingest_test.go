package mqttapi

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgeq/edgeq/engine/job"
)

// fakeMsg is an mqtt.Message that records its ack.
type fakeMsg struct {
	topic   string
	payload []byte
	acked   *[]string // shared, in ack order
	mu      *sync.Mutex
}

func (m fakeMsg) Duplicate() bool   { return false }
func (m fakeMsg) Qos() byte         { return 1 }
func (m fakeMsg) Retained() bool    { return false }
func (m fakeMsg) Topic() string     { return m.topic }
func (m fakeMsg) MessageID() uint16 { return 0 }
func (m fakeMsg) Payload() []byte   { return m.payload }
func (m fakeMsg) Ack() {
	m.mu.Lock()
	*m.acked = append(*m.acked, string(m.payload))
	m.mu.Unlock()
}

// refusingEngine refuses, all or nothing, any batch holding a "bad"
// payload, as the engine does for a job that fails its checks.
type refusingEngine struct {
	batches atomic.Int32
	mu      sync.Mutex
	stored  []string
	refused map[string]int // Refused: jobs by queue and error
}

func (e *refusingEngine) Refused(q string, n int, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.refused == nil {
		e.refused = map[string]int{}
	}
	e.refused[q+" "+err.Error()] += n
}

func (e *refusingEngine) EnqueueBatchUncounted(_ context.Context, q string, jobs []job.New) ([]job.Result, error) {
	e.batches.Add(1)
	for _, n := range jobs {
		if string(n.Payload) == "bad" {
			return nil, fmt.Errorf("%w: job: bad", job.ErrInvalidArgument)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	rs := make([]job.Result, len(jobs))
	for i, n := range jobs {
		e.stored = append(e.stored, string(n.Payload))
		rs[i] = job.Result{ID: job.ID(len(e.stored)), Queue: q}
	}
	return rs, nil
}

// TestGroupRefusalIsPerMessage: one refused message in a group refuses
// only itself; the others are stored, and every message is acked in
// arrival order.
func TestGroupRefusalIsPerMessage(t *testing.T) {
	eng := &refusingEngine{}
	c, err := New(Config{Broker: "tcp://127.0.0.1:1", ClientID: "x"}, eng)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(t.Context())
	var (
		mu    sync.Mutex
		acked []string
	)
	payloads := []string{"a", "b", "bad", "c", "d"}
	var group []mqtt.Message
	for _, p := range payloads {
		group = append(group, fakeMsg{topic: "edgeq/jobs/q", payload: []byte(p), acked: &acked, mu: &mu})
	}
	c.runOnce(group)
	if !slices.Equal(acked, payloads) {
		t.Errorf("acked %v, want %v", acked, payloads)
	}
	slices.Sort(eng.stored)
	if !slices.Equal(eng.stored, []string{"a", "b", "c", "d"}) {
		t.Errorf("stored %v", eng.stored)
	}
	if s := c.Stats(); s.Enqueued != 4 || s.Rejected[ReasonInvalid] != 1 {
		t.Errorf("stats %+v", s)
	}
	if n := int(eng.batches.Load()); n != 1+len(payloads) {
		t.Errorf("%d EnqueueBatch calls, want the batch then one per message", n)
	}
	// Refused once, although offered twice (in the group, then alone).
	if want := map[string]int{"q invalid argument": 1}; !maps.Equal(eng.refused, want) {
		t.Errorf("refusals counted %v, want %v", eng.refused, want)
	}
}

// TestInHandBoundsBytes: take waits while the bytes in hand would pass the
// limit, lets one message through alone whatever its size, and gives up
// when told to stop.
func TestInHandBoundsBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := inHand{limit: 10, freed: make(chan struct{})}
		stop := make(chan struct{})
		if !h.take(25, stop) {
			t.Fatal("a message above the limit is refused with nothing in hand")
		}
		var took atomic.Bool
		go func() { took.Store(h.take(4, stop)) }()
		synctest.Wait()
		if took.Load() {
			t.Fatal("take did not wait with the limit passed")
		}
		h.give(25)
		synctest.Wait()
		if !took.Load() || h.bytes() != 4 {
			t.Fatalf("after give: took %v, %d in hand; want true, 4", took.Load(), h.bytes())
		}
		if !h.take(6, stop) {
			t.Fatal("take refused bytes that fit")
		}
		done := make(chan bool)
		go func() { done <- h.take(1, stop) }()
		synctest.Wait()
		close(stop)
		if <-done || h.bytes() != 10 {
			t.Errorf("take after stop: counted %d bytes, want 10 and false", h.bytes())
		}
	})
}

// TestStrictQueues (issue 21): with StrictQueues, {prefix}/jobs/{queue}
// and {prefix}/submit/{queue} take only the queues routes name; others are
// acked, refused as invalid and noticed on {prefix}/rejected/{queue}.
func TestStrictQueues(t *testing.T) {
	eng := &refusingEngine{}
	c, err := New(Config{Broker: "tcp://127.0.0.1:1", ClientID: "x", StrictQueues: true,
		Routes: []Route{{Filter: "sensors/+", Queue: "telemetry"}}}, eng)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(t.Context())
	var (
		mu    sync.Mutex
		acked []string
	)
	msg := func(topic, payload string) mqtt.Message {
		return fakeMsg{topic: topic, payload: []byte(payload), acked: &acked, mu: &mu}
	}
	c.runOnce([]mqtt.Message{
		msg("edgeq/jobs/telemetry", "a"),
		msg("edgeq/jobs/billing", "b"),
		msg("edgeq/submit/billing", `{"payload":"c"}`),
		msg("sensors/1", "d"),
	})
	if len(acked) != 4 {
		t.Errorf("acked %v, want all four", acked)
	}
	slices.Sort(eng.stored)
	if !slices.Equal(eng.stored, []string{"a", "d"}) {
		t.Errorf("stored %v, want a and d", eng.stored)
	}
	if s := c.Stats(); s.Rejected[ReasonInvalid] != 2 {
		t.Errorf("rejected %v, want 2 invalid", s.Rejected)
	}
	for range 2 {
		select {
		case m := <-c.out:
			if m.topic != "edgeq/rejected/billing" || !strings.Contains(string(m.payload), `"reason":"invalid"`) {
				t.Errorf("notice %s %s, want edgeq/rejected/billing with reason invalid", m.topic, m.payload)
			}
		default:
			t.Fatal("fewer than 2 rejection notices")
		}
	}
}
