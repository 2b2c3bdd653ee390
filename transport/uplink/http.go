package uplink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Headers of an http uplink's request besides the configured ones.
const (
	// HeaderBatch names the batch: its first job's id and its job count.
	// A crash mid-batch may send the same jobs again, under another name
	// when the batch came out differently: collectors dedupe by job id.
	HeaderBatch = "Edgeq-Batch"
	// ContentTypeNDJSON is the body's type: one JSON object per job.
	ContentTypeNDJSON = "application/x-ndjson"
)

// maxAnswer bounds the part of a collector's answer that is read.
const maxAnswer = 1 << 20

// maxRetryAfter bounds the wait a collector's Retry-After asks for.
const maxRetryAfter = 10 * time.Minute

// httpPub posts batches to a collector as NDJSON. There is no connection
// to keep: the uplink counts as down from a request that did not reach
// the collector (a connection error, a timeout, 408, 429, 502, 503, 504)
// until one does, and sends nothing before the wait that failure set
// (Retry-After, else the redial backoff) is over.
type httpPub struct {
	cfg    Config
	log    *slog.Logger
	stats  *stats
	client *http.Client
	header http.Header // the configured headers and the token

	mu       sync.Mutex
	down     bool      // guarded by mu
	failures int       // guarded by mu: requests in a row that did not reach
	retryAt  time.Time // guarded by mu: while down, no request before it
}

// validateHTTP checks the keys of an http uplink.
func (c Config) validateHTTP(bad func(key, format string, args ...any)) {
	if c.URL == "" {
		bad("url", "required for http uplinks")
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("url", "%q: want an http:// or https:// URL", c.URL)
	}
	if err := CheckEncoding(c.Compress); err != nil {
		bad("compress", "%v", err)
	}
	for _, f := range []struct {
		key string
		set bool
	}{{"stream", c.Stream != ""}, {"subject", c.Subject != ""}, {"creds_file", c.CredsFile != ""},
		{"client_id", c.ClientID != ""}, {"username", c.Username != ""}, {"password_file", c.PasswordFile != ""},
		{"protocol", c.Protocol != ""}, {"topic", c.Topic != ""}, {"alpn", len(c.ALPN) > 0}} {
		if f.set {
			bad(f.key, "not used by http uplinks")
		}
	}
}

// newHTTP builds the client; it reads the token and TLS files, and an
// error names the key of the one it cannot use.
func newHTTP(cfg Config, log *slog.Logger, st *stats) (*httpPub, error) {
	p := &httpPub{cfg: cfg, log: log, stats: st, header: http.Header{}}
	for k, v := range cfg.Headers {
		p.header.Set(k, v)
	}
	if cfg.TokenFile != "" {
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("token_file: %w", err)
		}
		token := strings.TrimSpace(string(b))
		if token == "" {
			return nil, fmt.Errorf("token_file: %s is empty", cfg.TokenFile)
		}
		p.header.Set("Authorization", "Bearer "+token)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.TLS != (TLSFiles{}) {
		tc, err := clientTLS(cfg.TLS, nil)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
	}
	tr.MaxIdleConnsPerHost = 2
	p.client = &http.Client{Transport: tr, Timeout: cfg.Timeout}
	return p, nil
}

func (p *httpPub) start(context.Context) error {
	p.stats.up()
	return nil
}

func (p *httpPub) connected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.down || !time.Now().Before(p.retryAt)
}

func (p *httpPub) close() { p.client.CloseIdleConnections() }

