package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// mqttBroker is an in-process mochi broker on a fixed loopback address,
// so that a test can stop it and start it again where the uplink redials.
type mqttBroker struct {
	t    *testing.T
	addr string
	tls  *tls.Config // nil: plain TCP
	srv  *mochi.Server
	in   *mqttInbox
}

// mqttInbox holds what the broker's inline subscriber received.
type mqttInbox struct {
	mu   sync.Mutex
	pks  []packets.Packet // guarded by mu
	more chan struct{}    // signalled on each packet
}

func startMQTTBroker(t *testing.T, tc *tls.Config) *mqttBroker {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	b := &mqttBroker{t: t, addr: addr, tls: tc, in: &mqttInbox{more: make(chan struct{}, 1)}}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *mqttBroker) start() {
	b.t.Helper()
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		b.t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: b.addr, TLSConfig: b.tls})); err != nil {
		b.t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		b.t.Fatal(err)
	}
	err := srv.Subscribe("#", 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		if strings.HasPrefix(pk.TopicName, "$") { // the broker's own $SYS topics
			return
		}
		b.in.mu.Lock()
		b.in.pks = append(b.in.pks, pk)
		b.in.mu.Unlock()
		select {
		case b.in.more <- struct{}{}:
		default:
		}
	})
	if err != nil {
		b.t.Fatal(err)
	}
	b.srv = srv
}

func (b *mqttBroker) stop() {
	if b.srv != nil {
		b.srv.Close()
		b.srv = nil
	}
}

func (b *mqttBroker) url(scheme string) string { return scheme + "://" + b.addr }

// received answers the packets the broker delivered so far.
func (b *mqttBroker) received() []packets.Packet {
	b.in.mu.Lock()
	defer b.in.mu.Unlock()
	return slices.Clone(b.in.pks)
}

// waitReceived polls until the broker delivered at least n packets, within
// 20s, and answers them.
func (b *mqttBroker) waitReceived(t *testing.T, n int) []packets.Packet {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		if pks := b.received(); len(pks) >= n {
			return pks
		}
		select {
		case <-b.in.more:
		case <-deadline.C:
			t.Fatalf("broker received %d messages within 20s, want %d", len(b.received()), n)
		}
	}
}

// TestMQTTQoS1TopicTemplate: a batch of concurrent jobs goes out as one
// QoS 1 publish each, on the topic its template makes of the job's queue,
// header and id, and each job is acked.
func TestMQTTQoS1TopicTemplate(t *testing.T) {
	b := startMQTTBroker(t, nil)
	u := startMQTTUplink(t, Config{URL: b.url("tcp"), Topic: "sites/s1/{queue}/{header.Sensor}/{id}",
		Batch: Batch{MaxJobs: 20, Linger: time.Second}})
	jobs := make([]*job.Job, 20)
	want := map[string]string{}
	for i := range jobs {
		jobs[i] = newJob("telemetry", []byte(`{"t":21.5}`))
		want["sites/s1/telemetry/t1/"+jobs[i].ID.String()] = `{"t":21.5}`
	}
	for i, o := range handleAll(u.Handler(job.ClassNormal), jobs) {
		if o.Verdict != engine.Ack {
			t.Fatalf("job %d: %+v, want ack", i, o)
		}
	}
	for _, pk := range b.waitReceived(t, 20) {
		payload, ok := want[pk.TopicName]
		if !ok || string(pk.Payload) != payload || pk.FixedHeader.Qos != 1 {
			t.Errorf("received %q qos %d %q: not a job's topic at QoS 1", pk.TopicName, pk.FixedHeader.Qos, pk.Payload)
		}
		delete(want, pk.TopicName)
	}
	if len(want) != 0 {
		t.Errorf("never received: %v", want)
	}
	if st := u.Stats(); st.Type != "mqtt" || st.JobsSent != 20 || st.Batches != 1 || !st.Connected {
		t.Errorf("stats %+v: want 20 mqtt jobs in one batch, connected", st)
	}
}

