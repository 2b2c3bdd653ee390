package uplink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgeq/edgeq/engine/job"
)

// mqttSchemes are the URL schemes of an mqtt uplink, and whether each
// speaks TLS.
var mqttSchemes = map[string]bool{"tcp": false, "mqtt": false, "ssl": true, "tls": true, "mqtts": true}

// mqttKeepAlive is the interval of the MQTT keepalive pings.
const mqttKeepAlive = 30 * time.Second

// mqttPub publishes each job of a batch as one QoS 1 message (MQTT 3.1.1
// with paho.mqtt.golang, MQTT 5 with paho.golang) over its own connection
// to a cloud broker; the batch's publishes are in flight together and each
// job is acked on its PUBACK. run owns the connection: it dials, waits for
// the connection's loss and redials with backoff and jitter, each
// connection a new client with a clean session (a job whose PUBACK did not
// come is retried by the engine, not resent by the client library).
type mqttPub struct {
	cfg      Config
	log      *slog.Logger
	stats    *stats
	password string
	tls      *tls.Config // nil: plain TCP
	topic    []topicPart

	cur    atomic.Pointer[mqttConn] // the live connection; nil while down
	cancel context.CancelFunc       // ends run; set by start
	wg     sync.WaitGroup           // run
}

// mqttConn is one connection: a client, of MQTT 3.1.1 (pc) or 5 (pc5),
// and its socket.
type mqttConn struct {
	pc       mqtt.Client   // nil for MQTT 5
	pc5      *paho.Client  // nil for MQTT 3.1.1
	lost     chan struct{} // closed once the connection is lost or torn down
	lostOnce sync.Once
	mu       sync.Mutex
	nc       net.Conn // guarded by mu; nil before the dial
}

