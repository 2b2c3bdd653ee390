package mqttapi

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgeq/edgeq/engine/job"
)

// Engine is what the transport needs of the engine. *engine.Engine
// satisfies it.
type Engine interface {
	// EnqueueBatchUncounted stores jobs into queue, all or none, and
	// answers once they are committed. It does not count a refusal: the
	// client offers refused jobs again (one by one, or after a transient
	// error) and counts each message it finally refuses with Refused.
	EnqueueBatchUncounted(ctx context.Context, queue string, jobs []job.New) ([]job.Result, error)
	// Refused counts n jobs for queue refused with err.
	Refused(queue string, n int, err error)
}

// Route maps a topic filter to a queue (SPEC 6 mqtt.routes).
type Route struct {
	Filter string
	Queue  string
	// KeyField names a top-level field of a JSON payload whose value becomes
	// the job's idempotency key; "" for none.
	KeyField string
	// GroupField names a top-level field of a JSON payload whose value
	// becomes the job's ordered group; "" for none.
	GroupField string
}

// TLSFiles names the CA that signs the broker and an optional client
// certificate and key (PEM).
type TLSFiles struct {
	CA   string
	Cert string
	Key  string
}

// Config configures a Client. Zero values mean defaults.
type Config struct {
	Broker   string // tcp://, ssl://, ws://... URL; required
	ClientID string // required: the persistent session is keyed by it
	Username string
	Password string
	TLS      TLSFiles
	Prefix   string // topic prefix, default "edgeq"
	Events   bool   // publish job events to {prefix}/events/{queue}
	Routes   []Route
	// StrictQueues makes {prefix}/jobs/{queue} and {prefix}/submit/{queue}
	// take only the queues that Routes name; a message for another queue is
	// refused as invalid (issue 21).
	StrictQueues bool
	// MaxPayload is the largest job payload, default 1 MiB; a bigger message
	// is refused as too_large before it is decoded.
	MaxPayload int
	// Intake is how many received messages may wait for their commit,
	// default 1024. Keep it at or above the broker's in-flight window for
	// this client (mosquitto max_inflight_messages, default 20): the paho
	// callback blocks when it is full.
	Intake int
	// InHandBytes bounds the bytes (payload and topic) of the received
	// messages held at once, waiting in the intake or being committed,
	// whatever their count; default DefaultInHandBytes or twice MaxPayload,
	// whichever is larger. Past it the paho callback waits for a commit,
	// so the broker holds the rest. A message larger than the bound is
	// still taken, alone.
	InHandBytes int64
	Logger      *slog.Logger
}

// Reasons a message was not taken, the "reason" of a rejection notice:
// job.Reason's, but for unavailable, which MQTT ingest retries instead.
const (
	ReasonShed        = job.ReasonShed
	ReasonQueueFull   = job.ReasonQueueFull
	ReasonRateLimited = job.ReasonRateLimited
	ReasonTooLarge    = job.ReasonTooLarge
	ReasonInvalid     = job.ReasonInvalid
	ReasonDiskFull    = job.ReasonDiskFull
)

var reasons = []string{ReasonShed, ReasonQueueFull, ReasonRateLimited, ReasonTooLarge, ReasonInvalid, ReasonDiskFull}

// DefaultInHandBytes is the least default of Config.InHandBytes: small
// against the GOMEMLIMIT of a 256 MiB box, so that a flood of large
// messages never makes the heap look like pressure to the governor.
const DefaultInHandBytes = 8 << 20

const (
	maxGroup     = 256  // messages per commit group
	outboundSize = 1024 // notices, events and alerts waiting to be published
	subTimeout   = 10 * time.Second
)

// Client is an MQTT connection that takes jobs and publishes notices. Its
// methods are safe for concurrent use.
type Client struct {
	cfg    Config
	eng    Engine
	log    *slog.Logger
	pc     mqtt.Client
	status string // {prefix}/status/{client_id}

	intake   chan mqtt.Message
	hand     inHand
	out      chan outMsg
	stopping chan struct{} // closed by Stop: take no more messages
	quit     chan struct{} // closed by Stop once ingest is done: publisher drains and exits
	ready    chan struct{} // closed after the first subscribe
	runCtx   context.Context
	cancel   context.CancelFunc
	ingestWG sync.WaitGroup // the ingest goroutine
	pubWG    sync.WaitGroup // the publisher goroutine

	mu        sync.Mutex // guards started, stopped, readyDone
	started   bool
	stopped   bool
	readyDone bool

	// live is true from the end of onConnect to the loss of the connection.
	// paho v1.5.1 marks a connection up before it resumes the session, and
	// its resume writes to stored QoS 1 publishes while they are sent (a
	// data race): edgeq publishes at QoS 1 (the mqtt handler) only while
	// live, which is after the subscribe round trip.
	live atomic.Bool

	received, enqueued, duplicates atomic.Uint64
	acked, held, dropped           atomic.Uint64
	connects                       atomic.Uint64    // connections subscribed, the first included
	lostAt                         atomic.Int64     // unix nanoseconds of the last loss of the connection
	rejected                       [6]atomic.Uint64 // by index in reasons
}