// TestMQTTHeaderPlaceholderCannotAddWildcards: a header's value lands in
// one topic level; the characters a topic name must not hold are replaced,
// so a job cannot publish to a wildcard or another level.
func TestMQTTHeaderPlaceholderCannotAddWildcards(t *testing.T) {
	b := startMQTTBroker(t, nil)
	u := startMQTTUplink(t, Config{URL: b.url("tcp"), Topic: "s/{header.Sensor}/x", Batch: Batch{Linger: time.Millisecond}})
	j := newJob("telemetry", []byte("v"))
	j.Headers["Sensor"] = "a/+/#"
	if o := u.Handler(job.ClassNormal).Handle(t.Context(), j); o.Verdict != engine.Ack {
		t.Fatalf("%+v, want ack", o)
	}
	if pks := b.waitReceived(t, 1); pks[0].TopicName != "s/a____/x" {
		t.Errorf("topic %q, want s/a____/x", pks[0].TopicName)
	}
}

// gateProxy forwards one TCP connection at a time to a broker; once armed,
// it holds what the broker sends back until the client has sent n more
// bytes. A client that waits for each PUBACK before its next publish never
// gets there.
type gateProxy struct {
	l      net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	cond   *sync.Cond
	sent   int  // client to broker bytes; guarded by mu
	until  int  // hold the broker's bytes until sent reaches it; guarded by mu
	closed bool // guarded by mu
	conns  []net.Conn
}

func newGateProxy(t *testing.T, target string) *gateProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &gateProxy{l: l, target: target}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		p.closed = true
		for _, c := range p.conns {
			c.Close()
		}
		p.cond.Broadcast()
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *gateProxy) arm(n int) {
	p.mu.Lock()
	p.until = p.sent + n
	p.mu.Unlock()
}

func (p *gateProxy) accept() {
	for {
		a, err := p.l.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			a.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, a, b)
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(b, a, true) })
		p.wg.Go(func() { p.pipe(a, b, false) })
	}
}

func (p *gateProxy) pipe(dst, src net.Conn, up bool) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if up {
				p.sent += n
				p.cond.Broadcast()
			} else {
				for p.sent < p.until && !p.closed {
					p.cond.Wait()
				}
			}
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestMQTTBatchPublishedConcurrently: the broker's PUBACKs are held until
// every publish of the batch has reached it, so the batch is acked only
// if its publishes are in flight together.
func TestMQTTBatchPublishedConcurrently(t *testing.T) {
	b := startMQTTBroker(t, nil)
	p := newGateProxy(t, b.addr)
	u := startMQTTUplink(t, Config{URL: "tcp://" + p.l.Addr().String(), Topic: "t/{queue}", Timeout: 5 * time.Second,
		Batch: Batch{MaxJobs: 10, Linger: time.Second}})
	// A QoS 1 PUBLISH of topic t/telemetry and a 4-byte payload is 2 + 2 +
	// 11 + 2 + 4 bytes.
	p.arm(10 * 21)
	jobs := make([]*job.Job, 10)
	for i := range jobs {
		jobs[i] = newJob("telemetry", []byte("abcd"))
	}
	for i, o := range handleAll(u.Handler(job.ClassNormal), jobs) {
		if o.Verdict != engine.Ack {
			t.Fatalf("job %d: %+v, want ack (publishes not in flight together)", i, o)
		}
	}
}

// mqttTLS answers a broker TLS configuration that wants a client
// certificate signed by p's CA and, when alpn is set, that protocol.
func mqttTLS(t *testing.T, p *pki, alpn string) *tls.Config {
	t.Helper()
	scert, skey := p.issue(t, "broker", x509.ExtKeyUsageServerAuth)
	cert, err := tls.LoadX509KeyPair(scert, skey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	if alpn != "" {
		tc.NextProtos = []string{alpn}
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if cs.NegotiatedProtocol != alpn {
				return errors.New("no ALPN " + alpn)
			}
			return nil
		}
	}
	return tc
}

