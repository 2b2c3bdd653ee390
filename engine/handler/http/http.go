package httphandler

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// Defaults for the zero values of Config.
const (
	DefaultMethod      = http.MethodPost
	DefaultTimeout     = 30 * time.Second
	DefaultMaxResponse = 4096
)

// MaxRetryAfter caps a Retry-After the server asks for: a misconfigured or
// hostile endpoint must not park jobs for days.
const MaxRetryAfter = time.Hour

const (
	defaultContentType = "application/octet-stream"
	// drainLimit is how much of a body is read, beyond the part kept for the
	// error, so that the connection can be reused.
	drainLimit = 64 << 10
)

// Config configures a Handler. Zero values mean the defaults.
type Config struct {
	// URL is where jobs are sent. Required; http or https.
	URL string
	// Method is the request method. "": POST.
	Method string
	// Headers are added to every request (Authorization, say). They cannot
	// replace the headers the handler sets (Idempotency-Key, Edgeq-*) or
	// the ones net/http owns (Host, Content-Length, ...). A Content-Type
	// here is used for jobs that have none.
	Headers map[string]string
	// Timeout bounds each request, from dialing to reading the body.
	// 0: DefaultTimeout.
	Timeout time.Duration
	// MaxResponse is how many bytes of an error response's body are read
	// for the job's last_error. 0: DefaultMaxResponse.
	MaxResponse int64
	// Client sends the requests. nil: a client of this package's own with
	// dial and TLS timeouts and no proxy (packages do not read the
	// environment; pass a Client with Transport.Proxy set for one). The
	// handler never follows redirects, whatever Client.CheckRedirect says:
	// it uses a shallow copy of Client with its own CheckRedirect.
	Client *http.Client
	// Result is how many bytes of the start of a 2xx response's body are
	// kept as the job's result (Outcome.Result); 0: none are read.
	Result int64
}

// Handler sends jobs to a URL. It is safe for concurrent use.
type Handler struct {
	url         string
	method      string
	header      http.Header // Config.Headers, canonical
	timeout     time.Duration
	maxResponse int64
	result      int64
	client      *http.Client
	now         func() time.Time // for Retry-After dates
}

var _ engine.Handler = (*Handler)(nil)

// errTimeout is the cause of a request's context when its Timeout fires,
// which tells a timeout apart from the caller's cancellation.
var errTimeout = errors.New("http handler timeout")

// New validates cfg. Errors name the Config field.
func New(cfg Config) (*Handler, error) {
	if cfg.URL == "" {
		return nil, errors.New("url: required")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url: invalid URL %q (want http:// or https://)", u.Redacted())
	}
	method := cmp.Or(cfg.Method, DefaultMethod)
	if !validToken(method) {
		return nil, fmt.Errorf("method: %q is not an HTTP method", method)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("timeout: %v must not be negative", cfg.Timeout)
	}
	if cfg.MaxResponse < 0 {
		return nil, fmt.Errorf("max_response: %d must not be negative", cfg.MaxResponse)
	}
	header := make(http.Header, len(cfg.Headers))
	for name, value := range cfg.Headers {
		if !validToken(name) {
			return nil, fmt.Errorf("headers: %q is not a valid header name", name)
		}
		if !validValue(value) {
			return nil, fmt.Errorf("headers.%s: the value contains control characters", name)
		}
		if reserved(name) {
			return nil, fmt.Errorf("headers.%s: set by the handler or by net/http, not configurable", name)
		}
		header.Set(name, value)
	}
	var client http.Client
	if cfg.Client != nil {
		client = *cfg.Client
	} else {
		client = defaultClient()
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Handler{
		url:         u.String(),
		method:      method,
		header:      header,
		timeout:     cmp.Or(cfg.Timeout, DefaultTimeout),
		maxResponse: cmp.Or(cfg.MaxResponse, DefaultMaxResponse),
		result:      cfg.Result,
		client:      &client,
		now:         time.Now,
	}, nil
}

// defaultClient bounds each phase a dead or slow endpoint can stall in; the
// request's own Timeout bounds the whole. Each handler gets its own
// transport, so one endpoint's connections never starve another's.
func defaultClient() http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return http.Client{Transport: &http.Transport{
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 0, // the request's Timeout
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          64,
		// Every request goes to one host; the default of 2 would close the
		// connections of all but two of a queue's concurrent workers.
		MaxIdleConnsPerHost: 32,
	}}
}

// CloseIdleConnections closes the client's idle keep-alive connections (and
// so ends their goroutines); call it at shutdown. Requests in flight are not
// affected. Safe for concurrent use.
func (h *Handler) CloseIdleConnections() { h.client.CloseIdleConnections() }

// Handle sends j and maps the answer to an outcome. It returns by the
// request's Timeout or when ctx is done, having closed the response body.
func (h *Handler) Handle(ctx context.Context, j *job.Job) engine.Outcome {
	ctx, cancel := context.WithTimeoutCause(ctx, h.timeout, errTimeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, h.method, h.url, bytes.NewReader(j.Payload))
	if err != nil { // New checked the URL and method: unexpected
		return engine.Outcome{Verdict: engine.Retry, Error: "build request: " + err.Error()}
	}
	req.Header = h.header.Clone()
	if err := setJobHeaders(req.Header, j); err != nil {
		// The job can never be sent as it is: no retry will help.
		return engine.Outcome{Verdict: engine.Dead, Error: err.Error()}
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return h.failed(ctx, err)
	}
	defer closeBody(resp.Body)

	verdict, targetFailed := classify(resp.StatusCode)
	if verdict == engine.Ack {
		out := engine.Outcome{Verdict: engine.Ack}
		if h.result > 0 {
			// A body cut short by the target still acks: the job was done.
			b, _ := io.ReadAll(io.LimitReader(resp.Body, h.result))
			out.Result = string(b)
		}
		return out
	}
	out := engine.Outcome{Verdict: verdict, TargetFailed: targetFailed, Error: h.errorText(resp)}
	if verdict == engine.Retry {
		out.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), h.now())
	}
	return out
}

