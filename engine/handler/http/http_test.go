package httphandler

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newServer starts a server on 127.0.0.1 that t's cleanup closes.
func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// mustNew builds a handler whose idle connections are closed at cleanup,
// so goleak sees no connection goroutines.
func mustNew(t *testing.T, cfg Config) *Handler {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(h.CloseIdleConnections)
	return h
}

func testJob() *job.Job {
	return &job.Job{
		ID:          0xabc,
		Queue:       "orders",
		Attempt:     3,
		ContentType: "application/json",
		Headers:     map[string]string{"trace": "t-1", "X-Source": "sensor 7"},
		Payload:     []byte(`{"n":1}`),
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" for success
	}{
		{name: "minimal", cfg: Config{URL: "http://127.0.0.1:1/x"}},
		{name: "all fields", cfg: Config{URL: "https://example.com/hook?a=b", Method: "PUT", Headers: map[string]string{"Authorization": "Bearer x", "content-type": "text/plain"}, Timeout: time.Second, MaxResponse: 10, Client: &http.Client{}}},
		{name: "no url", cfg: Config{}, wantErr: "url: required"},
		{name: "bad url", cfg: Config{URL: "http://[::1"}, wantErr: "url: parse"},
		{name: "other scheme", cfg: Config{URL: "ftp://example.com/x"}, wantErr: `url: invalid URL "ftp://example.com/x"`},
		{name: "no host", cfg: Config{URL: "http:///x"}, wantErr: "url: invalid URL"},
		{name: "relative", cfg: Config{URL: "/hook"}, wantErr: "url: invalid URL"},
		{name: "password redacted", cfg: Config{URL: "ftp://u:secret@example.com/"}, wantErr: `"ftp://u:xxxxx@example.com/"`},
		{name: "bad method", cfg: Config{URL: "http://h/", Method: "GET X"}, wantErr: `method: "GET X" is not an HTTP method`},
		{name: "negative timeout", cfg: Config{URL: "http://h/", Timeout: -1}, wantErr: "timeout: -1ns must not be negative"},
		{name: "negative max response", cfg: Config{URL: "http://h/", MaxResponse: -1}, wantErr: "max_response: -1 must not be negative"},
		{name: "bad header name", cfg: Config{URL: "http://h/", Headers: map[string]string{"a b": "x"}}, wantErr: `headers: "a b" is not a valid header name`},
		{name: "bad header value", cfg: Config{URL: "http://h/", Headers: map[string]string{"A": "x\r\nB: y"}}, wantErr: "headers.A: the value contains control characters"},
		{name: "idempotency key", cfg: Config{URL: "http://h/", Headers: map[string]string{"idempotency-key": "x"}}, wantErr: "headers.idempotency-key: set by the handler"},
		{name: "edgeq header", cfg: Config{URL: "http://h/", Headers: map[string]string{"Edgeq-Queue": "x"}}, wantErr: "headers.Edgeq-Queue: set by the handler"},
		{name: "host", cfg: Config{URL: "http://h/", Headers: map[string]string{"Host": "x"}}, wantErr: "headers.Host: set by the handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || h == nil {
					t.Fatalf("New() = %v, %v; want a handler", h, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New() error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewDoesNotChangeClient(t *testing.T) {
	calls := 0
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { calls++; return nil }}
	h := mustNew(t, Config{URL: "http://127.0.0.1:1/", Client: c})
	if h.client == c {
		t.Fatal("handler uses the caller's client, want a copy")
	}
	if err := c.CheckRedirect(nil, nil); err != nil || calls != 1 {
		t.Errorf("caller's CheckRedirect was replaced")
	}
}

func TestHandleAck(t *testing.T) {
	var got *http.Request
	var gotBody []byte
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = r
		gotBody, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
	})
	h := mustNew(t, Config{URL: srv.URL + "/hook?x=1", Headers: map[string]string{"Authorization": "Bearer tok"}})
	if out := h.Handle(t.Context(), testJob()); out != (engine.Outcome{Verdict: engine.Ack}) {
		t.Fatalf("Handle() = %+v, want Ack", out)
	}
	if got == nil {
		t.Fatal("the server saw no request")
	}
	if got.Method != http.MethodPost || got.URL.Path != "/hook" || got.URL.RawQuery != "x=1" {
		t.Errorf("request = %s %s, want POST /hook?x=1", got.Method, got.URL)
	}
	if string(gotBody) != `{"n":1}` {
		t.Errorf("body = %q, want the payload", gotBody)
	}
	wantHeaders := map[string]string{
		"Content-Type":          "application/json",
		"Idempotency-Key":       "0000000000000abc",
		"Edgeq-Job-Id":          "0000000000000abc",
		"Edgeq-Queue":           "orders",
		"Edgeq-Attempt":         "3",
		"Edgeq-Header-Trace":    "t-1",
		"Edgeq-Header-X-Source": "sensor 7",
		"Authorization":         "Bearer tok",
	}
	for k, want := range wantHeaders {
		if v := got.Header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
}

func TestHandleContentType(t *testing.T) {
	tests := []struct {
		name       string
		jobType    string
		configured string
		want       string
	}{
		{name: "default", want: "application/octet-stream"},
		{name: "configured", configured: "text/csv", want: "text/csv"},
		{name: "job wins", jobType: "application/json", configured: "text/csv", want: "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("Content-Type") })
			cfg := Config{URL: srv.URL, Method: http.MethodPut}
			if tt.configured != "" {
				cfg.Headers = map[string]string{"Content-Type": tt.configured}
			}
			h := mustNew(t, cfg)
			j := testJob()
			j.ContentType = tt.jobType
			if out := h.Handle(t.Context(), j); out.Verdict != engine.Ack {
				t.Fatalf("Handle() = %+v, want Ack", out)
			}
			if got != tt.want {
				t.Errorf("Content-Type = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHandleStatus(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header map[string]string
		body   string
		want   engine.Outcome
	}{
		{name: "200", status: 200, want: engine.Outcome{Verdict: engine.Ack}},
		{name: "204", status: 204, want: engine.Outcome{Verdict: engine.Ack}},
		{name: "400", status: 400, body: "missing field n\n", want: engine.Outcome{Verdict: engine.Dead, Error: "HTTP 400: missing field n"}},
		{name: "404", status: 404, want: engine.Outcome{Verdict: engine.Dead, Error: "HTTP 404"}},
		{name: "408", status: 408, want: engine.Outcome{Verdict: engine.Retry, Error: "HTTP 408", TargetFailed: true}},
		{name: "429 retry after", status: 429, header: map[string]string{"Retry-After": "7"}, body: "slow down", want: engine.Outcome{Verdict: engine.Retry, Error: "HTTP 429: slow down", TargetFailed: true, RetryAfter: 7 * time.Second}},
		{name: "500", status: 500, body: "boom", want: engine.Outcome{Verdict: engine.Retry, Error: "HTTP 500: boom", TargetFailed: true}},
		{name: "503 retry after", status: 503, header: map[string]string{"Retry-After": "120"}, want: engine.Outcome{Verdict: engine.Retry, Error: "HTTP 503", TargetFailed: true, RetryAfter: 2 * time.Minute}},
		{name: "409 ignores retry after", status: 409, header: map[string]string{"Retry-After": "7"}, want: engine.Outcome{Verdict: engine.Dead, Error: "HTTP 409"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			h := mustNew(t, Config{URL: srv.URL})
			if got := h.Handle(t.Context(), testJob()); got != tt.want {
				t.Errorf("Handle() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestHandleRetryThenAck(t *testing.T) {
	var calls atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
		}
	})
	h := mustNew(t, Config{URL: srv.URL})
	want := engine.Outcome{Verdict: engine.Retry, Error: "HTTP 503: warming up", TargetFailed: true}
	if got := h.Handle(t.Context(), testJob()); got != want {
		t.Errorf("first Handle() = %+v, want %+v", got, want)
	}
	if got := h.Handle(t.Context(), testJob()); got != (engine.Outcome{Verdict: engine.Ack}) {
		t.Errorf("second Handle() = %+v, want Ack", got)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
}

func TestHandleRedirectNotFollowed(t *testing.T) {
	var followed atomic.Bool
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			followed.Store(true)
			return
		}
		http.Redirect(w, r, "/moved", http.StatusTemporaryRedirect)
	})
	h := mustNew(t, Config{URL: srv.URL + "/hook"})
	got := h.Handle(t.Context(), testJob())
	if got.Verdict != engine.Dead || got.TargetFailed || !strings.HasPrefix(got.Error, `HTTP 307 (redirect to "/moved" not followed)`) {
		t.Errorf("Handle() = %+v, want Dead with the redirect named", got)
	}
	if followed.Load() {
		t.Error("the redirect was followed")
	}
}

func TestHandleConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	h := mustNew(t, Config{URL: url})
	got := h.Handle(t.Context(), testJob())
	if got.Verdict != engine.Retry || !got.TargetFailed || !strings.Contains(got.Error, "connection refused") {
		t.Errorf("Handle() = %+v, want a Retry with TargetFailed naming the refusal", got)
	}
}

func TestHandleTimeout(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		// Stall until the client gives up; bounded in case it never does.
		// The server notices a client hanging up only once it has read the
		// request body.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	h := mustNew(t, Config{URL: srv.URL, Timeout: 100 * time.Millisecond})
	want := engine.Outcome{Verdict: engine.Retry, Error: "timeout after 100ms", TargetFailed: true}
	if got := h.Handle(t.Context(), testJob()); got != want {
		t.Errorf("Handle() = %+v, want %+v", got, want)
	}
}

// A body that stalls after the headers is bounded by the same timeout.
func TestHandleTimeoutReadingBody(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	h := mustNew(t, Config{URL: srv.URL, Timeout: 200 * time.Millisecond})
	want := engine.Outcome{Verdict: engine.Retry, Error: "HTTP 502: partial", TargetFailed: true}
	if got := h.Handle(t.Context(), testJob()); got != want {
		t.Errorf("Handle() = %+v, want %+v", got, want)
	}
}

func TestHandleCancelled(t *testing.T) {
	srv := newServer(t, func(http.ResponseWriter, *http.Request) {})
	h := mustNew(t, Config{URL: srv.URL})
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(errors.New("shutting down"))
	want := engine.Outcome{Verdict: engine.Retry, Error: "interrupted: shutting down"}
	if got := h.Handle(ctx, testJob()); got != want {
		t.Errorf("Handle() = %+v, want %+v", got, want)
	}
}

func TestHandleHugeResponse(t *testing.T) {
	const limit = 256 << 20
	var written atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		chunk := []byte(strings.Repeat("e", 64<<10))
		for written.Load() < limit {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	h := mustNew(t, Config{URL: srv.URL, MaxResponse: 100})
	got := h.Handle(t.Context(), testJob())
	want := engine.Outcome{Verdict: engine.Retry, Error: "HTTP 500: " + strings.Repeat("e", 100), TargetFailed: true}
	if got != want {
		t.Errorf("Handle() = %.80v..., want %.80v...", got, want)
	}
	srv.Close() // waits for the server's handler, which fails once the client hung up
	if n := written.Load(); n >= limit {
		t.Errorf("the server wrote all %d bytes: the client read the whole body", n)
	}
}

// Small error bodies are drained so that one connection serves every job.
func TestHandleReusesConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, strings.Repeat("busy ", 1000), http.StatusServiceUnavailable) // longer than MaxResponse
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	h := mustNew(t, Config{URL: srv.URL, MaxResponse: 16})
	for range 5 {
		if got := h.Handle(t.Context(), testJob()); got.Verdict != engine.Retry || got.Error != "HTTP 503: busy busy busy b" {
			t.Fatalf("Handle() = %+v, want a Retry with 16 bytes of the body", got)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("server saw %d connections for 5 sequential jobs, want 1", n)
	}
}

func TestHandleConcurrent(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("Idempotency-Key")] = true
		mu.Unlock()
	})
	h := mustNew(t, Config{URL: srv.URL})
	var wg sync.WaitGroup
	outs := make([]engine.Outcome, 16)
	for i := range outs {
		wg.Go(func() {
			j := testJob()
			j.ID = job.ID(i + 1)
			outs[i] = h.Handle(t.Context(), j)
		})
	}
	wg.Wait()
	for i, out := range outs {
		if out.Verdict != engine.Ack {
			t.Errorf("job %d: Handle() = %+v, want Ack", i+1, out)
		}
	}
	if len(seen) != len(outs) {
		t.Errorf("server saw %d distinct idempotency keys, want %d", len(seen), len(outs))
	}
}

func TestHandleBadJobHeader(t *testing.T) {
	var calls atomic.Int32
	srv := newServer(t, func(http.ResponseWriter, *http.Request) { calls.Add(1) })
	h := mustNew(t, Config{URL: srv.URL})
	tests := map[string]func(j *job.Job){
		"name":         func(j *job.Job) { j.Headers = map[string]string{"a b": "x"} },
		"value":        func(j *job.Job) { j.Headers = map[string]string{"a": "x\ny"} },
		"content type": func(j *job.Job) { j.ContentType = "text/plain\r\nX: y" },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			j := testJob()
			mutate(j)
			if got := h.Handle(t.Context(), j); got.Verdict != engine.Dead || got.TargetFailed || got.Error == "" {
				t.Errorf("Handle() = %+v, want Dead with an error", got)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("server saw %d requests, want none", n)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		code         int
		want         engine.Verdict
		targetFailed bool
	}{
		{200, engine.Ack, false}, {201, engine.Ack, false}, {299, engine.Ack, false},
		{301, engine.Dead, false}, {302, engine.Dead, false}, {304, engine.Dead, false}, {308, engine.Dead, false},
		{400, engine.Dead, false}, {401, engine.Dead, false}, {404, engine.Dead, false}, {422, engine.Dead, false}, {499, engine.Dead, false},
		{408, engine.Retry, true}, {429, engine.Retry, true},
		{500, engine.Retry, true}, {502, engine.Retry, true}, {503, engine.Retry, true}, {599, engine.Retry, true},
		{101, engine.Retry, true}, {600, engine.Retry, true},
	}
	for _, tt := range tests {
		v, tf := classify(tt.code)
		if v != tt.want || tf != tt.targetFailed {
			t.Errorf("classify(%d) = %v, %v; want %v, %v", tt.code, v, tf, tt.want, tt.targetFailed)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Duration
	}{
		{name: "empty", in: "", want: 0},
		{name: "seconds", in: "7", want: 7 * time.Second},
		{name: "spaces", in: " 30 ", want: 30 * time.Second},
		{name: "zero", in: "0", want: 0},
		{name: "capped", in: "86400", want: MaxRetryAfter},
		{name: "just under the cap", in: "3599", want: 3599 * time.Second},
		{name: "overflow", in: "99999999999999999999999", want: MaxRetryAfter},
		{name: "negative", in: "-5", want: 0},
		{name: "fraction", in: "1.5", want: 0},
		{name: "garbage", in: "soon", want: 0},
		{name: "date", in: now.Add(90 * time.Second).Format(http.TimeFormat), want: 90 * time.Second},
		{name: "rfc 850 date", in: now.Add(time.Minute).Format(time.RFC850), want: time.Minute},
		{name: "past date", in: now.Add(-time.Hour).Format(http.TimeFormat), want: 0},
		{name: "far date", in: now.Add(48 * time.Hour).Format(http.TimeFormat), want: MaxRetryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestTrimPartialRune(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"abc", "abc"},
		{"ab\u00e9", "ab\u00e9"},
		{"ab\xc3", "ab"},         // first byte of é
		{"ab\xe2\x82", "ab"},     // two of €'s three
		{"ab\xf0\x9f\x98", "ab"}, // three of 😀's four
		{"ab\xe2\x82\xac", "ab\u20ac"},
	}
	for _, tt := range tests {
		if got := string(trimPartialRune([]byte(tt.in))); got != tt.want {
			t.Errorf("trimPartialRune(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestHandleResult: with Result set, a 2xx body's first Result bytes are
// the outcome's result; without it, none is read.
func TestHandleResult(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"stored":"s3://b/k"}`)
	})
	for _, tc := range []struct {
		result int64
		want   string
	}{{0, ""}, {8, `{"stored`}, {1 << 10, `{"stored":"s3://b/k"}`}} {
		h := mustNew(t, Config{URL: srv.URL, Result: tc.result})
		if out := h.Handle(t.Context(), testJob()); out != (engine.Outcome{Verdict: engine.Ack, Result: tc.want}) {
			t.Errorf("Result %d: Handle() = %+v, want Ack with result %q", tc.result, out, tc.want)
		}
	}
}

// TestHandleTraceContext: a job's W3C trace context goes out as the
// traceparent and tracestate headers; a job without one sends neither.
func TestHandleTraceContext(t *testing.T) {
	var got []http.Header
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { got = append(got, r.Header.Clone()) })
	h := mustNew(t, Config{URL: srv.URL})
	j := testJob()
	j.TraceParent, j.TraceState = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "rojo=1"
	h.Handle(t.Context(), j)
	h.Handle(t.Context(), testJob())
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2", len(got))
	}
	if got[0].Get("Traceparent") != j.TraceParent || got[0].Get("Tracestate") != "rojo=1" {
		t.Errorf("traced job's headers: %q %q", got[0].Get("Traceparent"), got[0].Get("Tracestate"))
	}
	if _, ok := got[1]["Traceparent"]; ok {
		t.Errorf("a job without a trace context sent traceparent %q", got[1].Get("Traceparent"))
	}
}