// TestMQTTMutualTLSAndALPN: the broker wants a client certificate and, as
// AWS IoT Core on port 443 does, the ALPN protocol x-amzn-mqtt-ca. Without
// either the uplink stays offline; with both its jobs arrive.
func TestMQTTMutualTLSAndALPN(t *testing.T) {
	p := newPKI(t)
	ccert, ckey := p.issue(t, "site-0042", x509.ExtKeyUsageClientAuth)
	b := startMQTTBroker(t, mqttTLS(t, p, "x-amzn-mqtt-ca"))
	alpn := []string{"x-amzn-mqtt-ca"}
	for _, tt := range []struct {
		name string
		tls  TLSFiles
		alpn []string
	}{
		{"no client certificate", TLSFiles{CA: p.caPath}, alpn},
		{"no alpn", TLSFiles{CA: p.caPath, Cert: ccert, Key: ckey}, nil},
	} {
		u := startMQTTUplink(t, Config{URL: b.url("ssl"), TLS: tt.tls, ALPN: tt.alpn, Timeout: time.Second})
		if st := u.Stats(); st.Connected {
			t.Errorf("%s: connected: %+v", tt.name, st)
		}
		if o := u.Handler(job.ClassNormal).Handle(t.Context(), newJob("telemetry", []byte("x"))); o.Verdict != engine.Retry || !o.Unreached {
			t.Errorf("%s: %+v, want an unreached retry", tt.name, o)
		}
		u.Stop()
	}
	u := startMQTTUplink(t, Config{URL: b.url("tls"), TLS: TLSFiles{CA: p.caPath, Cert: ccert, Key: ckey}, ALPN: alpn})
	j := newJob("telemetry", []byte("x"))
	if o := u.Handler(job.ClassNormal).Handle(t.Context(), j); o.Verdict != engine.Ack {
		t.Fatalf("over mutual TLS with ALPN: %+v, want ack", o)
	}
	if pks := b.waitReceived(t, 1); pks[0].TopicName != "sites/site-0042/telemetry/"+j.ID.String() {
		t.Errorf("received %q", pks[0].TopicName)
	}
}

// TestMQTTUsernamePassword: the password comes from password_file, its
// first line; a broker that refuses the credentials keeps the uplink
// offline.
func TestMQTTUsernamePassword(t *testing.T) {
	b := &mqttBroker{t: t, in: &mqttInbox{more: make(chan struct{}, 1)}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = l.Addr().String()
	l.Close()
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.Hook), &auth.Options{Ledger: &auth.Ledger{
		Auth: auth.AuthRules{{Username: "site-0042", Password: "s3cret", Allow: true}}}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: b.addr})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	if err := os.WriteFile(good, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u := startMQTTUplink(t, Config{URL: b.url("tcp"), Username: "site-0042", PasswordFile: bad, Timeout: time.Second})
	if u.Stats().Connected {
		t.Error("connected with the wrong password")
	}
	u.Stop()
	u = startMQTTUplink(t, Config{URL: b.url("tcp"), Username: "site-0042", PasswordFile: good})
	if o := u.Handler(job.ClassNormal).Handle(t.Context(), newJob("telemetry", []byte("x"))); o.Verdict != engine.Ack {
		t.Fatalf("with the password: %+v, want ack", o)
	}
	if _, err := New(Config{Name: "cloud", Type: "mqtt", URL: b.url("tcp"), ClientID: "c", Topic: "t", PasswordFile: filepath.Join(dir, "none")}); err == nil || !strings.Contains(err.Error(), "uplinks.cloud.password_file") {
		t.Errorf("missing password file: %v, want an error naming uplinks.cloud.password_file", err)
	}
}