// publish posts batch as one request and answers each job from the
// collector's answer.
func (p *httpPub) publish(ctx context.Context, batch []*item) []error {
	errs := make([]error, len(batch))
	fill := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	body, err := ndjson(batch)
	if err != nil {
		return fill(&refusedError{err: err})
	}
	wire, err := Compress(p.cfg.Compress, nil, body)
	if err != nil {
		return fill(&refusedError{err: err})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.URL, bytes.NewReader(wire))
	if err != nil {
		return fill(&refusedError{err: err})
	}
	for k, v := range p.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", ContentTypeNDJSON)
	if p.cfg.Compress != "" {
		req.Header.Set("Content-Encoding", p.cfg.Compress)
	}
	req.Header.Set(HeaderBatch, fmt.Sprintf("%s-%d", batch[0].j.ID, len(batch)))
	resp, err := p.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fill(errDown)
		}
		// A stalled or broken link: drop the idle connections so that the
		// next try dials afresh.
		p.client.CloseIdleConnections()
		return fill(p.unreached(fmt.Errorf("post: %w", err), 0))
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	status := fmt.Errorf("collector answered %s", resp.Status)
	switch code := resp.StatusCode; {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests,
		code == http.StatusBadGateway, code == http.StatusServiceUnavailable, code == http.StatusGatewayTimeout:
		return fill(p.unreached(status, retryAfter(resp.Header.Get("Retry-After"), time.Now())))
	case code < 200 || code > 299:
		p.reached(len(body), len(wire))
		return fill(&refusedError{err: status})
	}
	p.reached(len(body), len(wire))
	var partial struct {
		Failed []string `json:"failed"`
	}
	if json.Unmarshal(answer, &partial) != nil || len(partial.Failed) == 0 {
		return errs
	}
	failed := make(map[string]bool, len(partial.Failed))
	for _, id := range partial.Failed {
		failed[id] = true
	}
	for i, it := range batch {
		if failed[it.j.ID.String()] {
			errs[i] = &refusedError{err: fmt.Errorf("collector answered %d and listed the job as failed", resp.StatusCode)}
		}
	}
	return errs
}

// unreached marks the collector unreached until the wait (the backoff when
// 0) is over, and answers err as every job's error: no attempt spent.
func (p *httpPub) unreached(err error, wait time.Duration) error {
	now := time.Now()
	p.mu.Lock()
	was := p.down
	p.down = true
	p.failures++
	if wait <= 0 {
		wait = reconnectDelay(p.failures)
	}
	p.retryAt = now.Add(wait)
	p.mu.Unlock()
	p.stats.down(now)
	if !was {
		p.log.Warn("uplink down", "err", err, "retry_in", wait)
	} else {
		p.log.Debug("uplink still down", "err", err, "retry_in", wait)
	}
	return err
}

// reached records a request the collector answered, with a body of raw
// bytes sent as wire bytes.
func (p *httpPub) reached(raw, wire int) {
	p.stats.compressed(raw, wire)
	p.mu.Lock()
	was := p.down
	p.down, p.failures = false, 0
	p.mu.Unlock()
	if was {
		p.stats.reconnects.Add(1)
		p.stats.up()
		p.log.Info("uplink reachable again")
	}
}

// retryAfter parses a Retry-After value (seconds or an HTTP date) at now;
// 0 when absent or unreadable, at most maxRetryAfter.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// wireLine is one job in an http uplink's NDJSON body. A payload that is
// JSON by its content type (and valid) is inline in payload, any other in
// payload_b64 (standard base64); an empty payload has neither.
type wireLine struct {
	ID          string            `json:"id"`
	Queue       string            `json:"queue"`
	Headers     map[string]string `json:"headers,omitempty"`
	ContentType string            `json:"content_type,omitempty"`
	Payload     json.RawMessage   `json:"payload,omitempty"`
	PayloadB64  []byte            `json:"payload_b64,omitempty"`
}

// ndjson encodes batch as one line per job.
func ndjson(batch []*item) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, it := range batch {
		j := it.j
		l := wireLine{ID: j.ID.String(), Queue: j.Queue, Headers: j.Headers, ContentType: j.ContentType}
		if isJSON(j.ContentType) && json.Valid(j.Payload) {
			l.Payload = j.Payload
		} else {
			l.PayloadB64 = j.Payload
		}
		if err := enc.Encode(l); err != nil {
			return nil, fmt.Errorf("encode job %s: %w", j.ID, err)
		}
	}
	return buf.Bytes(), nil
}

// isJSON tells a JSON media type: application/json or any +json.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}