func newMQTT(cfg Config, log *slog.Logger, st *stats) (*mqttPub, error) {
	p := &mqttPub{cfg: cfg, log: log, stats: st}
	var err error
	if p.topic, err = parseTopic(cfg.Topic); err != nil {
		return nil, fmt.Errorf("topic: %w", err)
	}
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("password_file: %w", err)
		}
		p.password, _, _ = strings.Cut(string(b), "\n")
		p.password = strings.TrimRight(p.password, "\r")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if mqttSchemes[u.Scheme] {
		if p.tls, err = clientTLS(cfg.TLS, cfg.ALPN); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// clientTLS builds the TLS configuration of a client that trusts files.CA
// (the system's roots when "") and presents files' certificate, if any.
func clientTLS(files TLSFiles, alpn []string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: alpn}
	if files.CA != "" {
		pem, err := os.ReadFile(files.CA)
		if err != nil {
			return nil, fmt.Errorf("tls.ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca: no PEM certificate in %s", files.CA)
		}
	}
	if files.Cert != "" {
		cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
		if err != nil {
			return nil, fmt.Errorf("tls.cert: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// start dials once, then leaves redialling to run; a broker that cannot
// be reached or refuses the connection is not an error (offline is
// normal), it is logged and redialled.
func (p *mqttPub) start(ctx context.Context) error {
	c, err := p.dial(ctx)
	if err != nil {
		p.stats.down(time.Now())
		p.log.Warn("uplink offline at start; redialling in the background", "url", p.cfg.URL, "err", err)
	} else {
		p.up(c)
	}
	var bg context.Context
	bg, p.cancel = context.WithCancel(context.Background())
	p.wg.Go(func() { p.run(bg, c) })
	return nil
}

func (p *mqttPub) up(c *mqttConn) {
	p.cur.Store(c)
	p.stats.up()
	p.log.Info("uplink connected", "url", p.cfg.URL)
}

// run waits for the loss of connection c (nil: down) and redials after
// each, until ctx ends; then it disconnects.
func (p *mqttPub) run(ctx context.Context, c *mqttConn) {
	for attempt := 1; ; attempt++ {
		if c != nil {
			select {
			case <-c.lost:
				p.cur.CompareAndSwap(c, nil)
				p.stats.down(time.Now())
				c, attempt = nil, 1
			case <-ctx.Done():
				p.cur.Store(nil)
				c.disconnect()
				return
			}
		}
		wait := time.NewTimer(reconnectDelay(attempt))
		select {
		case <-wait.C:
		case <-ctx.Done():
			wait.Stop()
			return
		}
		next, err := p.dial(ctx)
		if err != nil {
			p.log.Debug("uplink redial", "attempt", attempt, "err", err)
			continue
		}
		c = next
		p.stats.reconnects.Add(1)
		p.up(c)
	}
}

// dial connects a new client, bounded by the timeout and ctx.
func (p *mqttPub) dial(ctx context.Context) (*mqttConn, error) {
	if p.cfg.Protocol == "5" {
		return p.dial5(ctx)
	}
	c := &mqttConn{lost: make(chan struct{})}
	o := mqtt.NewClientOptions().
		AddBroker(p.cfg.URL).
		SetClientID(p.cfg.ClientID).
		SetUsername(p.cfg.Username).
		SetPassword(p.password).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(p.cfg.Timeout).
		SetWriteTimeout(p.cfg.Timeout).
		SetKeepAlive(mqttKeepAlive).
		SetPingTimeout(p.cfg.Timeout).
		SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			return c.open(ctx, u, p.tls, p.cfg.Timeout)
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			p.log.Warn("uplink down", "err", err)
			c.teardown()
		})
	c.pc = mqtt.NewClient(o)
	tok := c.pc.Connect()
	if !tok.WaitTimeout(2 * p.cfg.Timeout) {
		c.teardown()
		tok.Wait()
		return nil, errors.New("no CONNACK within the timeout")
	}
	if err := tok.Error(); err != nil {
		c.teardown()
		return nil, err
	}
	return c, nil
}

// dial5 connects a new MQTT 5 client, bounded by the timeout and ctx.
func (p *mqttPub) dial5(ctx context.Context) (*mqttConn, error) {
	u, err := url.Parse(p.cfg.URL)
	if err != nil {
		return nil, err
	}
	c := &mqttConn{lost: make(chan struct{})}
	nc, err := c.open(ctx, u, p.tls, p.cfg.Timeout)
	if err != nil {
		return nil, err
	}
	c.pc5 = paho.NewClient(paho.ClientConfig{
		// The batch's publishes write concurrently.
		Conn:          packets.NewThreadSafeConn(nc),
		PacketTimeout: p.cfg.Timeout,
		OnClientError: func(err error) {
			p.log.Warn("uplink down", "err", err)
			c.teardown()
		},
		OnServerDisconnect: func(d *paho.Disconnect) {
			p.log.Warn("uplink down: the broker disconnected", "reason", d.ReasonCode)
			c.teardown()
		},
	})
	cctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	_, err = c.pc5.Connect(cctx, &paho.Connect{
		ClientID:     p.cfg.ClientID,
		KeepAlive:    uint16(mqttKeepAlive / time.Second),
		CleanStart:   true,
		Username:     p.cfg.Username,
		UsernameFlag: p.cfg.Username != "",
		Password:     []byte(p.password),
		PasswordFlag: p.password != "",
	})
	if err != nil {
		c.teardown()
		return nil, err
	}
	return c, nil
}

// disconnect ends c at Stop; a link that stalls does not hold it up.
func (c *mqttConn) disconnect() {
	c.mu.Lock()
	if c.nc != nil {
		c.nc.SetWriteDeadline(time.Now().Add(250 * time.Millisecond))
	}
	c.mu.Unlock()
	if c.pc5 != nil {
		c.pc5.Disconnect(&paho.Disconnect{ReasonCode: 0})
	} else {
		c.pc.Disconnect(250)
	}
	c.teardown()
}

// open dials the broker's socket, over TLS when tc is set.
func (c *mqttConn) open(ctx context.Context, u *url.URL, tc *tls.Config, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	var nc net.Conn
	var err error
	if tc != nil {
		nc, err = (&tls.Dialer{NetDialer: d, Config: tc}).DialContext(ctx, "tcp", u.Host)
	} else {
		nc, err = d.DialContext(ctx, "tcp", u.Host)
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.nc = nc
	c.mu.Unlock()
	return nc, nil
}

// teardown makes every read and write of c's socket fail at once, so that
// paho ends the connection (and closes the socket) whatever state the link
// is in, and marks c lost. Idempotent. Closing the socket instead would
// leave paho waiting: it takes a closed socket's error for a disconnect of
// its own and ignores it.
func (c *mqttConn) teardown() {
	c.mu.Lock()
	if c.nc != nil {
		c.nc.SetDeadline(time.Unix(1, 0))
	}
	c.mu.Unlock()
	c.lostOnce.Do(func() { close(c.lost) })
}

func (p *mqttPub) connected() bool { return p.cur.Load() != nil }

func (p *mqttPub) close() {
	if p.cancel != nil {
		p.cancel()
		p.wg.Wait()
	}
}

// publish sends each job of batch as one QoS 1 message, all in flight
// together, and waits for their PUBACKs; the jobs without one within the
// timeout get errStalled and the connection is torn down (run redials).
func (p *mqttPub) publish(ctx context.Context, batch []*item) []error {
	errs := make([]error, len(batch))
	c := p.cur.Load()
	if c == nil {
		for i := range errs {
			errs[i] = errDown
		}
		return errs
	}
	if c.pc5 != nil {
		p.publish5(ctx, c, batch, errs)
	} else {
		p.publish3(ctx, c, batch, errs)
	}
	if slices.Contains(errs, errStalled) && ctx.Err() == nil {
		p.log.Warn("uplink stalled; redialling", "timeout", p.cfg.Timeout)
		if p.cur.CompareAndSwap(c, nil) {
			p.stats.down(time.Now())
		}
		c.teardown()
	}
	return errs
}

// publish3 publishes batch over MQTT 3.1.1 into errs.
func (p *mqttPub) publish3(ctx context.Context, c *mqttConn, batch []*item, errs []error) {
	toks := make([]mqtt.Token, len(batch))
	for i, it := range batch {
		payload, _, err := p.payload(it.j.Payload, false)
		if err != nil {
			errs[i] = err
			continue
		}
		toks[i] = c.pc.Publish(p.topicOf(it.j.Queue, it.j.ID.String(), it.j.Headers), 1, false, payload)
	}
	timer := time.NewTimer(p.cfg.Timeout)
	defer timer.Stop()
	var stalled error
	for i, tok := range toks {
		if tok == nil {
			continue
		}
		if stalled == nil {
			select {
			case <-tok.Done():
			case <-timer.C:
				stalled = errStalled
			case <-ctx.Done():
				stalled = errDown
			}
		}
		select {
		case <-tok.Done():
			errs[i] = tok.Error()
		default:
			errs[i] = stalled
		}
	}
}

// publish5 publishes batch over MQTT 5 into errs, one goroutine a job
// (paho.golang's Publish waits for its PUBACK), all awaited.
func (p *mqttPub) publish5(ctx context.Context, c *mqttConn, batch []*item, errs []error) {
	pctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, it := range batch {
		payload, enc, err := p.payload(it.j.Payload, true)
		if err != nil {
			errs[i] = err
			continue
		}
		wg.Go(func() {
			resp, err := c.pc5.Publish(pctx, p.message5(it.j, enc, payload))
			switch {
			case err == nil:
			case resp != nil && resp.ReasonCode >= 0x80:
				errs[i] = &refusedError{err: err}
			case ctx.Err() != nil:
				errs[i] = errDown
			case pctx.Err() != nil:
				errs[i] = errStalled
			default:
				errs[i] = err
			}
		})
	}
	wg.Wait()
}

// message5 is job j as an MQTT 5 message: its id, queue and headers as
// user properties, its content type as the message's; payload's encoding
// enc, when set, as the Content-Encoding user property, in place of one
// the job carries.
func (p *mqttPub) message5(j *job.Job, enc string, payload []byte) *paho.Publish {
	id := j.ID.String()
	props := &paho.PublishProperties{ContentType: j.ContentType}
	props.User.Add(HeaderJobID, id).Add(HeaderQueue, j.Queue)
	for _, k := range slices.Sorted(maps.Keys(j.Headers)) {
		if enc == "" || !strings.EqualFold(k, HeaderContentEncoding) {
			props.User.Add(k, j.Headers[k])
		}
	}
	if enc != "" {
		props.User.Add(HeaderContentEncoding, enc)
	}
	return &paho.Publish{QoS: 1, Topic: p.topicOf(j.Queue, id, j.Headers), Payload: payload, Properties: props}
}

// HeaderContentEncoding is the MQTT 5 user property that names a
// compressed payload's encoding, as HTTP's header does.
const HeaderContentEncoding = "Content-Encoding"

// payload is a job's payload as published, and its encoding: compressed
// when Compress says so, each message on its own (a receiver decodes one
// message at a time). With optional (MQTT 5, where the message names its
// encoding), a payload that compression would not shrink goes as it is.
func (p *mqttPub) payload(raw []byte, optional bool) ([]byte, string, error) {
	if p.cfg.Compress == "" {
		return raw, "", nil
	}
	wire, err := Compress(p.cfg.Compress, nil, raw)
	if err != nil {
		return nil, "", &refusedError{err: err}
	}
	if optional && len(wire) >= len(raw) {
		p.stats.compressed(len(raw), len(raw))
		return raw, "", nil
	}
	p.stats.compressed(len(raw), len(wire))
	return wire, p.cfg.Compress, nil
}
