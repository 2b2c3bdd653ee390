package mqttapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
)

// The real engine satisfies the interface this package declares.
var (
	_ Engine         = (*engine.Engine)(nil)
	_ engine.Handler = (*Handler)(nil)
)

// broker is an in-process mochi broker on a fixed loopback address, so a
// restart comes back where the client reconnects.
type broker struct {
	t    *testing.T
	addr string
	srv  *mochi.Server
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func startBroker(t *testing.T) *broker {
	t.Helper()
	b := &broker{t: t, addr: freeAddr(t)}
	b.start()
	t.Cleanup(func() { b.stop() })
	return b
}

func (b *broker) start() {
	b.t.Helper()
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		b.t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: b.addr})); err != nil {
		b.t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		b.t.Fatal(err)
	}
	b.srv = srv
}

func (b *broker) stop() {
	if b.srv != nil {
		b.srv.Close()
		b.srv = nil
	}
}

func (b *broker) url() string { return "tcp://" + b.addr }

// subscribe collects the messages of filter through the broker's inline
// client.
func (b *broker) subscribe(filter string) *inbox {
	b.t.Helper()
	in := &inbox{ch: make(chan packets.Packet, 4096)}
	err := b.srv.Subscribe(filter, 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		select {
		case in.ch <- pk:
		default:
		}
	})
	if err != nil {
		b.t.Fatal(err)
	}
	return in
}

type inbox struct{ ch chan packets.Packet }

func (in *inbox) next(t *testing.T) packets.Packet {
	t.Helper()
	select {
	case pk := <-in.ch:
		return pk
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
	}
	return packets.Packet{}
}

// publisher connects a plain paho client for tests to publish with.
func publisher(t *testing.T, b *broker) mqtt.Client {
	t.Helper()
	// No auto-reconnect: a test publisher whose broker restarts would
	// otherwise be left in paho's reconnect loop, whose goroutine outlives
	// Disconnect by up to its backoff (goleak then fails the package).
	pc := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.url()).SetClientID(fmt.Sprintf("pub-%d", time.Now().UnixNano())).SetAutoReconnect(false))
	if tok := pc.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { pc.Disconnect(0) })
	return pc
}

func publish(t *testing.T, pc mqtt.Client, topic string, payload []byte) {
	t.Helper()
	if tok := pc.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// hooks forwards engine callbacks to a client set after the engine exists.
type hooks struct{ c atomic.Pointer[Client] }

func (h *hooks) event(ev engine.Event) {
	if c := h.c.Load(); c != nil {
		c.OnEvent(ev)
	}
}

func newEngine(t *testing.T, ec engine.Config) *engine.Engine {
	t.Helper()
	eng, err := engine.New(ec, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eng.Stop(context.Background()); err != nil {
			t.Errorf("engine Stop: %v", err)
		}
	})
	return eng
}

// startClient starts a client; its cleanup runs before the engine's.
func startClient(t *testing.T, cfg Config, eng Engine) *Client {
	t.Helper()
	cfg.ClientID = cmpOr(cfg.ClientID, "edgeq-test")
	c, err := New(cfg, eng)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.ready:
	default:
		t.Fatal("client did not connect within 10s")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return c
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// eventually polls cond for up to 20s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func depth(t *testing.T, eng *engine.Engine, q string) int64 {
	t.Helper()
	s, err := eng.QueueStats(q)
	if err != nil {
		return 0
	}
	return s.Ready + s.Delayed + s.Leased
}

func TestIngestThousand(t *testing.T) {
	b := startBroker(t)
	eng := newEngine(t, engine.Config{})
	c := startClient(t, Config{Broker: b.url()}, eng)
	pc := publisher(t, b)

	const n = 1000
	toks := make([]mqtt.Token, n)
	for i := range n {
		toks[i] = pc.Publish("edgeq/jobs/work", 1, false, []byte(fmt.Sprintf(`{"i":%d}`, i)))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	// PUBACK reached the publisher: the broker has the message; edgeq acks
	// after its commit.
	eventually(t, "1000 jobs", func() bool { return c.Stats().Enqueued == n })
	if got := depth(t, eng, "work"); got != n {
		t.Errorf("depth = %d, want %d", got, n)
	}
	jobs, err := eng.Lease(t.Context(), engine.LeaseRequest{Queue: "work", Max: 1})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Lease = %v, %v", jobs, err)
	}
	if j := jobs[0]; j.ContentType != "application/json" || j.Headers["mqtt-topic"] != "edgeq/jobs/work" {
		t.Errorf("job = %+v", j)
	}
}