type outMsg struct {
	topic    string
	payload  []byte
	retained bool
}

// New builds a client; Start connects it. It reads the TLS files named in
// cfg.
func New(cfg Config, eng Engine) (*Client, error) {
	if cfg.Broker == "" {
		return nil, errors.New("mqtt: broker: required")
	}
	if cfg.ClientID == "" {
		return nil, errors.New("mqtt: client_id: required")
	}
	cfg.Prefix = cmp.Or(cfg.Prefix, "edgeq")
	cfg.MaxPayload = cmp.Or(cfg.MaxPayload, 1<<20)
	cfg.Intake = cmp.Or(cfg.Intake, 1024)
	cfg.InHandBytes = cmp.Or(cfg.InHandBytes, max(DefaultInHandBytes, 2*int64(cfg.MaxPayload)))
	log := cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)).With("component", "mqtt")
	c := &Client{
		cfg:      cfg,
		eng:      eng,
		log:      log,
		status:   cfg.Prefix + "/status/" + cfg.ClientID,
		intake:   make(chan mqtt.Message, cfg.Intake),
		hand:     inHand{limit: cfg.InHandBytes, freed: make(chan struct{})},
		out:      make(chan outMsg, outboundSize),
		stopping: make(chan struct{}),
		quit:     make(chan struct{}),
		ready:    make(chan struct{}),
	}
	c.runCtx, c.cancel = context.WithCancel(context.Background())

	o := mqtt.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetCleanSession(false).
		SetOrderMatters(true).
		SetAutoAckDisabled(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(30*time.Second).
		SetKeepAlive(30*time.Second).
		SetWill(c.status, "offline", 1, true).
		SetDefaultPublishHandler(c.onMessage).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			c.live.Store(false)
			c.lostAt.Store(time.Now().UnixNano())
			c.log.Warn("mqtt connection lost", "broker", cfg.Broker, "err", err)
		})
	if cfg.TLS != (TLSFiles{}) {
		tc, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		o.SetTLSConfig(tc)
	}
	c.pc = mqtt.NewClient(o)
	return c, nil
}

func tlsConfig(f TLSFiles) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("mqtt: tls.ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt: tls.ca: no certificate in %s", f.CA)
		}
	}
	if f.Cert != "" || f.Key != "" {
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("mqtt: tls.cert: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Start connects to the broker and starts the ingest and publisher
// goroutines. It waits until the first connection has subscribed or ctx
// ends; in the latter case the client keeps retrying in the background and
// Start returns nil (a broker that is down at boot is not a fatal error).
func (c *Client) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.started || c.stopped {
		c.mu.Unlock()
		return errors.New("mqtt: client already started or stopped")
	}
	c.started = true
	c.mu.Unlock()
	c.ingestWG.Go(c.ingest)
	c.pubWG.Go(c.publisher)
	c.pc.Connect() // with ConnectRetry, errors are retried, never returned
	select {
	case <-c.ready: // onConnect logged it
	case <-ctx.Done():
		c.log.Warn("mqtt broker not reachable yet; retrying in the background", "broker", c.cfg.Broker)
	}
	return nil
}

// Stop stops taking messages, commits and acks those in hand, publishes
// the offline status and disconnects. Messages not acked by then (ctx ended
// first) are redelivered by the broker at the next session. Stop is
// idempotent and safe before Start; it waits for the client's goroutines.
func (c *Client) Stop(ctx context.Context) error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	started := c.started
	c.mu.Unlock()
	close(c.stopping)
	if !started {
		c.cancel()
		return nil
	}
	// Past ctx, the enqueues in hand are aborted: their messages stay
	// unacked and the broker redelivers them.
	stopCancel := context.AfterFunc(ctx, c.cancel)
	defer stopCancel()
	c.ingestWG.Wait()
	close(c.quit)
	c.pubWG.Wait()
	var err error
	if ctx.Err() != nil {
		err = fmt.Errorf("mqtt: stop: %w", ctx.Err())
	}
	if c.pc.IsConnectionOpen() {
		t := c.pc.Publish(c.status, 1, true, "offline")
		waitToken(ctx, t, 2*time.Second)
	}
	c.pc.Disconnect(250)
	c.cancel()
	return err
}

// waitToken waits for t up to d or ctx; it reports whether t completed.
func waitToken(ctx context.Context, t mqtt.Token, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.Done():
		return true
	case <-timer.C:
	case <-ctx.Done():
	}
	return false
}

