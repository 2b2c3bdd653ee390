package uplink

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxJobs  = 100
	DefaultMaxBytes = 256 << 10
	DefaultLinger   = 50 * time.Millisecond
	DefaultTimeout  = 10 * time.Second
)

// Config configures one uplink. Zero values mean the defaults.
type Config struct {
	Name string // the key under uplinks:, for logs and errors
	Type string // "nats", "mqtt" or "http"
	// URL is the server (nats://host:4222, several separated by commas;
	// tcp://, ssl://, tls:// or mqtts://host:port for mqtt), or the
	// collector's endpoint (https://host/path) for http.
	URL string
	// Stream is the JetStream stream that must exist; edgeq never creates it.
	Stream string
	// Subject is the message subject; {queue} expands to the job's queue.
	Subject string
	// CredsFile is a NATS credentials file (JWT and NKey seed); "" for none.
	CredsFile string
	// ClientID, Username and PasswordFile (its first line is the password)
	// identify an mqtt uplink to its broker.
	ClientID     string
	Username     string
	PasswordFile string
	// Protocol is the MQTT version: "" or "3.1.1", or "5".
	Protocol string
	// Topic is an mqtt uplink's topic; {queue}, {id} and {header.NAME}
	// expand to the job's queue, id and header NAME.
	Topic string
	// Headers are sent with each http request.
	Headers map[string]string
	// TokenFile holds a token sent as Authorization: Bearer (http).
	TokenFile string
	// Compress is the encoding of an http body or of each mqtt payload:
	// "", gzip or zstd.
	Compress string
	TLS      TLSFiles
	// ALPN are the protocols offered in the TLS handshake of an mqtt
	// uplink (AWS IoT Core takes x-amzn-mqtt-ca on port 443).
	ALPN  []string
	Batch Batch
	// MaxRate caps the jobs sent per second; 0: no cap.
	MaxRate float64
	// MaxBandwidth caps the payload bytes sent per second; 0: no cap.
	MaxBandwidth int64
	// Timeout bounds the wait for a batch's acknowledgements; a connection
	// that gives none within it is torn down and redialled.
	Timeout time.Duration
	// AlertAfter raises an alert once the uplink has been down this long;
	// 0: never.
	AlertAfter time.Duration
	Logger     *slog.Logger
}

// TLSFiles names the CA that signs the server and an optional client
// certificate.
type TLSFiles struct{ CA, Cert, Key string }

// Batch bounds one batch: at most MaxJobs jobs and MaxBytes payload bytes
// (a single larger job goes alone), sent once full or Linger after its
// first job arrived.
type Batch struct {
	MaxJobs  int
	MaxBytes int
	Linger   time.Duration
}

// Validate checks cfg; errors name the key under uplinks.NAME.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	switch c.Type {
	case "nats":
		if c.URL == "" {
			bad("url", "required for nats uplinks")
		}
		if c.Stream == "" {
			bad("stream", "required for nats uplinks")
		}
		if c.Subject == "" {
			bad("subject", "required for nats uplinks")
		} else if err := checkSubject(c.Subject); err != nil {
			bad("subject", "%v", err)
		}
		for _, f := range []struct {
			key string
			set bool
		}{{"client_id", c.ClientID != ""}, {"username", c.Username != ""}, {"password_file", c.PasswordFile != ""},
			{"protocol", c.Protocol != ""}, {"topic", c.Topic != ""}, {"alpn", len(c.ALPN) > 0},
			{"headers", len(c.Headers) > 0}, {"token_file", c.TokenFile != ""}, {"compress", c.Compress != ""}} {
			if f.set {
				bad(f.key, "not used by nats uplinks")
			}
		}
	case "mqtt":
		c.validateMQTT(bad)
	case "http":
		c.validateHTTP(bad)
	case "":
		bad("type", "required (nats, mqtt or http)")
	default:
		bad("type", "unknown uplink type %q (want nats, mqtt or http)", c.Type)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		bad("tls", "cert and key go together")
	}
	if c.Batch.MaxJobs < 0 {
		bad("batch.max_jobs", "must not be negative")
	}
	if c.Batch.MaxBytes < 0 {
		bad("batch.max_bytes", "must not be negative")
	}
	if c.Batch.Linger < 0 {
		bad("batch.linger", "must not be negative")
	}
	if c.MaxRate < 0 {
		bad("max_rate", "must not be negative")
	}
	if c.MaxBandwidth < 0 {
		bad("max_bandwidth", "must not be negative")
	}
	if c.Timeout < 0 {
		bad("timeout", "must not be negative")
	}
	if c.AlertAfter < 0 {
		bad("alert_after", "must not be negative")
	}
	return errors.Join(errs...)
}