func TestRouteKeyDedupeAndSubmit(t *testing.T) {
	b := startBroker(t)
	eng := newEngine(t, engine.Config{})
	c := startClient(t, Config{Broker: b.url(), Routes: []Route{{Filter: "sensors/+/reading", Queue: "telemetry", KeyField: "msg_id"}}}, eng)
	pc := publisher(t, b)

	publish(t, pc, "sensors/s1/reading", []byte(`{"msg_id":"a","v":1}`))
	publish(t, pc, "sensors/s1/reading", []byte(`{"msg_id":"a","v":1}`))
	publish(t, pc, "sensors/s2/reading", []byte(`{"msg_id":7,"v":2}`))
	publish(t, pc, "edgeq/submit/orders", []byte(`{"payload":{"o":1},"key":"k1","headers":{"X-A":"b"}}`))
	publish(t, pc, "edgeq/submit/orders", []byte(`{"payload_b64":"aGk=","key":"k1"}`))
	eventually(t, "5 messages", func() bool { s := c.Stats(); return s.Enqueued+s.Duplicates == 5 })
	if s := c.Stats(); s.Enqueued != 3 || s.Duplicates != 2 || c.Rejected() != 0 {
		t.Fatalf("stats = %+v", s)
	}
	jobs, err := eng.Lease(t.Context(), engine.LeaseRequest{Queue: "telemetry", Max: 10})
	if err != nil || len(jobs) != 2 {
		t.Fatalf("Lease telemetry = %d jobs, %v", len(jobs), err)
	}
	if j := jobs[0]; j.Key != "a" || j.Headers["mqtt-topic"] != "sensors/s1/reading" {
		t.Errorf("first job = %+v", j)
	}
	if j := jobs[1]; j.Key != "7" || j.Headers["mqtt-topic"] != "sensors/s2/reading" {
		t.Errorf("second job = %+v", j)
	}
	jobs, err = eng.Lease(t.Context(), engine.LeaseRequest{Queue: "orders", Max: 10})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Lease orders = %d jobs, %v", len(jobs), err)
	}
	if j := jobs[0]; string(j.Payload) != `{"o":1}` || j.Headers["x-a"] != "b" || j.Headers["mqtt-topic"] != "edgeq/submit/orders" {
		t.Errorf("orders job = %+v", j)
	}
}

// TestRouteGroupAndSubmitGroup: a route's group_field and a submit
// envelope's group put the job in an ordered group; a group that is not
// valid refuses the message, as invalid.
func TestRouteGroupAndSubmitGroup(t *testing.T) {
	b := startBroker(t)
	eng := newEngine(t, engine.Config{})
	c := startClient(t, Config{Broker: b.url(), Routes: []Route{{Filter: "plc/+/command", Queue: "plc", GroupField: "device"}}}, eng)
	pc := publisher(t, b)

	publish(t, pc, "plc/p1/command", []byte(`{"device":"press-1","set":1}`))
	publish(t, pc, "plc/p1/command", []byte(`{"device":"press-1","set":2}`))
	publish(t, pc, "edgeq/submit/plc", []byte(`{"payload":{"set":3},"group":"press-2"}`))
	publish(t, pc, "plc/p1/command", []byte(`{"device":"not valid","set":4}`))
	eventually(t, "4 messages", func() bool { s := c.Stats(); return s.Enqueued+uint64(c.Rejected()) == 4 })
	if s := c.Stats(); s.Enqueued != 3 || c.Rejected() != 1 {
		t.Fatalf("stats = %+v, rejected %d; want 3 enqueued, 1 rejected", s, c.Rejected())
	}
	jobs, err := eng.Lease(t.Context(), engine.LeaseRequest{Queue: "plc", Max: 10})
	if err != nil || len(jobs) != 2 {
		t.Fatalf("Lease plc = %d jobs, %v; want the heads of press-1 and press-2", len(jobs), err)
	}
	got := map[string]string{}
	for _, j := range jobs {
		got[j.Group] = string(j.Payload)
	}
	if got["press-1"] != `{"device":"press-1","set":1}` || got["press-2"] != `{"set":3}` {
		t.Errorf("leased by group %v, want press-1's first command and press-2's", got)
	}
}

