package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/wire"
)

// Client speaks the HTTP API. It is safe for concurrent use. Its methods
// return *APIError for answers that are not 2xx; other errors are transport
// or decoding errors. No method has a timeout of its own: use ctx (a /lease
// long poll lasts up to its wait).
type Client struct {
	base string // without a trailing slash
	auth string // "Bearer TOKEN", or "" without a token
	hc   *http.Client
	co   *coalescer // nil unless Coalesce turned it on
}

// NewClient returns a client of the daemon at baseURL ("http://127.0.0.1:7070").
// token "" sends no Authorization. hc nil means a client of its own, with
// keep-alive tuned for many concurrent requests to one host and redirects
// not followed (the API never redirects; a redirect means a wrong path).
func NewClient(baseURL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				MaxIdleConns:          1024,
				MaxIdleConnsPerHost:   1024,
				IdleConnTimeout:       90 * time.Second,
				TLSHandshakeTimeout:   10 * time.Second,
				ExpectContinueTimeout: time.Second,
				ForceAttemptHTTP2:     true,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), hc: hc}
	if token != "" {
		c.auth = "Bearer " + token
	}
	return c
}

// CloseIdleConnections closes the client's idle keep-alive connections.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// APIError is a non-2xx answer of the API.
type APIError struct {
	Status     int           // HTTP status
	Code       string        // "queue_full", "lease_lost"... (SPEC §5)
	Message    string        // human-readable, names the field for invalid_argument
	RetryAfter time.Duration // from retry_after_s or Retry-After; 0 when absent
}

// Error returns "CODE: MESSAGE (HTTP n)".
func (e *APIError) Error() string {
	return fmt.Sprintf("%s: %s (HTTP %d)", e.Code, e.Message, e.Status)
}

// Temporary reports whether the refusal is for now (429 or 503): the CLI
// exits 75 on these so that scripts retry.
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable
}

// Unwrap returns the engine/job sentinel of the code (job.ErrLeaseLost for
// lease_lost...), so that errors.Is works across the wire; nil for codes
// without one.
func (e *APIError) Unwrap() error { return sentinelForCode(e.Code) }

// Enqueue enqueues one job; the answer is the same for a duplicate key
// (Duplicate set, the first job's ID). With Coalesce, concurrent calls for
// a queue share batch requests.
func (c *Client) Enqueue(ctx context.Context, queue string, payload []byte, o EnqueueOptions) (EnqueueResult, error) {
	if c.co != nil && coalescible(payload, &o) {
		if _, err := queuePath(queue, ""); err != nil {
			return EnqueueResult{}, err
		}
		return c.co.enqueue(ctx, queue, payload, o)
	}
	return c.enqueueOne(ctx, queue, payload, o)
}

// enqueueOne enqueues one job in a request of its own.
func (c *Client) enqueueOne(ctx context.Context, queue string, payload []byte, o EnqueueOptions) (EnqueueResult, error) {
	var res EnqueueResult
	p, err := queuePath(queue, "/jobs")
	if err != nil {
		return res, err
	}
	hdr := func(h http.Header) {
		h.Set("Content-Type", cmp.Or(o.ContentType, "application/octet-stream"))
		for k, v := range o.Headers {
			h.Set("Edgeq-Header-"+k, v)
		}
		if o.TraceParent != "" {
			h.Set("Traceparent", o.TraceParent)
		}
		if o.TraceState != "" {
			h.Set("Tracestate", o.TraceState)
		}
	}
	err = c.do(ctx, http.MethodPost, p, enqueueQuery(&o), bytes.NewReader(payload), hdr, &res)
	return res, err
}

// enqueueQuery is the query string of an enqueue with options o.
func enqueueQuery(o *EnqueueOptions) url.Values {
	if o.Key == "" && o.KeyMode == "" && o.Group == "" && o.Delay == 0 && o.RunAt.IsZero() && o.MaxAttempts == 0 && o.TTR == 0 && o.ExpiresIn == 0 && o.ExpiresAt.IsZero() && o.OnSuccess == nil {
		return nil // the common case of bench and scripts: no map
	}
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("key", o.Key)
	set("key_mode", o.KeyMode)
	set("group", o.Group)
	set("delay", durParam(o.Delay))
	set("run_at", timeParam(o.RunAt))
	if o.MaxAttempts != 0 {
		q.Set("max_attempts", strconv.Itoa(o.MaxAttempts))
	}
	set("ttr", durParam(o.TTR))
	set("expires_in", durParam(o.ExpiresIn))
	set("expires_at", timeParam(o.ExpiresAt))
	if f := o.OnSuccess; f != nil {
		set("on_success", f.Queue)
		set("on_success_payload", string(f.Payload))
	}
	return q
}