// publisher sends a batch over one upstream connection.
type publisher interface {
	// start connects; an unreachable server is not an error (offline is
	// normal), a server that answers without the stream is.
	start(ctx context.Context) error
	// publish sends batch and answers one error per job, nil for each job
	// the server acknowledged.
	publish(ctx context.Context, batch []*item) []error
	connected() bool
	close()
}

// sender is a publisher that sends a batch and waits for its
// acknowledgements apart, in order on one connection (nats): the batcher
// sends the next batch while up to maxInFlight batches are awaited.
type sender interface {
	send(batch []*item) (wait func(context.Context) []error)
}

// maxInFlight bounds the batches of a sender awaiting acknowledgements.
const maxInFlight = 4

// item is one job of a handler call waiting for its acknowledgement.
type item struct {
	j       *job.Job
	high    bool       // of a critical or high queue
	ordered bool       // of an ordered queue
	done    chan error // buffered: the batcher never blocks on it
}

// errDown answers jobs offered while the uplink has no connection.
var errDown = errors.New("not connected")

// Uplink is one named upstream connection that queues use as their
// handler: it coalesces concurrent handler calls into batches, paces them
// and answers each call with its own job's acknowledgement. Safe for
// concurrent use; Start starts its one goroutine, Stop ends it.
type Uplink struct {
	cfg   Config
	log   *slog.Logger
	pub   publisher
	high  chan []*item // critical and high queues' calls, taken first
	low   chan []*item
	jobs  *rate.Limiter // nil: no cap
	bytes *rate.Limiter // nil: no cap
	stats stats
	// inflight holds a token per batch awaiting its acknowledgements
	// (sender).
	inflight chan struct{}
	// finished is closed once the last batch sent is answered: a batch
	// is answered after those sent before it (pipeline), so a failure
	// in one holds back an ordered queue's jobs in the next. Owned by
	// the batcher.
	finished chan struct{}

	mu     sync.Mutex
	blocks map[string]block // ordered queues held back; guarded by mu

	startOnce, stopOnce sync.Once
	cancel              context.CancelFunc
	wg                  sync.WaitGroup
	stopped             chan struct{} // closed by Stop
}

// New builds an uplink from a validated cfg; it connects nothing until
// Start.
func New(cfg Config) (*Uplink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("uplinks.%s.%w", cfg.Name, err)
	}
	cfg.Batch.MaxJobs = cmp.Or(cfg.Batch.MaxJobs, DefaultMaxJobs)
	cfg.Batch.MaxBytes = cmp.Or(cfg.Batch.MaxBytes, DefaultMaxBytes)
	cfg.Batch.Linger = cmp.Or(cfg.Batch.Linger, DefaultLinger)
	cfg.Timeout = cmp.Or(cfg.Timeout, DefaultTimeout)
	u := &Uplink{
		cfg:      cfg,
		log:      cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)).With("component", "uplink", "uplink", cfg.Name),
		high:     make(chan []*item),
		low:      make(chan []*item),
		stopped:  make(chan struct{}),
		inflight: make(chan struct{}, maxInFlight),
	}
	u.stats.init(time.Now())
	if cfg.MaxRate > 0 {
		u.jobs = emptyLimiter(cfg.MaxRate, cfg.Batch.MaxJobs)
	}
	if cfg.MaxBandwidth > 0 {
		u.bytes = emptyLimiter(float64(cfg.MaxBandwidth), cfg.Batch.MaxBytes)
	}
	var err error
	switch cfg.Type {
	case "nats":
		u.pub, err = newNATS(cfg, u.log, &u.stats)
	case "mqtt":
		u.pub, err = newMQTT(cfg, u.log, &u.stats)
	case "http":
		u.pub, err = newHTTP(cfg, u.log, &u.stats)
	}
	if err != nil {
		return nil, fmt.Errorf("uplinks.%s.%w", cfg.Name, err)
	}
	return u, nil
}

// emptyLimiter is a limiter at r per second that starts empty, with a
// burst of one batch: a drain after an outage starts at the cap and never
// runs more than one batch above it.
func emptyLimiter(r float64, b int) *rate.Limiter {
	l := rate.NewLimiter(rate.Limit(r), b)
	l.AllowN(time.Now(), b)
	return l
}

// Name is the uplink's key under uplinks:.
func (u *Uplink) Name() string { return u.cfg.Name }