type rejectNotice struct {
	Reason, Topic, Key, At string
}

func decodeNotice(t *testing.T, pk packets.Packet) rejectNotice {
	t.Helper()
	var n rejectNotice
	if err := json.Unmarshal(pk.Payload, &n); err != nil {
		t.Fatalf("notice %s: %v", pk.Payload, err)
	}
	if _, err := time.Parse(time.RFC3339Nano, n.At); err != nil {
		t.Errorf("notice at: %v", err)
	}
	return n
}

func TestRejections(t *testing.T) {
	b := startBroker(t)
	eng := newEngine(t, engine.Config{MaxPayload: 100, Queues: map[string]engine.QueueConfig{"full": {MaxDepth: 1}}})
	c := startClient(t, Config{Broker: b.url(), MaxPayload: 100}, eng)
	rejected := b.subscribe("edgeq/rejected/#")
	pc := publisher(t, b)

	cases := []struct {
		topic, payload, reason, noticeTopic, key string
	}{
		{"edgeq/jobs/work", strings.Repeat("x", 101), ReasonTooLarge, "edgeq/rejected/work", ""},
		{"edgeq/submit/work", `{"payload":1,"bogus":2}`, ReasonInvalid, "edgeq/rejected/work", ""},
		{"edgeq/submit/work", `{"payload":"` + strings.Repeat("x", 100) + `","key":"big"}`, ReasonTooLarge, "edgeq/rejected/work", "big"},
		{"edgeq/jobs/Bad_Name", `x`, ReasonInvalid, "edgeq/rejected/" + unrouted, ""},
		{"edgeq/jobs/full", `1`, "", "", ""},
		{"edgeq/jobs/full", `2`, ReasonQueueFull, "edgeq/rejected/full", ""},
	}
	for _, tc := range cases {
		publish(t, pc, tc.topic, []byte(tc.payload))
		if tc.reason == "" {
			eventually(t, "enqueue", func() bool { return c.Stats().Enqueued == 1 })
			continue
		}
		pk := rejected.next(t)
		n := decodeNotice(t, pk)
		if pk.TopicName != tc.noticeTopic || n.Reason != tc.reason || n.Topic != tc.topic || n.Key != tc.key {
			t.Errorf("%s %.20s: notice on %s = %+v, want %s on %s", tc.topic, tc.payload, pk.TopicName, n, tc.reason, tc.noticeTopic)
		}
	}
	s := c.Stats()
	if s.Rejected[ReasonTooLarge] != 2 || s.Rejected[ReasonInvalid] != 2 || s.Rejected[ReasonQueueFull] != 1 || c.Rejected() != 5 {
		t.Errorf("stats = %+v", s)
	}
}