// onConnect subscribes (again: a broker that lost the session forgot the
// subscriptions) and publishes the online status. paho runs it on its own
// goroutine, so waiting here blocks nothing else.
func (c *Client) onConnect(pc mqtt.Client) {
	filters := map[string]byte{
		c.cfg.Prefix + "/jobs/+":   1,
		c.cfg.Prefix + "/submit/+": 1,
	}
	for _, r := range c.cfg.Routes {
		filters[r.Filter] = 1
	}
	// Without subscriptions nothing arrives: retry while this connection
	// lasts (a Disconnect here would also end paho's auto-reconnect).
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		t := pc.SubscribeMultiple(filters, nil)
		if t.WaitTimeout(subTimeout) && t.Error() == nil {
			break
		}
		c.log.Error("mqtt subscribe failed; retrying", "err", cmp.Or(t.Error(), errors.New("timeout")), "in", wait)
		select {
		case <-time.After(wait):
		case <-c.stopping:
			return
		}
		if !pc.IsConnectionOpen() {
			return // the next connect subscribes
		}
	}
	c.live.Store(true)
	if n := c.connects.Add(1); n == 1 {
		c.log.Info("mqtt connected", "broker", c.cfg.Broker, "client_id", c.cfg.ClientID)
	} else {
		down := time.Since(time.Unix(0, c.lostAt.Load())).Round(time.Millisecond)
		c.log.Info("mqtt reconnected", "broker", c.cfg.Broker, "client_id", c.cfg.ClientID, "down", down, "reconnects", n-1)
	}
	// QoS 0: a QoS 1 publish here could race paho's resume (see live).
	pc.Publish(c.status, 0, true, "online")
	c.mu.Lock()
	if !c.readyDone {
		c.readyDone = true
		close(c.ready)
	}
	c.mu.Unlock()
	c.log.Debug("mqtt subscribed", "filters", len(filters))
}

// onMessage hands a message to the intake. It runs on paho's router
// goroutine and blocks only while the intake is full, which a broker
// in-flight window at or below Config.Intake rules out. After Stop the
// message is left unacked for the broker to redeliver.
func (c *Client) onMessage(_ mqtt.Client, m mqtt.Message) {
	if !c.hand.take(msgBytes(m), c.stopping) {
		return
	}
	select {
	case c.intake <- m:
	case <-c.stopping:
		c.hand.give(msgBytes(m))
	}
}

// publish queues a message for the publisher without blocking; it reports
// false (and counts) when the buffer is full.
func (c *Client) publish(topic string, payload []byte, retained bool) bool {
	select {
	case c.out <- outMsg{topic: topic, payload: payload, retained: retained}:
		return true
	default:
		c.dropped.Add(1)
		return false
	}
}

// publisher publishes queued notices, events and alerts. They are best
// effort, so QoS 0: nothing is stored for a resend, and while disconnected
// they are dropped and counted, so memory stays bounded through an outage.
func (c *Client) publisher() {
	send := func(m outMsg) {
		if !c.live.Load() {
			c.dropped.Add(1)
			return
		}
		c.pc.Publish(m.topic, 0, m.retained, m.payload)
	}
	for {
		select {
		case m := <-c.out:
			send(m)
		case <-c.quit:
			for {
				select {
				case m := <-c.out:
					send(m)
				default:
					return
				}
			}
		}
	}
}

// Stats are the client's counters since New.
type Stats struct {
	Connected  bool              // connected and subscribed now
	Received   uint64            // messages received
	Acked      uint64            // messages acknowledged to the broker
	Enqueued   uint64            // jobs stored
	Duplicates uint64            // messages whose key was seen (acked, no new job)
	Rejected   map[string]uint64 // by reason (notice published)
	Held       uint64            // left unacked at shutdown, for the broker to redeliver
	// Dropped counts notices, events and alerts not published: buffer full
	// or disconnected.
	Dropped    uint64
	Reconnects uint64 // connections after the first
	InHand     int64  // bytes of messages held now (Config.InHandBytes)
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	s := Stats{
		Connected:  c.live.Load(),
		Received:   c.received.Load(),
		Acked:      c.acked.Load(),
		Enqueued:   c.enqueued.Load(),
		Duplicates: c.duplicates.Load(),
		Held:       c.held.Load(),
		Dropped:    c.dropped.Load(),
		Reconnects: max(c.connects.Load(), 1) - 1,
		InHand:     c.InHandBytes(),
		Rejected:   make(map[string]uint64, len(reasons)),
	}
	for i, r := range reasons {
		s.Rejected[r] = c.rejected[i].Load()
	}
	return s
}

// InHandBytes returns the bytes of received messages held now, waiting
// for or in their commit (at most Config.InHandBytes, or one message).
func (c *Client) InHandBytes() int64 { return c.hand.bytes() }

// Rejected returns how many messages were refused with a notice.
func (c *Client) Rejected() uint64 {
	var n uint64
	for i := range c.rejected {
		n += c.rejected[i].Load()
	}
	return n
}

func (c *Client) countRejected(reason string) {
	for i, r := range reasons {
		if r == reason {
			c.rejected[i].Add(1)
			return
		}
	}
}