// TestMQTTBrokerDownThenBackUnderIngest: the broker goes away under
// continuous ingest and comes back on the same address; the queue
// accumulates, no job goes dead, and every job arrives (counted by id).
func TestMQTTBrokerDownThenBackUnderIngest(t *testing.T) {
	b := startMQTTBroker(t, nil)
	u := startMQTTUplink(t, Config{URL: b.url("tcp"), Timeout: time.Second, Batch: Batch{MaxJobs: 20, Linger: 5 * time.Millisecond}})
	e := startEngine(t, u, job.ClassNormal)

	ids := map[string]bool{}
	ingest := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			res, err := e.EnqueueBatch(t.Context(), "telemetry", []job.New{{Payload: []byte("r")}, {Payload: []byte("r")}})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				ids[r.ID.String()] = true
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	ingest(300 * time.Millisecond)
	before := len(b.received())
	b.stop()
	ingest(time.Second)
	if st := u.Stats(); st.Connected || st.DownSince.IsZero() {
		t.Errorf("while the broker is gone: %+v, want down", st)
	}
	down, _ := e.QueueStats("telemetry")
	if down.Ready+down.Delayed == 0 {
		t.Errorf("while down the queue holds %+v, want a backlog", down)
	}
	b.start()
	ingest(300 * time.Millisecond)
	st := waitDrained(t, e, "telemetry", 30*time.Second)
	if st.Dead != 0 || st.Ready+st.Delayed+st.Leased != 0 {
		t.Fatalf("after the outage: %+v, want every job sent, none dead", st)
	}
	// The first broker's deliveries went with it; the restarted broker
	// holds the rest. Together they hold every job.
	seen := map[string]bool{}
	for _, pk := range b.received() {
		seen[pk.TopicName[strings.LastIndexByte(pk.TopicName, '/')+1:]] = true
	}
	missing := 0
	for id := range ids {
		if !seen[id] {
			missing++
		}
	}
	if missing != 0 {
		t.Fatalf("%d of %d jobs never arrived (%d before the outage)", missing, len(ids), before)
	}
	if u.Stats().Reconnects == 0 {
		t.Error("no reconnect counted")
	}
}

// TestMQTTStalledConnectionRedialled: the link goes silent without
// closing; the job waiting for its PUBACK gives up after the timeout,
// costs no attempt, and the connection is torn down and redialled, so the
// retry goes through.
func TestMQTTStalledConnectionRedialled(t *testing.T) {
	b := startMQTTBroker(t, nil)
	p := newStallProxy(t, b.addr)
	u := startMQTTUplink(t, Config{URL: "tcp://" + p.l.Addr().String(), Timeout: 500 * time.Millisecond, Batch: Batch{Linger: time.Millisecond}})
	h := u.Handler(job.ClassNormal)
	if o := h.Handle(t.Context(), newJob("telemetry", []byte("a"))); o.Verdict != engine.Ack {
		t.Fatalf("before the stall: %+v, want ack", o)
	}
	p.stall()
	start := time.Now()
	o := h.Handle(t.Context(), newJob("telemetry", []byte("b")))
	if o.Verdict != engine.Retry || !o.Unreached || !o.TargetFailed || time.Since(start) > 5*time.Second {
		t.Fatalf("stalled: %+v after %v, want an unreached retry after the 500ms timeout", o, time.Since(start))
	}
	c := newJob("telemetry", []byte("c"))
	deliver(t, h, c)
	if st := u.Stats(); st.Reconnects == 0 {
		t.Errorf("stats %+v: want a reconnect", st)
	}
	found := false
	for _, pk := range b.waitReceived(t, 2) {
		found = found || strings.HasSuffix(pk.TopicName, "/"+c.ID.String())
	}
	if !found {
		t.Error("the job after the stall never arrived")
	}
}