func durParam(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func timeParam(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// EnqueueBatch enqueues all lines or none; results are in line order.
func (c *Client) EnqueueBatch(ctx context.Context, queue string, lines []BatchLine) ([]BatchResult, error) {
	var body bytes.Buffer
	for i, l := range lines {
		b, err := l.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("batch line %d: %w", i+1, err)
		}
		body.Write(b)
		body.WriteByte('\n')
	}
	return c.postBatch(ctx, queue, &body)
}

// postBatch posts an NDJSON batch body.
func (c *Client) postBatch(ctx context.Context, queue string, body *bytes.Buffer) ([]BatchResult, error) {
	p, err := queuePath(queue, "/batch")
	if err != nil {
		return nil, err
	}
	var res BatchResponse
	hdr := func(h http.Header) { h.Set("Content-Type", "application/x-ndjson") }
	err = c.do(ctx, http.MethodPost, p, nil, body, hdr, &res)
	return res.Jobs, err
}

// Lease leases up to max jobs (0: 1), waiting up to wait for the first one;
// ttr 0 is the queue's. It answers an empty list when none came in time.
func (c *Client) Lease(ctx context.Context, queue string, max int, wait, ttr time.Duration) ([]Job, error) {
	p, err := queuePath(queue, "/lease")
	if err != nil {
		return nil, err
	}
	var res JobList
	err = c.do(ctx, http.MethodPost, p, leaseQuery(max, wait, ttr), nil, nil, &res)
	return res.Jobs, err
}

// leaseQuery is the query of a lease request; zero values are left out.
func leaseQuery(max int, wait, ttr time.Duration) url.Values {
	q := url.Values{}
	if max != 0 {
		q.Set("max", strconv.Itoa(max))
	}
	if wait != 0 {
		q.Set("wait", wait.String())
	}
	if ttr != 0 {
		q.Set("ttr", ttr.String())
	}
	return q
}

// Ack marks a leased job done. With Coalesce, concurrent calls share
// POST /v1/acks requests, each answered with its own ack's answer.
func (c *Client) Ack(ctx context.Context, id, lease string) error {
	if c.co != nil && lease != "" { // without a lease, the daemon's own refusal
		if _, err := job.ParseID(id); err != nil {
			return err
		}
		return c.co.ack(ctx, id, lease)
	}
	return c.jobCall(ctx, http.MethodPost, id, "/ack", url.Values{"lease": {lease}}, nil)
}

// AckResult marks a leased job done with its result, which the daemon
// keeps when the job's queue retains done jobs (retain_done): sent as
// "result" when it is valid JSON, else as "result_b64". It is never
// coalesced.
func (c *Client) AckResult(ctx context.Context, id, lease string, result []byte) error {
	if _, err := job.ParseID(id); err != nil {
		return err
	}
	var body AckBody
	body.Result, body.ResultB64 = wire.ResultFields(result)
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("ack %s: %w", id, err)
	}
	hdr := func(h http.Header) { h.Set("Content-Type", "application/json") }
	return c.do(ctx, http.MethodPost, "/v1/jobs/"+id+"/ack", url.Values{"lease": {lease}}, bytes.NewReader(b), hdr, nil)
}

// Nack sends a leased job back for a retry after delay, as the API's
// delay says: 0 makes it ready now, engine.NackBackoff waits for the
// queue's backoff. It answers the state the job went to ("delayed",
// "ready" or "dead" once its attempts are spent).
func (c *Client) Nack(ctx context.Context, id, lease string, delay time.Duration, reason string) (string, error) {
	q := url.Values{"lease": {lease}}
	if delay != engine.NackBackoff {
		q.Set("delay", delay.String())
	}
	if reason != "" {
		q.Set("error", reason)
	}
	var res StateResult
	err := c.jobCall(ctx, http.MethodPost, id, "/nack", q, &res)
	return res.State, err
}

// Fail sends a leased job straight to the dead-letter set.
func (c *Client) Fail(ctx context.Context, id, lease, reason string) error {
	q := url.Values{"lease": {lease}}
	if reason != "" {
		q.Set("error", reason)
	}
	return c.jobCall(ctx, http.MethodPost, id, "/fail", q, nil)
}

// Extend renews a lease for ttr (0: the lease's own TTR, the one it was
// leased with or last extended by) and answers its new expiry.
func (c *Client) Extend(ctx context.Context, id, lease string, ttr time.Duration) (time.Time, error) {
	q := url.Values{"lease": {lease}}
	if ttr != 0 {
		q.Set("ttr", ttr.String())
	}
	var res ExtendResult
	err := c.jobCall(ctx, http.MethodPost, id, "/extend", q, &res)
	return res.ExpiresAt, err
}