// TestUnroutableDoesNotLeak: refused messages are acked, so more of them
// than the broker's in-flight window leave room for the next good one. A
// subscription of an older configuration, kept by the persistent session,
// delivers messages that no route takes.
func TestUnroutableDoesNotLeak(t *testing.T) {
	b := startBroker(t)
	eng := newEngine(t, engine.Config{})
	old, err := New(Config{Broker: b.url(), ClientID: "edgeq-leak", Routes: []Route{{Filter: "old/#", Queue: "old"}}}, eng)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := old.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	c := startClient(t, Config{Broker: b.url(), ClientID: "edgeq-leak"}, eng)
	rejected := b.subscribe("edgeq/rejected/#")
	pc := publisher(t, b)

	const n = 1100 // above mochi's receive maximum of 1024 and mosquitto's 20
	toks := make([]mqtt.Token, 0, 2*n)
	for i := range n {
		toks = append(toks, pc.Publish("old/x", 1, false, []byte("a")), pc.Publish(fmt.Sprintf("edgeq/jobs/NO%d", i), 1, false, []byte("b")))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	publish(t, pc, "edgeq/jobs/work", []byte("good"))
	eventually(t, "the good message", func() bool { return c.Stats().Enqueued == 1 })
	eventually(t, "all refused", func() bool { return c.Rejected() == 2*n })
	if pk := rejected.next(t); pk.TopicName != "edgeq/rejected/"+unrouted {
		t.Errorf("notice topic = %s", pk.TopicName)
	}
	eventually(t, "no in-flight messages at the broker", func() bool {
		cl, ok := b.srv.Clients.Get("edgeq-leak")
		return ok && cl.State.Inflight.Len() == 0
	})
}

func TestReconnectAfterBrokerRestart(t *testing.T) {
	b := startBroker(t)
	eng := newEngine(t, engine.Config{})
	c := startClient(t, Config{Broker: b.url()}, eng)
	pc := publisher(t, b)
	publish(t, pc, "edgeq/jobs/work", []byte("1"))
	eventually(t, "first job", func() bool { return c.Stats().Enqueued == 1 })

	b.stop()
	b.start()
	// The new broker knows no session: edgeq must subscribe again. Its
	// retained online status says it has.
	status := b.subscribe("edgeq/status/+")
	eventually(t, "online status", func() bool {
		select {
		case pk := <-status.ch:
			return string(pk.Payload) == "online"
		default:
			return false
		}
	})
	pc2 := publisher(t, b)
	publish(t, pc2, "edgeq/jobs/work", []byte("2"))
	eventually(t, "second job", func() bool { return c.Stats().Enqueued == 2 })
	if got := depth(t, eng, "work"); got != 2 {
		t.Errorf("depth = %d, want 2", got)
	}
}

func TestEventsAndAlerts(t *testing.T) {
	b := startBroker(t)
	h := new(hooks)
	eng := newEngine(t, engine.Config{OnEvent: h.event, Queues: map[string]engine.QueueConfig{"kept": {RetainDone: time.Hour, MaxResult: 8}}})
	c := startClient(t, Config{Broker: b.url(), Events: true}, eng)
	h.c.Store(c)
	events := b.subscribe("edgeq/events/#")
	alerts := b.subscribe("edgeq/alerts")

	res, err := eng.Enqueue(t.Context(), job.New{Queue: "work", Payload: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := eng.Lease(t.Context(), engine.LeaseRequest{Queue: "work", Max: 1})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Lease = %v, %v", jobs, err)
	}
	if err := eng.Ack(t.Context(), jobs[0].ID, jobs[0].LeaseID, nil); err != nil {
		t.Fatal(err)
	}
	pk := events.next(t)
	// The engine's done event does not always carry the attempt (the
	// engine's fast ack path reports 0); id and event are what matter here.
	var ev struct {
		ID      string `json:"id"`
		Event   string `json:"event"`
		Attempt *int   `json:"attempt"`
	}
	if err := json.Unmarshal(pk.Payload, &ev); err != nil || pk.TopicName != "edgeq/events/work" ||
		ev.ID != res.ID.String() || ev.Event != "done" || ev.Attempt == nil {
		t.Errorf("event %s %s (%v), want id %s done", pk.TopicName, pk.Payload, err, res.ID)
	}
	if strings.Contains(string(pk.Payload), "result") {
		t.Errorf("event of a job without a result: %s", pk.Payload)
	}

	// A retained job's done event carries its result: JSON as JSON, other
	// bytes in base64, cut at max_result and flagged.
	for _, tc := range []struct{ result, want string }{
		{`{"v":1}`, `"result":{"v":1}`},
		{"\x00binary!!", `"result_b64":"AGJpbmFyeSE=","result_truncated":true`},
	} {
		if _, err := eng.Enqueue(t.Context(), job.New{Queue: "kept"}); err != nil {
			t.Fatal(err)
		}
		jobs, err := eng.Lease(t.Context(), engine.LeaseRequest{Queue: "kept", Max: 1})
		if err != nil || len(jobs) != 1 {
			t.Fatalf("Lease = %v, %v", jobs, err)
		}
		if err := eng.Ack(t.Context(), jobs[0].ID, jobs[0].LeaseID, []byte(tc.result)); err != nil {
			t.Fatal(err)
		}
		pk := events.next(t)
		if !json.Valid(pk.Payload) || !strings.Contains(string(pk.Payload), tc.want) {
			t.Errorf("done event %s, want it to hold %s", pk.Payload, tc.want)
		}
	}

	c.OnLevel(job.Level(0), job.Level(1), "cpu", time.Now())
	pk = alerts.next(t)
	var a map[string]any
	if err := json.Unmarshal(pk.Payload, &a); err != nil || a["kind"] != "governor" || a["to"] != job.Level(1).String() {
		t.Errorf("alert %s: %v", pk.Payload, err)
	}
	c.OnAlert(engine.Alert{Queue: "work", Raised: true, Kind: "age", Age: time.Minute, At: time.Now()})
	pk = alerts.next(t)
	if err := json.Unmarshal(pk.Payload, &a); err != nil || a["kind"] != "backlog" || a["queue"] != "work" || a["raised"] != true {
		t.Errorf("alert %s: %v", pk.Payload, err)
	}
	// Retained: a new subscriber gets the last alert at once.
	if pk := b.subscribe("edgeq/alerts").next(t); !strings.Contains(string(pk.Payload), `"backlog"`) {
		t.Errorf("retained alert = %s", pk.Payload)
	}
}

func TestHandlerPublishesAndAcks(t *testing.T) {
	b := startBroker(t)
	h := NewHandler("out/{queue}/{id}", 5*time.Second)
	var outcome engine.Outcome
	var mu sync.Mutex
	unbound := h.Handle(t.Context(), &job.Job{Queue: "notify", Payload: []byte("p")})
	if unbound.Verdict != engine.Retry || !unbound.TargetFailed {
		t.Errorf("unbound Handle = %+v, want Retry, TargetFailed", unbound)
	}
	wrapped := engine.HandlerFunc(func(ctx context.Context, j *job.Job) engine.Outcome {
		o := h.Handle(ctx, j)
		mu.Lock()
		outcome = o
		mu.Unlock()
		return o
	})
	eng := newEngine(t, engine.Config{Queues: map[string]engine.QueueConfig{"notify": {Handler: wrapped}}})
	c := startClient(t, Config{Broker: b.url()}, eng)
	h.Bind(c)
	out := b.subscribe("out/#")

	res, err := eng.Enqueue(t.Context(), job.New{Queue: "notify", Payload: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	pk := out.next(t)
	if want := "out/notify/" + res.ID.String(); pk.TopicName != want || string(pk.Payload) != "hello" {
		t.Errorf("published %s %q, want %s hello", pk.TopicName, pk.Payload, want)
	}
	eventually(t, "job done", func() bool {
		s, err := eng.QueueStats("notify")
		return err == nil && s.CompletedTotal == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if outcome.Verdict != engine.Ack {
		t.Errorf("outcome = %+v", outcome)
	}
}

func TestStopBeforeStartAndTwice(t *testing.T) {
	c, err := New(Config{Broker: "tcp://127.0.0.1:1", ClientID: "x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := c.Stop(t.Context()); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
	if err := c.Start(t.Context()); err == nil {
		t.Error("Start after Stop succeeded")
	}
}

// TestEvictedAnnounced: a job evicted by its queue's on_full evict_oldest
// is announced on {prefix}/rejected/{queue} with reason evicted and its id,
// with job events off; its eviction is not a job event on {prefix}/events.
func TestEvictedAnnounced(t *testing.T) {
	b := startBroker(t)
	h := new(hooks)
	eng := newEngine(t, engine.Config{OnEvent: h.event, Queues: map[string]engine.QueueConfig{
		"tele": {MaxDepth: 1, OnFull: engine.OnFullEvictOldest},
	}})
	c := startClient(t, Config{Broker: b.url()}, eng)
	h.c.Store(c)
	rejected := b.subscribe("edgeq/rejected/#")
	pc := publisher(t, b)
	publish(t, pc, "edgeq/jobs/tele", []byte("old"))
	eventually(t, "enqueue", func() bool { return c.Stats().Enqueued == 1 })
	first, err := eng.QueueStats("tele")
	if err != nil || first.Ready != 1 {
		t.Fatalf("stats = %+v, %v", first, err)
	}
	publish(t, pc, "edgeq/jobs/tele", []byte("new"))
	pk := rejected.next(t)
	var n struct{ Reason, ID, Queue, At string }
	if err := json.Unmarshal(pk.Payload, &n); err != nil {
		t.Fatalf("notice %s: %v", pk.Payload, err)
	}
	if pk.TopicName != "edgeq/rejected/tele" || n.Reason != engine.ReasonEvicted || n.ID != job.ID(1).String() || n.Queue != "tele" {
		t.Errorf("notice on %s = %s, want reason evicted for job %s", pk.TopicName, pk.Payload, job.ID(1))
	}
	if _, err := time.Parse(time.RFC3339Nano, n.At); err != nil {
		t.Errorf("notice at: %v", err)
	}
}