func TestMQTTConfigValidate(t *testing.T) {
	base := Config{Name: "cloud", Type: "mqtt", URL: "ssl://iot.example:443", ClientID: "site", Topic: "s/{queue}/{id}/{header.Sensor}"}
	if err := base.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tt := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"unknown placeholder", func(c *Config) { c.Topic = "s/{queue}/{site}" }, `topic: "s/{queue}/{site}": unknown placeholder {site}`},
		{"empty header name", func(c *Config) { c.Topic = "s/{header.}" }, "unknown placeholder {header.}"},
		{"unclosed", func(c *Config) { c.Topic = "s/{queue" }, "unclosed {"},
		{"wildcard", func(c *Config) { c.Topic = "s/+/x" }, "topic: \"s/+/x\" must not hold the wildcards + or #"},
		{"no topic", func(c *Config) { c.Topic = "" }, "topic: required for mqtt uplinks"},
		{"no client id", func(c *Config) { c.ClientID = "" }, "client_id: required for mqtt uplinks"},
		{"no url", func(c *Config) { c.URL = "" }, "url: required"},
		{"scheme", func(c *Config) { c.URL = "ws://iot.example:443" }, `url: "ws://iot.example:443": want tcp://, mqtt://, ssl://, tls:// or mqtts://`},
		{"no port", func(c *Config) { c.URL = "ssl://iot.example" }, "url: \"ssl://iot.example\": want host:port"},
		{"alpn without tls", func(c *Config) { c.URL = "tcp://b:1883"; c.ALPN = []string{"x"} }, "alpn: needs a TLS url"},
		{"protocol", func(c *Config) { c.Protocol = "3" }, `protocol: unknown protocol "3" (want 3.1.1 or 5)`},
		{"nats key", func(c *Config) { c.Stream = "EDGE" }, "stream: not used by mqtt uplinks"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
	n := Config{Name: "cloud", Type: "nats", URL: "nats://h:4222", Stream: "E", Subject: "e", Topic: "t"}
	if err := n.Validate(); err == nil || !strings.Contains(err.Error(), "topic: not used by nats uplinks") {
		t.Errorf("nats with topic: %v", err)
	}
}

// TestMQTT5UserProperties: with protocol 5 the job's id, queue and own
// headers travel as user properties, its content type as the message's.
func TestMQTT5UserProperties(t *testing.T) {
	b := startMQTTBroker(t, nil)
	u := startMQTTUplink(t, Config{URL: b.url("tcp"), Protocol: "5", Batch: Batch{MaxJobs: 10, Linger: time.Second}})
	jobs := make([]*job.Job, 10)
	for i := range jobs {
		jobs[i] = newJob("telemetry", []byte(`{"t":21.5}`))
		jobs[i].ContentType = "application/json"
	}
	for i, o := range handleAll(u.Handler(job.ClassNormal), jobs) {
		if o.Verdict != engine.Ack {
			t.Fatalf("job %d: %+v, want ack", i, o)
		}
	}
	byID := map[string]packets.Packet{}
	for _, pk := range b.waitReceived(t, 10) {
		props := map[string]string{}
		for _, up := range pk.Properties.User {
			props[up.Key] = up.Val
		}
		if props[HeaderQueue] != "telemetry" || props["Sensor"] != "t1" || pk.Properties.ContentType != "application/json" || pk.FixedHeader.Qos != 1 {
			t.Errorf("%s: user properties %v, content type %q, qos %d", pk.TopicName, props, pk.Properties.ContentType, pk.FixedHeader.Qos)
		}
		byID[props[HeaderJobID]] = pk
	}
	for _, j := range jobs {
		if pk, ok := byID[j.ID.String()]; !ok || !strings.HasSuffix(pk.TopicName, "/"+j.ID.String()) {
			t.Errorf("job %s: no message with its id as %s", j.ID, HeaderJobID)
		}
	}
	if st := u.Stats(); st.JobsSent != 10 || st.Batches != 1 {
		t.Errorf("stats %+v: want 10 jobs in one batch", st)
	}
}