// setJobHeaders sets the headers that describe j. Idempotency-Key lets the
// receiver drop a job it has already handled: a job is delivered at least
// once, and again after a timeout that hid a success.
func setJobHeaders(hdr http.Header, j *job.Job) error {
	id := j.ID.String()
	if j.ContentType != "" {
		if !validValue(j.ContentType) {
			return fmt.Errorf("content type %q is not a valid header value", j.ContentType)
		}
		hdr.Set("Content-Type", j.ContentType)
	} else if hdr.Get("Content-Type") == "" {
		hdr.Set("Content-Type", defaultContentType)
	}
	hdr.Set("Idempotency-Key", id)
	hdr.Set("Edgeq-Job-Id", id)
	hdr.Set("Edgeq-Queue", j.Queue)
	hdr.Set("Edgeq-Attempt", strconv.Itoa(j.Attempt))
	if j.TraceParent != "" { // checked at enqueue (job.CheckTrace): valid header values
		hdr.Set("Traceparent", j.TraceParent)
		if j.TraceState != "" {
			hdr.Set("Tracestate", j.TraceState)
		}
	}
	for name, value := range j.Headers {
		if !validToken(name) || !validValue(value) {
			return fmt.Errorf("job header %q cannot be sent over HTTP", name)
		}
		hdr.Set("Edgeq-Header-"+name, value)
	}
	return nil
}

// failed is the outcome of a request that got no response.
func (h *Handler) failed(ctx context.Context, err error) engine.Outcome {
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		if errors.Is(cause, errTimeout) {
			return engine.Outcome{Verdict: engine.Retry, Error: "timeout after " + h.timeout.String(), TargetFailed: true}
		}
		// Shutdown, or the engine's own deadline: not the target's fault.
		return engine.Outcome{Verdict: engine.Retry, Error: "interrupted: " + cause.Error()}
	}
	// net/http's *url.Error names the method and the URL, password redacted.
	return engine.Outcome{Verdict: engine.Retry, Error: err.Error(), TargetFailed: true}
}

// classify maps a status code to a verdict and whether it is the target's
// failure (SPEC 7).
func classify(code int) (v engine.Verdict, targetFailed bool) {
	switch {
	case code >= 200 && code <= 299:
		return engine.Ack, false
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return engine.Retry, true
	case code >= 300 && code <= 499:
		return engine.Dead, false
	default: // 5xx, and codes no server should send
		return engine.Retry, true
	}
}

// errorText reads the start of the body for last_error.
func (h *Handler) errorText(resp *http.Response) string {
	text := "HTTP " + strconv.Itoa(resp.StatusCode)
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		text += fmt.Sprintf(" (redirect to %q not followed)", resp.Header.Get("Location"))
	}
	// A read error (the timeout, a reset) leaves what was read so far.
	b, _ := io.ReadAll(io.LimitReader(resp.Body, h.maxResponse))
	if int64(len(b)) == h.maxResponse {
		b = trimPartialRune(b)
	}
	if s := strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD")); s != "" {
		text += ": " + s
	}
	return text
}

// trimPartialRune drops a UTF-8 sequence that a read limit cut short at the
// end of b, rather than show it as garbage.
func trimPartialRune(b []byte) []byte {
	for i := 1; i < utf8.UTFMax && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			break
		}
	}
	return b
}

// closeBody drains a little of what is left so that the connection can be
// reused, then closes the body; a longer body closes its connection.
func closeBody(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, drainLimit)
	_ = body.Close()
}

// parseRetryAfter parses a Retry-After value, delay-seconds or an HTTP date
// (RFC 9110 10.2.3), relative to now. It returns 0, meaning the queue's
// backoff, for a missing, malformed or past value, and caps at
// MaxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 64)
		if errors.Is(err, strconv.ErrRange) {
			return MaxRetryAfter
		}
		if err != nil {
			return 0
		}
		if secs >= uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now)
	if d <= 0 {
		return 0
	}
	return min(d, MaxRetryAfter)
}

// reserved reports whether a configured header would clash with one the
// handler or net/http sets.
func reserved(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Idempotency-Key", "Host", "Content-Length", "Transfer-Encoding", "Connection", "Trailer", "Te", "Upgrade":
		return true
	}
	return strings.HasPrefix(http.CanonicalHeaderKey(name), "Edgeq-")
}

// validToken reports whether s is an RFC 9110 token: a valid header name
// or method.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validValue reports whether s can be sent as a header value: no control
// characters but tab (net/http refuses the request otherwise).
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
