package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reconnection backoff: from reconnectMin, doubling to reconnectMax, each
// wait drawn in [d/2, d) so that a fleet does not redial in step.
const (
	reconnectMin = 250 * time.Millisecond
	reconnectMax = 30 * time.Second
)

// Headers a NATS message (and an MQTT 5 one) carries besides the job's own.
const (
	HeaderMsgID = "Nats-Msg-Id" // the job id: the stream drops a resend
	HeaderQueue = "Edgeq-Queue"
	HeaderJobID = "Edgeq-Job-Id" // the job id, as an MQTT 5 user property
)

// natsPub publishes to a JetStream stream over one nats.Conn, which
// reconnects by itself; a stalled connection is forced to reconnect.
type natsPub struct {
	cfg   Config
	log   *slog.Logger
	stats *stats
	opts  []nats.Option
	nc    *nats.Conn // set by start
	js    jetstream.JetStream
}

func newNATS(cfg Config, log *slog.Logger, st *stats) (*natsPub, error) {
	p := &natsPub{cfg: cfg, log: log, stats: st}
	p.opts = []nats.Option{
		nats.Name("edgeq uplink " + cfg.Name),
		nats.Timeout(cfg.Timeout),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		// Publishes while disconnected fail at once instead of waiting in
		// a buffer: the job stays on the box's disk, where it is durable.
		nats.ReconnectBufSize(-1),
		nats.ConnectHandler(p.up),
		nats.ReconnectHandler(func(nc *nats.Conn) { p.stats.reconnects.Add(1); p.up(nc) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			p.stats.down(time.Now())
			p.log.Warn("uplink down", "err", err)
		}),
	}
	if cfg.CredsFile != "" {
		p.opts = append(p.opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.TLS.CA != "" {
		p.opts = append(p.opts, nats.RootCAs(cfg.TLS.CA))
	}
	if cfg.TLS.Cert != "" {
		p.opts = append(p.opts, nats.ClientCert(cfg.TLS.Cert, cfg.TLS.Key))
	}
	return p, nil
}

func (p *natsPub) up(nc *nats.Conn) {
	p.stats.up()
	p.log.Info("uplink connected", "server", nc.ConnectedUrlRedacted())
}

// reconnectDelay is the wait before redial number attempts (from 1).
func reconnectDelay(attempts int) time.Duration {
	d := reconnectMin << min(attempts, 8)
	d = min(d, reconnectMax)
	return d/2 + rand.N(d/2)
}

func (p *natsPub) start(ctx context.Context) error {
	nc, err := nats.Connect(p.cfg.URL, p.opts...)
	if err != nil {
		return fmt.Errorf("connect %s: %w", p.cfg.URL, err)
	}
	p.nc = nc
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(p.cfg.Timeout))
	if err != nil {
		nc.Close()
		return fmt.Errorf("jetstream: %w", err)
	}
	p.js = js
	if !nc.IsConnected() {
		p.stats.down(time.Now())
		p.log.Warn("uplink offline at start; redialling in the background", "url", p.cfg.URL)
		return nil
	}
	p.stats.up()
	sctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	if _, err := js.Stream(sctx, p.cfg.Stream); err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %q not found on %s: edgeq does not create it", p.cfg.Stream, nc.ConnectedUrlRedacted())
		}
		return fmt.Errorf("stream %q: %w", p.cfg.Stream, err)
	}
	return nil
}

func (p *natsPub) connected() bool { return p.nc != nil && p.nc.IsConnected() }

func (p *natsPub) close() {
	if p.nc != nil {
		p.nc.Close()
	}
}

// publish sends batch asynchronously and waits for the acknowledgements
// together.
func (p *natsPub) publish(ctx context.Context, batch []*item) []error {
	return p.send(batch)(ctx)
}

// send publishes batch asynchronously, in order, and answers the wait for
// its acknowledgements, so that the next batch can go while they come back
// (pipelined). The jobs without one within the timeout of the send get
// errStalled and the connection is redialled.
func (p *natsPub) send(batch []*item) func(context.Context) []error {
	errs := make([]error, len(batch))
	futs := make([]jetstream.PubAckFuture, len(batch))
	for i, it := range batch {
		futs[i], errs[i] = p.js.PublishMsgAsync(p.message(it), jetstream.WithExpectStream(p.cfg.Stream))
		if errs[i] != nil {
			errs[i] = p.classify(errs[i])
		}
	}
	deadline := time.Now().Add(p.cfg.Timeout)
	return func(ctx context.Context) []error {
		timer := time.NewTimer(time.Until(deadline))
		defer timer.Stop()
		stalled := false
		for i, f := range futs {
			if f == nil {
				continue
			}
			if stalled {
				errs[i] = errStalled
				continue
			}
			select {
			case <-f.Ok():
			case err := <-f.Err():
				errs[i] = p.classify(err)
			case <-timer.C:
				errs[i], stalled = errStalled, true
			case <-ctx.Done():
				errs[i], stalled = errDown, true
			}
		}
		if stalled && ctx.Err() == nil {
			p.redial()
		}
		return errs
	}
}

// redial tears a stalled connection down and redials it, once for the
// batches in flight on it together.
func (p *natsPub) redial() {
	if !p.nc.IsConnected() {
		return // already redialling
	}
	p.log.Warn("uplink stalled; redialling", "timeout", p.cfg.Timeout)
	p.stats.down(time.Now())
	if err := p.nc.ForceReconnect(); err != nil {
		p.log.Warn("uplink redial", "err", err)
	}
}

// errStalled answers jobs that got no acknowledgement within the timeout.
var errStalled = errors.New("no acknowledgement within the timeout")

// classify tells a job the server refused from a link that failed.
func (p *natsPub) classify(err error) error {
	var api *jetstream.APIError
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return fmt.Errorf("%w: %v", errTooLarge, err)
	case errors.As(err, &api) && api.ErrorCode != jetstream.JSErrCodeStreamNotFound && api.Code != 503:
		return &refusedError{err: err}
	}
	return err
}

// message is it's job as a NATS message.
func (p *natsPub) message(it *item) *nats.Msg {
	j := it.j
	m := nats.NewMsg(strings.ReplaceAll(p.cfg.Subject, "{queue}", j.Queue))
	m.Data = j.Payload
	for k, v := range j.Headers {
		m.Header.Set(k, v)
	}
	if j.ContentType != "" {
		m.Header.Set("Content-Type", j.ContentType)
	}
	m.Header.Set(HeaderMsgID, j.ID.String())
	m.Header.Set(HeaderQueue, j.Queue)
	return m
}

// checkSubject accepts a NATS subject without wildcards, {queue} allowed.
func checkSubject(s string) error {
	bare := strings.ReplaceAll(s, "{queue}", "q")
	switch {
	case strings.ContainsAny(bare, "{}"):
		return fmt.Errorf("%q: the only placeholder is {queue}", s)
	case strings.ContainsAny(bare, "*> \t\r\n"):
		return fmt.Errorf("%q must be a subject without wildcards or spaces", s)
	case strings.HasPrefix(bare, ".") || strings.HasSuffix(bare, ".") || strings.Contains(bare, ".."):
		return fmt.Errorf("%q has an empty token", s)
	}
	return nil
}