// Start connects and starts the batcher. A server that cannot be reached
// is retried in the background; one that answers without the stream is an
// error naming the uplink and the stream.
func (u *Uplink) Start(ctx context.Context) error {
	var err error
	u.startOnce.Do(func() {
		if err = u.pub.start(ctx); err != nil {
			err = fmt.Errorf("uplinks.%s: %w", u.cfg.Name, err)
			return
		}
		var bg context.Context
		bg, u.cancel = context.WithCancel(context.Background())
		u.wg.Go(func() { u.run(bg) })
	})
	return err
}

// Stop ends the batcher, answering the calls waiting for it, and closes
// the connection. Idempotent; safe before Start. Call it once the engine
// has stopped, so no handler call is running.
func (u *Uplink) Stop() {
	u.stopOnce.Do(func() {
		close(u.stopped)
		if u.cancel != nil {
			u.cancel()
		}
		u.wg.Wait()
		u.pub.close()
	})
}

// outcome maps a job's publish error to its verdict: a link that is down
// or stalled is the target's failure and costs no attempt; a job the
// server refuses is retried as any failure; one too large never fits.
func (u *Uplink) outcome(err error) engine.Outcome {
	if err == nil {
		return engine.Outcome{Verdict: engine.Ack}
	}
	msg := fmt.Sprintf("uplink %s: %v", u.cfg.Name, err)
	var refused *refusedError
	var held *heldBackError
	switch {
	case errors.Is(err, errTooLarge):
		return engine.Outcome{Verdict: engine.Dead, Error: msg}
	case errors.As(err, &refused):
		return engine.Outcome{Verdict: engine.Retry, Error: msg}
	case errors.As(err, &held):
		return engine.Outcome{Verdict: engine.Retry, Error: msg, Unreached: true}
	}
	return engine.Outcome{Verdict: engine.Retry, Error: msg, TargetFailed: true, Unreached: true}
}

// errTooLarge is a job larger than the server takes in one message.
var errTooLarge = errors.New("job larger than the server's maximum payload")

// refusedError is the server's refusal of one job (a JetStream API error):
// the link works, the job counts an attempt.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return "refused: " + e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// run is the batcher: it takes batches, paces and publishes them, and
// answers each job. It owns carry.
func (u *Uplink) run(ctx context.Context) {
	var carry []*item // jobs taken but not yet in a batch, in order
	for {
		batch, next, ok := u.collect(ctx, carry)
		if !ok {
			answer(next, errDown)
			return
		}
		carry = next
		// Calls race each other to the batcher: within a batch, jobs go
		// out in the order they were enqueued.
		slices.SortFunc(batch, func(a, b *item) int { return cmp.Compare(a.j.ID, b.j.ID) })
		if batch = u.holdBack(time.Now(), batch); len(batch) == 0 {
			continue
		}
		first, err := u.runOnce(ctx, batch)
		if err != nil {
			answer(batch, err)
		}
		if first != nil {
			// Critical or high jobs overtook the batch while it waited
			// for the pacer: they go first, the batch right after them.
			carry = append(append(first, batch...), carry...)
		}
	}
}

// answer answers every job of items with err.
func answer(items []*item, err error) {
	for _, it := range items {
		it.done <- err
	}
}

// runOnce paces and publishes one batch and answers its jobs; an error is
// the whole batch's. When critical or high jobs overtake it at the pacer
// (pace), it answers them instead, and the batch is unsent.
func (u *Uplink) runOnce(ctx context.Context, batch []*item) (first []*item, err error) {
	n := 0
	for _, it := range batch {
		n += len(it.j.Payload)
	}
	if first, err := u.pace(ctx, batch, n); first != nil || err != nil {
		return first, err
	}
	if !u.pub.connected() {
		return nil, errDown
	}
	if s, ok := u.pub.(sender); ok {
		return nil, u.pipeline(ctx, s, batch)
	}
	u.finish(batch, u.pub.publish(ctx, batch))
	return nil, nil
}

// finish counts batch, sent with errs, and answers its jobs, holding back
// those of an ordered queue after one that failed (ordered.go).
func (u *Uplink) finish(batch []*item, errs []error) {
	u.afterFailure(time.Now(), batch, errs)
	sent, sentBytes := 0, 0
	for i, it := range batch {
		if errs[i] == nil {
			sent++
			sentBytes += len(it.j.Payload)
		}
	}
	// Counted before the answers, so that an acked job is in the stats.
	u.stats.sent(time.Now(), len(batch), sent, sentBytes)
	for i, it := range batch {
		it.done <- errs[i]
	}
}