// TestMQTT5RefusedJobCostsAnAttempt: an MQTT 5 broker refuses one message
// with a PUBACK reason code; that job is retried as an ordinary failure
// (an attempt spent, the link not blamed) and the connection stays up.
func TestMQTT5RefusedJobCostsAnAttempt(t *testing.T) {
	b := &mqttBroker{t: t, in: &mqttInbox{more: make(chan struct{}, 1)}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = l.Addr().String()
	l.Close()
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.Hook), &auth.Options{Ledger: &auth.Ledger{
		Auth: auth.AuthRules{{Allow: true}},
		ACL:  auth.ACLRules{{Filters: auth.Filters{"deny/#": auth.Deny, "telemetry/#": auth.ReadWrite}}}}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: b.addr})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	u := startMQTTUplink(t, Config{URL: b.url("tcp"), Protocol: "5", Topic: "{queue}/{id}", Batch: Batch{Linger: time.Millisecond}})
	h := u.Handler(job.ClassNormal)
	o := h.Handle(t.Context(), newJob("deny", []byte("x")))
	if o.Verdict != engine.Retry || o.Unreached || o.TargetFailed || !strings.Contains(o.Error, "refused") {
		t.Fatalf("refused job: %+v, want a retry that spends an attempt", o)
	}
	if o := h.Handle(t.Context(), newJob("telemetry", []byte("x"))); o.Verdict != engine.Ack {
		t.Fatalf("after the refusal: %+v, want ack", o)
	}
	if st := u.Stats(); st.Reconnects != 0 || !st.Connected {
		t.Errorf("stats %+v: want the connection kept", st)
	}
}

// TestMQTT5StalledConnectionRedialled: as TestMQTTStalledConnectionRedialled,
// over MQTT 5.
func TestMQTT5StalledConnectionRedialled(t *testing.T) {
	b := startMQTTBroker(t, nil)
	p := newStallProxy(t, b.addr)
	u := startMQTTUplink(t, Config{URL: "tcp://" + p.l.Addr().String(), Protocol: "5", Timeout: 500 * time.Millisecond, Batch: Batch{Linger: time.Millisecond}})
	h := u.Handler(job.ClassNormal)
	if o := h.Handle(t.Context(), newJob("telemetry", []byte("a"))); o.Verdict != engine.Ack {
		t.Fatalf("before the stall: %+v, want ack", o)
	}
	p.stall()
	if o := h.Handle(t.Context(), newJob("telemetry", []byte("b"))); o.Verdict != engine.Retry || !o.Unreached || !o.TargetFailed {
		t.Fatalf("stalled: %+v, want an unreached retry", o)
	}
	deliver(t, h, newJob("telemetry", []byte("c")))
	if st := u.Stats(); st.Reconnects == 0 {
		t.Errorf("stats %+v: want a reconnect", st)
	}
}

// TestMQTT5MutualTLS: protocol 5 over mutual TLS with ALPN.
func TestMQTT5MutualTLS(t *testing.T) {
	p := newPKI(t)
	ccert, ckey := p.issue(t, "site-0042", x509.ExtKeyUsageClientAuth)
	b := startMQTTBroker(t, mqttTLS(t, p, "x-amzn-mqtt-ca"))
	u := startMQTTUplink(t, Config{URL: b.url("ssl"), Protocol: "5", TLS: TLSFiles{CA: p.caPath}, ALPN: []string{"x-amzn-mqtt-ca"}, Timeout: time.Second})
	if u.Stats().Connected {
		t.Error("connected without a client certificate")
	}
	u.Stop()
	u = startMQTTUplink(t, Config{URL: b.url("ssl"), Protocol: "5", TLS: TLSFiles{CA: p.caPath, Cert: ccert, Key: ckey}, ALPN: []string{"x-amzn-mqtt-ca"}})
	if o := u.Handler(job.ClassNormal).Handle(t.Context(), newJob("telemetry", []byte("x"))); o.Verdict != engine.Ack {
		t.Fatalf("over mutual TLS: %+v, want ack", o)
	}
}