// Job shows a job with its payload.
func (c *Client) Job(ctx context.Context, id string) (Job, error) {
	var res Job
	err := c.jobCall(ctx, http.MethodGet, id, "", nil, &res)
	return res, err
}

// Cancel deletes a job that is not leased.
func (c *Client) Cancel(ctx context.Context, id string) error {
	return c.jobCall(ctx, http.MethodDelete, id, "", nil, nil)
}

// RetryDead moves one dead job back to ready, its attempts reset
// (POST /v1/jobs/{id}/retry; 409 conflict when it is not dead).
func (c *Client) RetryDead(ctx context.Context, id string) error {
	return c.jobCall(ctx, http.MethodPost, id, "/retry", nil, nil)
}

func (c *Client) jobCall(ctx context.Context, method, id, suffix string, q url.Values, out any) error {
	if _, err := job.ParseID(id); err != nil {
		return err
	}
	return c.do(ctx, method, "/v1/jobs/"+id+suffix, q, nil, nil, out)
}

// Healthz answers nil while the daemon serves.
func (c *Client) Healthz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil, nil)
}

// Readyz answers nil while the daemon accepts jobs, else the *APIError
// saying why not.
func (c *Client) Readyz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil, nil)
}

func (c *Client) queueCall(ctx context.Context, method, queue, suffix string, q url.Values, out any) error {
	p, err := queuePath(queue, suffix)
	if err != nil {
		return err
	}
	return c.do(ctx, method, p, q, nil, nil, out)
}

// queuePath builds /v1/queues/{queue}{suffix}. Names that the path would
// lose ("", ".", "..") are refused here; the server judges the rest.
func queuePath(queue, suffix string) (string, error) {
	if queue == "" || queue == "." || queue == ".." {
		return "", fmt.Errorf("%w: %q", job.ErrInvalidQueue, queue)
	}
	return "/v1/queues/" + url.PathEscape(queue) + suffix, nil
}

// do sends one request and decodes a 2xx answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.Reader, hdr func(http.Header), out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	if hdr != nil {
		hdr(req.Header)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err // *url.Error names the method and URL
	}
	defer func() {
		// Drain a little so that the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return readAPIError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// readAPIError builds the APIError of a non-2xx answer, also from one that
// did not come from edgeq (a proxy's HTML page).
func readAPIError(resp *http.Response) error {
	e := &APIError{Status: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var er ErrorResponse
	if json.Unmarshal(body, &er) == nil && er.Error.Code != "" {
		e.Code, e.Message = er.Error.Code, er.Error.Message
		e.RetryAfter = time.Duration(er.Error.RetryAfterS) * time.Second
	} else {
		e.Code = strings.ReplaceAll(strings.ToLower(http.StatusText(resp.StatusCode)), " ", "_")
		if len(body) > 200 {
			body = body[:200]
		}
		e.Message = strings.TrimSpace(string(body))
	}
	if e.RetryAfter == 0 {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
	}
	return e
}

// Acks acks many leased jobs in one request (POST /v1/acks, at most
// 1000): one commit on the daemon for all. It answers one error per ack,
// in order: nil when acked, else the *APIError a single Ack of that job
// would have answered (lease_lost, not_found). Its own error is the whole
// request's: a refusal of it, or a transport error, and then no answers.
func (c *Client) Acks(ctx context.Context, acks []AckItem) ([]error, error) {
	if len(acks) == 0 {
		return nil, fmt.Errorf("%w: acks: none", job.ErrInvalidArgument)
	}
	body, err := json.Marshal(AcksRequest{Acks: acks})
	if err != nil {
		return nil, err
	}
	var res AcksResponse
	hdr := func(h http.Header) { h.Set("Content-Type", "application/json") }
	if err := c.do(ctx, http.MethodPost, "/v1/acks", nil, bytes.NewReader(body), hdr, &res); err != nil {
		return nil, err
	}
	if len(res.Acks) != len(acks) {
		return nil, fmt.Errorf("POST /v1/acks: %d answers to %d acks", len(res.Acks), len(acks))
	}
	return ackErrors(res.Acks), nil
}

// statusForCode is the HTTP status a single request answers with the
// error e (errorTable); 500 for a code it does not know.
func statusForCode(e *ErrorBody) int {
	if e != nil {
		for _, t := range errorTable {
			if t.code == e.Code {
				return t.status
			}
		}
	}
	return http.StatusInternalServerError
}
