package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// chunked hides a body's length so that it is sent chunked.
func chunked(s string) io.Reader { return io.MultiReader(strings.NewReader(s)) }

func TestEnqueue(t *testing.T) {
	ts := mustStartServer(t, Config{})
	r := ts.do(t, "POST", "/v1/queues/orders/jobs?key=k1&delay=5s&max_attempts=3&ttr=30s&expires_in=1h",
		strings.NewReader("hello"),
		"Content-Type", "text/plain; charset=utf-8",
		"Edgeq-Header-Trace-Id", "abc",
		"edgeq-header-TENANT", "t1",
		"X-Other", "ignored")
	r.wantStatus(t, http.StatusCreated)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	wantKeys(t, r.body, "id", "queue", "state", "durable", "duplicate")
	var res EnqueueResult
	r.decode(t, &res)
	want := EnqueueResult{ID: "0000000000000001", Queue: "orders", State: "delayed", Durable: true}
	if res != want {
		t.Errorf("answer = %+v, want %+v", res, want)
	}
	news, _ := ts.eng.received()
	if len(news) != 1 {
		t.Fatalf("engine got %d jobs, want 1", len(news))
	}
	n := news[0]
	if string(n.Payload) != "hello" || n.ContentType != "text/plain; charset=utf-8" || n.Queue != "orders" {
		t.Errorf("job = %q %q %q", n.Payload, n.ContentType, n.Queue)
	}
	if n.Key != "k1" || n.Delay != 5*time.Second || n.MaxAttempts != 3 || n.TTR != 30*time.Second || n.ExpiresIn != time.Hour {
		t.Errorf("options = %+v", n)
	}
	if want := map[string]string{"trace-id": "abc", "tenant": "t1"}; !maps.Equal(n.Headers, want) {
		t.Errorf("headers = %v, want %v", n.Headers, want)
	}

	t.Run("duplicate", func(t *testing.T) {
		r := ts.do(t, "POST", "/v1/queues/orders/jobs?key=k1", strings.NewReader("again"))
		r.wantStatus(t, http.StatusOK)
		var res EnqueueResult
		r.decode(t, &res)
		if !res.Duplicate || res.ID != "0000000000000001" {
			t.Errorf("answer = %+v, want the first id with duplicate", res)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		r := ts.do(t, "POST", "/v1/queues/orders/jobs?run_at=2030-01-02T03:04:05%2B02:00&expires_at=2031-01-01T00:00:00Z", nil)
		r.wantStatus(t, http.StatusCreated)
		news, _ := ts.eng.received()
		n := news[len(news)-1]
		if n.ContentType != "application/octet-stream" || len(n.Payload) != 0 || n.Headers != nil {
			t.Errorf("job = %+v", n)
		}
		if want := time.Date(2030, 1, 2, 1, 4, 5, 0, time.UTC); !n.RunAt.Equal(want) {
			t.Errorf("run_at = %v, want %v", n.RunAt, want)
		}
		if want := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC); !n.ExpiresAt.Equal(want) {
			t.Errorf("expires_at = %v, want %v", n.ExpiresAt, want)
		}
	})
}

func TestEnqueueBadArguments(t *testing.T) {
	ts := mustStartServer(t, Config{})
	for _, tc := range []struct{ query, field string }{
		{"delay=abc", "delay"},
		{"delay=-1s", "delay"},
		{"run_at=tomorrow", "run_at"},
		{"run_at=2025-01-01", "run_at"},
		{"delay=1s&run_at=2025-01-01T00:00:00Z", "delay"},
		{"max_attempts=x", "max_attempts"},
		{"max_attempts=-2", "max_attempts"},
		{"ttr=1parsec", "ttr"},
		{"expires_in=soon", "expires_in"},
		{"expires_at=never", "expires_at"},
		{"dealy=5s", "dealy"},
		{"key=%zz", "key"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			r := ts.do(t, "POST", "/v1/queues/q/jobs?"+tc.query, strings.NewReader("x"))
			r.wantError(t, http.StatusBadRequest, "invalid_argument", tc.field+":", 0)
		})
	}
	t.Run("empty header name", func(t *testing.T) {
		r := ts.do(t, "POST", "/v1/queues/q/jobs", strings.NewReader("x"), "Edgeq-Header-", "v")
		r.wantError(t, http.StatusBadRequest, "invalid_argument", "Edgeq-Header-", 0)
	})
	if news, _ := ts.eng.received(); len(news) != 0 {
		t.Errorf("engine got %d jobs from refused requests", len(news))
	}
}

func TestEnqueueInvalidQueue(t *testing.T) {
	ts := mustStartServer(t, Config{})
	for _, q := range []string{"Orders", "a%20b", "-x", strings.Repeat("a", 65)} {
		r := ts.do(t, "POST", "/v1/queues/"+q+"/jobs", strings.NewReader("x"))
		r.wantError(t, http.StatusBadRequest, "invalid_queue", "must match", 0)
	}
}

func TestEnqueuePayloadLimit(t *testing.T) {
	const max = 16
	ts := mustStartServer(t, Config{MaxPayload: max})
	exact, over := strings.Repeat("a", max), strings.Repeat("b", max+1)
	ts.do(t, "POST", "/v1/queues/q/jobs", strings.NewReader(exact)).wantStatus(t, http.StatusCreated)
	ts.do(t, "POST", "/v1/queues/q/jobs", chunked(exact)).wantStatus(t, http.StatusCreated)
	ts.do(t, "POST", "/v1/queues/q/jobs", strings.NewReader(over)).
		wantError(t, http.StatusRequestEntityTooLarge, "payload_too_large", "17 bytes, above max_payload 16", 0)
	ts.do(t, "POST", "/v1/queues/q/jobs", chunked(over)).
		wantError(t, http.StatusRequestEntityTooLarge, "payload_too_large", "limit of 16 bytes", 0)
	news, _ := ts.eng.received()
	if len(news) != 2 || string(news[0].Payload) != exact || string(news[1].Payload) != exact {
		t.Errorf("engine got %d jobs, want the 2 of %d bytes", len(news), max)
	}
	// Refused before the engine saw them, and still counted by it.
	ts.eng.with(func(f *fakeEngine) {
		if len(f.refused) != 2 {
			t.Fatalf("Refused calls %v, want the 2 bodies over the limit", f.refused)
		}
		for _, r := range f.refused {
			if r.queue != "q" || r.n != 1 || !errors.Is(r.err, job.ErrTooLarge) {
				t.Errorf("Refused(%q, %d, %v), want (q, 1, too large)", r.queue, r.n, r.err)
			}
		}
	})
}

func TestErrorMapping(t *testing.T) {
	ts := mustStartServer(t, Config{})
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   string
		msg    string
		retry  int
	}{
		{"invalid argument", fmt.Errorf("%w: headers: more than 64", job.ErrInvalidArgument), 400, "invalid_argument", "headers: more than 64", 0},
		{"invalid queue", job.ErrInvalidQueue, 400, "invalid_queue", "invalid queue", 0},
		{"not found", job.ErrNotFound, 404, "not_found", "not found", 0},
		{"unknown queue", fmt.Errorf("%w: \"nope\" (strict_queues)", job.ErrUnknownQueue), 404, "unknown_queue", `"nope" (strict_queues)`, 0},
		{"lease lost", job.ErrLeaseLost, 409, "lease_lost", "lease lost", 0},
		{"conflict", job.ErrConflict, 409, "conflict", "conflict", 0},
		{"too large", job.ErrTooLarge, 413, "payload_too_large", "payload too large", 0},
		{"queue full", job.ErrQueueFull, 429, "queue_full", "queue full", 1},
		{"queue full retry", fmt.Errorf("queue q: %w", job.Retry(fmt.Errorf("%w: max_depth 10", job.ErrQueueFull), 2500*time.Millisecond)), 429, "queue_full", "queue q: queue full: max_depth 10", 3},
		{"rate limited", job.Retry(job.ErrRateLimited, 200*time.Millisecond), 429, "rate_limited", "rate limited", 1},
		{"shed", job.Retry(job.ErrShed, 10*time.Second), 429, "shed", "shed", 10},
		{"disk full", job.ErrDiskFull, 503, "disk_full", "disk full", 1},
		{"shutting down", job.ErrShuttingDown, 503, "shutting_down", "shutting down", 1},
		{"unavailable", job.Retry(job.ErrUnavailable, 4*time.Second), 503, "unavailable", "unavailable", 4},
		{"deadline", context.DeadlineExceeded, 503, "unavailable", "deadline", 1},
		{"internal", errors.New("badger: value log corrupt"), 500, "internal", "internal error", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.eng.setErr("Enqueue", tc.err)
			r := ts.do(t, "POST", "/v1/queues/q/jobs", strings.NewReader("x"))
			r.wantError(t, tc.status, tc.code, tc.msg, tc.retry)
			if strings.Contains(string(r.body), "badger") {
				t.Errorf("internal error leaked: %s", r.body)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	ts := mustStartServer(t, Config{Token: "s3cret"})
	for _, tc := range []struct {
		path, auth string
		status     int
	}{
		{"/v1/queues", "", 401},
		{"/v1/queues", "Bearer wrong", 401},
		{"/v1/queues", "Bearer s3cret-and-more", 401},
		{"/v1/queues", "Basic s3cret", 401},
		{"/v1/queues", "Bearer s3cret", 200},
		{"/v1/queues", "bearer s3cret", 200},
		{"/metrics", "", 401},
		{"/readyz", "", 401},
		{"/no/such/route", "", 401},
		{"/healthz", "", 200},
		{"/healthz", "Bearer wrong", 200},
	} {
		var hdr []string
		if tc.auth != "" {
			hdr = []string{"Authorization", tc.auth}
		}
		r := ts.do(t, "GET", tc.path, nil, hdr...)
		if tc.status == 401 {
			r.wantError(t, 401, "unauthorized", "Bearer", 0)
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("%s %q: WWW-Authenticate = %q", tc.path, tc.auth, got)
			}
			continue
		}
		r.wantStatus(t, tc.status)
	}
	r := ts.do(t, "POST", "/v1/queues/q/jobs", strings.NewReader("x"))
	r.wantError(t, 401, "unauthorized", "", 0)
	if news, _ := ts.eng.received(); len(news) != 0 {
		t.Errorf("an unauthorized enqueue reached the engine")
	}
}

func TestRouting(t *testing.T) {
	ts := mustStartServer(t, Config{})
	ts.do(t, "GET", "/nope", nil).wantError(t, 404, "not_found", "GET /nope", 0)
	ts.do(t, "GET", "/v1/queues/q/jobs/extra", nil).wantError(t, 404, "not_found", "no route", 0)

	r := ts.do(t, "GET", "/v1/queues/q/lease", nil)
	r.wantError(t, 405, "method_not_allowed", "GET /v1/queues/q/lease", 0)
	if got := r.header.Get("Allow"); got != "POST" {
		t.Errorf("Allow = %q, want POST", got)
	}
	r = ts.do(t, "PUT", "/v1/jobs/0000000000000001", nil)
	r.wantError(t, 405, "method_not_allowed", "PUT", 0)
	if got := r.header.Get("Allow"); !strings.Contains(got, "GET") || !strings.Contains(got, "DELETE") {
		t.Errorf("Allow = %q, want GET and DELETE", got)
	}

	// Paths the mux would clean (and redirect) are answered as sent.
	ts.do(t, "POST", "/v1/queues//jobs", nil).wantError(t, 400, "invalid_queue", `""`, 0)
	ts.do(t, "GET", "/v1/queues/", nil).wantError(t, 400, "invalid_queue", `""`, 0)
	ts.do(t, "POST", "/v1/queues/%2E%2E/lease", nil).wantError(t, 400, "invalid_queue", `".."`, 0)
	ts.do(t, "POST", "/v1/jobs//ack?lease=L", nil).wantError(t, 400, "invalid_argument", "id:", 0)
	ts.do(t, "GET", "/v1//stats", nil).wantError(t, 404, "not_found", "no route", 0)
	r = ts.do(t, "PUT", "/v1/queues/./jobs", nil)
	r.wantError(t, 405, "method_not_allowed", "PUT", 0)
	if got := r.header.Get("Allow"); got != "DELETE, POST" {
		t.Errorf("Allow = %q, want DELETE, POST", got)
	}
	if news, _ := ts.eng.received(); len(news) != 0 {
		t.Errorf("malformed paths reached the engine with %d jobs", len(news))
	}
}

func TestCleanPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/": true, "/v1/stats": true, "/v1/queues/": true, "/v1/queues/a.b/jobs": true, "/v1/x..y": true,
		"": false, "//": false, "/v1//stats": false, "/v1/./stats": false, "/v1/../stats": false,
		"/v1/queues/.": false, "/v1/queues/..": false, "/v1/queues/a/../jobs": false,
	} {
		if got := cleanPath(p); got != want {
			t.Errorf("cleanPath(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestBatch(t *testing.T) {
	ts := mustStartServer(t, Config{})
	body := `{"payload":{"n": 1},"key":"k1","headers":{"Trace":"x"}}` + "\n" +
		"\r\n" +
		`{"payload_b64":"AAEC","content_type":"application/x-bin","delay":null,"max_attempts":2,"ttr":"1m","expires_in":"1h","run_at":"2025-01-01T00:00:00Z"}` + "\r\n" +
		`{"payload":"text"}`
	r := ts.do(t, "POST", "/v1/queues/b/batch", strings.NewReader(body), "Content-Type", "application/x-ndjson")
	r.wantStatus(t, http.StatusCreated)
	var res BatchResponse
	r.decode(t, &res)
	want := []BatchResult{
		{ID: "0000000000000001", State: "ready", Durable: true},
		{ID: "0000000000000002", State: "delayed", Durable: true},
		{ID: "0000000000000003", State: "ready", Durable: true},
	}
	if fmt.Sprint(res.Jobs) != fmt.Sprint(want) {
		t.Errorf("jobs = %+v, want %+v", res.Jobs, want)
	}
	news, batches := ts.eng.received()
	if batches != 1 || len(news) != 3 {
		t.Fatalf("engine got %d batches, %d jobs; want 1, 3", batches, len(news))
	}
	if n := news[0]; string(n.Payload) != `{"n": 1}` || n.ContentType != "application/json" || n.Key != "k1" ||
		!maps.Equal(n.Headers, map[string]string{"trace": "x"}) || n.Queue != "b" {
		t.Errorf("line 1 = %+v", n)
	}
	if n := news[1]; !bytes.Equal(n.Payload, []byte{0, 1, 2}) || n.ContentType != "application/x-bin" ||
		n.Delay != 0 || n.MaxAttempts != 2 || n.TTR != time.Minute || n.ExpiresIn != time.Hour ||
		!n.RunAt.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("line 3 = %+v", n)
	}
	if n := news[2]; string(n.Payload) != `"text"` || n.ContentType != "application/json" {
		t.Errorf("line 4 = %+v", n)
	}

	r = ts.do(t, "POST", "/v1/queues/b/batch", strings.NewReader(`{"payload":2,"key":"k1"}`), "Content-Type", "application/json")
	r.wantStatus(t, http.StatusCreated)
	r.decode(t, &res)
	if len(res.Jobs) != 1 || !res.Jobs[0].Duplicate || res.Jobs[0].ID != "0000000000000001" {
		t.Errorf("duplicate line answered %+v", res.Jobs)
	}
}

func TestBatchRefusals(t *testing.T) {
	const max = 64
	good := `{"payload":1}` + "\n"
	for _, tc := range []struct {
		name, query, body string
		status            int
		code, msg         string
	}{
		{"bad json", "", good + `{"payload":` + "\n", 400, "invalid_argument", "line 2: json:"},
		{"bad delay", "", good + good + `{"payload":1,"delay":"soon"}`, 400, "invalid_argument", "line 3: delay:"},
		{"delay not a string", "", `{"payload":1,"delay":5}`, 400, "invalid_argument", "line 1: delay:"},
		{"unknown field", "", `{"payload":1,"dealy":"5s"}`, 400, "invalid_argument", "line 1: dealy: unknown field"},
		{"both payloads", "", `{"payload":1,"payload_b64":"AA=="}`, 400, "invalid_argument", "line 1: payload:"},
		{"no payload", "", "\n\n" + `{"key":"k"}`, 400, "invalid_argument", "line 3: payload: missing"},
		{"bad base64", "", `{"payload_b64":"***"}`, 400, "invalid_argument", "line 1: payload_b64:"},
		{"bad max_attempts", "", `{"payload":1,"max_attempts":-1}`, 400, "invalid_argument", "line 1: max_attempts:"},
		{"bad run_at", "", `{"payload":1,"run_at":"noon"}`, 400, "invalid_argument", "line 1: run_at:"},
		{"bad headers", "", `{"payload":1,"headers":{"a":1}}`, 400, "invalid_argument", "line 1: headers:"},
		{"not an object", "", `[1]`, 400, "invalid_argument", "line 1: json:"},
		{"empty", "", "\n \n", 400, "invalid_argument", "no jobs"},
		{"too many lines", "", strings.Repeat(good, maxBatchLines+1), 400, "invalid_argument", "more than 1000 jobs"},
		{"payload too large", "", good + `{"payload_b64":"` + strings.Repeat("A", (max+3)/3*4) + `"}`, 413, "payload_too_large", "line 2: payload: 66 bytes, above max_payload 64"},
		{"body too large", "", strings.Repeat(" ", 1<<20) + good, 413, "payload_too_large", "above the batch limit"},
		{"query", "?key=x", good, 400, "invalid_argument", "key: unknown query parameter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := mustStartServer(t, Config{MaxPayload: max})
			r := ts.do(t, "POST", "/v1/queues/b/batch"+tc.query, strings.NewReader(tc.body), "Content-Type", "application/x-ndjson")
			r.wantError(t, tc.status, tc.code, tc.msg, 0)
			if news, batches := ts.eng.received(); batches != 0 || len(news) != 0 {
				t.Errorf("engine saw %d batches, %d jobs; want nothing", batches, len(news))
			}
		})
	}
	t.Run("chunked body too large", func(t *testing.T) {
		ts := mustStartServer(t, Config{MaxPayload: max})
		r := ts.do(t, "POST", "/v1/queues/b/batch", chunked(strings.Repeat(" ", 1<<20)+good), "Content-Type", "application/x-ndjson")
		r.wantError(t, 413, "payload_too_large", "limit of 1048576 bytes", 0)
	})
}

// putLeaseJobs stores one ready job of each payload kind in queue "work".
func putLeaseJobs(f *fakeEngine) {
	exp := time.Date(2025, 3, 5, 0, 0, 0, 0, time.FixedZone("X", 3600))
	f.put(job.Job{Queue: "work", State: job.StateReady, MaxAttempts: 5, ContentType: "application/json", Payload: []byte(`{"a": [1, 2]}`),
		Key: "k1", ExpiresAt: exp, Headers: map[string]string{"trace-id": "t"}})
	f.put(job.Job{Queue: "work", State: job.StateReady, MaxAttempts: 5, ContentType: "application/cloudevents+json; charset=utf-8", Payload: []byte(`[1,2]`)})
	f.put(job.Job{Queue: "work", State: job.StateReady, MaxAttempts: 5, ContentType: "application/json", Payload: []byte(`{nope`)})
	f.put(job.Job{Queue: "work", State: job.StateReady, MaxAttempts: 5, ContentType: "text/plain", Payload: []byte(`"hi"`)})
	f.put(job.Job{Queue: "work", State: job.StateReady, MaxAttempts: 5, ContentType: "application/octet-stream"})
}

func TestLease(t *testing.T) {
	ts := mustStartServer(t, Config{})
	putLeaseJobs(ts.eng)
	r := ts.do(t, "POST", "/v1/queues/work/lease?max=10&ttr=30s", nil)
	r.wantStatus(t, http.StatusOK)
	var list JobList
	r.decode(t, &list)
	if len(list.Jobs) != 5 {
		t.Fatalf("leased %d jobs, want 5: %s", len(list.Jobs), r.body)
	}
	for i, j := range list.Jobs {
		if j.State != "leased" || j.Lease == nil || j.Lease.ID != "L"+j.ID || j.Attempt != 1 || j.Queue != "work" {
			t.Errorf("job %d = %+v", i, j)
		}
		if want := ts.eng.now.Add(30 * time.Second); j.Lease != nil && !j.Lease.ExpiresAt.Equal(want) {
			t.Errorf("job %d lease expires %v, want %v", i, j.Lease.ExpiresAt, want)
		}
	}
	for i, want := range []struct{ payload, b64 string }{
		{payload: `{"a":[1,2]}`}, // encoding/json compacts
		{payload: `[1,2]`},
		{b64: `{nope`},
		{b64: `"hi"`},
		{b64: ``},
	} {
		j := list.Jobs[i]
		if string(j.Payload) != want.payload || string(j.PayloadB64) != want.b64 || (want.b64 != "" && j.Payload != nil) {
			t.Errorf("job %d: payload %q payload_b64 %q; want %q %q", i, j.Payload, j.PayloadB64, want.payload, want.b64)
		}
	}
	if j := list.Jobs[0]; j.Key != "k1" || j.Headers["trace-id"] != "t" || !j.ExpiresAt.Equal(time.Date(2025, 3, 4, 23, 0, 0, 0, time.UTC)) {
		t.Errorf("job 0 = %+v", j)
	}
	// The raw document: SPEC §5 keys, UTC times, payload_b64 present even
	// when empty.
	if !bytes.Contains(r.body, []byte(`"expires_at":"2025-03-04T23:00:00Z"`)) || !bytes.Contains(r.body, []byte(`"created_at":"2025-03-04T05:06:07Z"`)) {
		t.Errorf("times not RFC 3339 UTC: %s", r.body)
	}
	var raw struct{ Jobs []json.RawMessage }
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	wantKeys(t, raw.Jobs[0], "id", "queue", "state", "attempt", "max_attempts", "created_at", "run_at", "expires_at", "key",
		"lease", "headers", "content_type", "payload", "last_error")
	wantKeys(t, raw.Jobs[4], "id", "queue", "state", "attempt", "max_attempts", "created_at", "run_at",
		"lease", "headers", "content_type", "payload_b64", "last_error")
	if !bytes.Contains(raw.Jobs[4], []byte(`"headers":{}`)) || !bytes.Contains(raw.Jobs[4], []byte(`"payload_b64":""`)) {
		t.Errorf("job 4 = %s", raw.Jobs[4])
	}

	r = ts.do(t, "POST", "/v1/queues/work/lease", nil)
	r.wantStatus(t, http.StatusOK)
	if got := strings.TrimSpace(string(r.body)); got != `{"jobs":[]}` {
		t.Errorf("empty lease = %s, want {\"jobs\":[]}", got)
	}
	r = ts.do(t, "POST", "/v1/queues/work/lease?wait=10ms", nil)
	r.wantStatus(t, http.StatusOK)

	for _, tc := range []struct{ query, field string }{
		{"max=0", "max"}, {"max=101", "max"}, {"max=x", "max"},
		{"wait=61s", "wait"}, {"wait=-1s", "wait"}, {"wait=1", "wait"},
		{"ttr=x", "ttr"}, {"count=1", "count"},
	} {
		ts.do(t, "POST", "/v1/queues/work/lease?"+tc.query, nil).wantError(t, 400, "invalid_argument", tc.field+":", 0)
	}
}

func TestAckNackFailExtend(t *testing.T) {
	ts := mustStartServer(t, Config{})
	leased := func(attempt int) *job.Job {
		j := ts.eng.put(job.Job{Queue: "w", State: job.StateLeased, Attempt: attempt, MaxAttempts: 3})
		j.LeaseID = "L" + j.ID.String()
		ts.eng.put(*j)
		return j
	}
	path := func(j *job.Job, op, query string) string {
		return "/v1/jobs/" + j.ID.String() + "/" + op + "?" + query
	}

	j := leased(1)
	ts.do(t, "POST", path(j, "ack", "lease=wrong"), nil).wantError(t, 409, "lease_lost", "lease lost", 0)
	ts.do(t, "POST", path(j, "ack", ""), nil).wantError(t, 400, "invalid_argument", "lease: required", 0)
	ts.do(t, "POST", "/v1/jobs/xyz/ack?lease=L", nil).wantError(t, 400, "invalid_argument", "id:", 0)
	r := ts.do(t, "POST", path(j, "ack", "lease="+j.LeaseID), nil)
	r.wantStatus(t, 200)
	var ok OKResult
	r.decode(t, &ok)
	if !ok.OK {
		t.Errorf("ack answered %s", r.body)
	}
	ts.do(t, "POST", path(j, "ack", "lease="+j.LeaseID), nil).wantStatus(t, 200)
	ts.do(t, "POST", path(j, "ack", "lease=other"), nil).wantError(t, 409, "lease_lost", "lease lost", 0)
	ts.do(t, "POST", "/v1/jobs/00000000000000ff/ack?lease=L", nil).wantError(t, 404, "not_found", "not found", 0)

	for _, tc := range []struct {
		attempt int
		query   string
		state   string
	}{
		{1, "delay=10s&error=boom", "delayed"},
		{1, "error=boom", "delayed"},
		{1, "delay=0&error=boom", "ready"},
		{3, "error=boom", "dead"},
	} {
		j := leased(tc.attempt)
		r := ts.do(t, "POST", path(j, "nack", "lease="+j.LeaseID+"&"+tc.query), nil)
		r.wantStatus(t, 200)
		var st StateResult
		r.decode(t, &st)
		if st.State != tc.state {
			t.Errorf("nack %s at attempt %d: state %q, want %q", tc.query, tc.attempt, st.State, tc.state)
		}
		if got, _ := ts.eng.Job(t.Context(), j.ID); got.LastError != "boom" {
			t.Errorf("last_error = %q, want boom", got.LastError)
		}
	}
	j = leased(1)
	ts.do(t, "POST", path(j, "nack", "lease="+j.LeaseID+"&delay=later"), nil).wantError(t, 400, "invalid_argument", "delay:", 0)

	r = ts.do(t, "POST", path(j, "fail", "lease="+j.LeaseID+"&error=bad+input"), nil)
	r.wantStatus(t, 200)
	if got, _ := ts.eng.Job(t.Context(), j.ID); got.State != job.StateDead || got.LastError != "bad input" {
		t.Errorf("after fail: %v %q", got.State, got.LastError)
	}

	j = leased(1)
	r = ts.do(t, "POST", path(j, "extend", "lease="+j.LeaseID+"&ttr=45s"), nil)
	r.wantStatus(t, 200)
	wantKeys(t, r.body, "expires_at")
	var ext ExtendResult
	r.decode(t, &ext)
	if want := ts.eng.now.Add(45 * time.Second); !ext.ExpiresAt.Equal(want) {
		t.Errorf("expires_at = %v, want %v", ext.ExpiresAt, want)
	}
	ts.do(t, "POST", path(j, "extend", "lease="+j.LeaseID+"&ttr=x"), nil).wantError(t, 400, "invalid_argument", "ttr:", 0)
	ts.do(t, "POST", path(j, "extend", "lease=other"), nil).wantError(t, 409, "lease_lost", "", 0)
}

func TestJobShowCancel(t *testing.T) {
	ts := mustStartServer(t, Config{})
	j := ts.eng.put(job.Job{Queue: "w", State: job.StateReady, MaxAttempts: 5, ContentType: "text/plain", Payload: []byte("hi"), LastError: "earlier"})
	r := ts.do(t, "GET", "/v1/jobs/"+j.ID.String(), nil)
	r.wantStatus(t, 200)
	wantKeys(t, r.body, "id", "queue", "state", "attempt", "max_attempts", "created_at", "run_at", "headers", "content_type", "payload_b64", "last_error")
	var got Job
	r.decode(t, &got)
	if got.ID != j.ID.String() || got.State != "ready" || string(got.Body()) != "hi" || got.LastError != "earlier" || got.Lease != nil {
		t.Errorf("job = %+v", got)
	}

	ts.do(t, "GET", "/v1/jobs/00000000000000ff", nil).wantError(t, 404, "not_found", "not found", 0)
	ts.do(t, "GET", "/v1/jobs/xyz", nil).wantError(t, 400, "invalid_argument", "id:", 0)

	l := ts.eng.put(job.Job{Queue: "w", State: job.StateLeased, LeaseID: "L"})
	ts.do(t, "DELETE", "/v1/jobs/"+l.ID.String(), nil).wantError(t, 409, "conflict", "", 0)
	ts.do(t, "DELETE", "/v1/jobs/"+j.ID.String(), nil).wantStatus(t, 200)
	ts.do(t, "GET", "/v1/jobs/"+j.ID.String(), nil).wantStatus(t, 404)
}

var queueStatsKeys = []string{"name", "class", "paused", "shed", "ready", "delayed", "leased", "dead",
	"oldest_ready_age_s", "enqueued_total", "completed_total", "retried_total", "dead_total",
	"rejected_total", "concurrency", "in_rate", "out_rate", "drain_eta_s",
	// The only extras beyond SPEC §5 ("done": retained finished jobs, issue 20).
	"done", "running", "breaker", "alerting", "bytes", "evicted_total",
	// Ordered groups (issue 20).
	"group_concurrency", "groups", "oldest_group", "oldest_group_age_s"}

func TestQueues(t *testing.T) {
	ts := mustStartServer(t, Config{})
	for _, st := range []job.State{job.StateReady, job.StateReady, job.StateDelayed, job.StateLeased, job.StateDead} {
		ts.eng.put(job.Job{Queue: "a", State: st})
	}
	eta := 90 * time.Second
	ts.eng.with(func(f *fakeEngine) {
		f.extraQ = []engine.QueueStats{{Name: "z", Class: job.ClassBulk, Shed: true, InRate: 2.5, OutRate: 3, DrainETA: &eta, RejectedTotal: 7}}
	})

	r := ts.do(t, "GET", "/v1/queues", nil)
	r.wantStatus(t, 200)
	wantKeys(t, r.body, "queues")
	var list QueueList
	r.decode(t, &list)
	if len(list.Queues) != 2 {
		t.Fatalf("queues = %+v", list.Queues)
	}
	a, z := list.Queues[0], list.Queues[1]
	if a.Name != "a" || a.Class != "normal" || a.Ready != 2 || a.Delayed != 1 || a.Leased != 1 || a.Dead != 1 ||
		a.OldestReadyAgeS != 1.5 || a.DrainETAS != nil || a.EnqueuedTotal != 5 || a.Concurrency != 4 {
		t.Errorf("queue a = %+v", a)
	}
	if z.Class != "bulk" || !z.Shed || z.InRate != 2.5 || z.DrainETAS == nil || *z.DrainETAS != 90 || z.RejectedTotal != 7 {
		t.Errorf("queue z = %+v", z)
	}
	if !bytes.Contains(r.body, []byte(`"drain_eta_s":null`)) {
		t.Errorf("drain_eta_s not null: %s", r.body)
	}

	r = ts.do(t, "GET", "/v1/queues/a", nil)
	r.wantStatus(t, 200)
	wantKeys(t, r.body, queueStatsKeys...)
	ts.do(t, "GET", "/v1/queues/nope", nil).wantError(t, 404, "not_found", "", 0)

	r = ts.do(t, "POST", "/v1/queues/a/pause", nil)
	r.wantStatus(t, 200)
	var p PauseResult
	r.decode(t, &p)
	if p != (PauseResult{Queue: "a", Paused: true}) {
		t.Errorf("pause answered %+v", p)
	}
	if q, _ := ts.eng.QueueStats("a"); !q.Paused {
		t.Error("queue not paused")
	}
	ts.do(t, "POST", "/v1/queues/a/resume", nil).decode(t, &p)
	if p.Paused {
		t.Errorf("resume answered %+v", p)
	}
	ts.do(t, "POST", "/v1/queues/A!/pause", nil).wantError(t, 400, "invalid_queue", "", 0)

	r = ts.do(t, "DELETE", "/v1/queues/a/jobs", nil)
	r.wantStatus(t, 200)
	var d DeletedResult
	r.decode(t, &d)
	if d.Deleted != 3 {
		t.Errorf("purge deleted %d, want 3 (ready and delayed)", d.Deleted)
	}
}

func TestDead(t *testing.T) {
	ts := mustStartServer(t, Config{})
	var ids []string
	for range 5 {
		ids = append(ids, ts.eng.put(job.Job{Queue: "d", State: job.StateDead, Attempt: 5, MaxAttempts: 5, LastError: "boom", Payload: []byte("p")}).ID.String())
	}
	var got []string
	after := ""
	for page := 0; ; page++ {
		r := ts.do(t, "GET", "/v1/queues/d/dead?limit=2&after="+after, nil)
		r.wantStatus(t, 200)
		var list JobList
		r.decode(t, &list)
		for _, j := range list.Jobs {
			got = append(got, j.ID)
			if j.LastError != "boom" || j.State != "dead" || j.Payload != nil || j.PayloadB64 != nil {
				t.Errorf("dead job = %+v", j)
			}
		}
		if list.Next == "" {
			if bytes.Contains(r.body, []byte(`"next"`)) {
				t.Errorf("last page has a next key: %s", r.body)
			}
			break
		}
		if page > 5 {
			t.Fatal("paging does not end")
		}
		after = list.Next
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Errorf("listed %v, want %v", got, ids)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "after=zz", "page=2"} {
		ts.do(t, "GET", "/v1/queues/d/dead?"+q, nil).wantError(t, 400, "invalid_argument", strings.Split(q, "=")[0]+":", 0)
	}
	ts.do(t, "POST", "/v1/queues/d/dead/retry?limit=5000", nil).wantError(t, 400, "invalid_argument", "limit:", 0)

	r := ts.do(t, "POST", "/v1/queues/d/dead/retry?limit=2", nil)
	r.wantStatus(t, 200)
	var m MovedResult
	r.decode(t, &m)
	if m.Moved != 2 {
		t.Errorf("moved %d, want 2", m.Moved)
	}
	r = ts.do(t, "DELETE", "/v1/queues/d/dead", nil)
	r.wantStatus(t, 200)
	var d DeletedResult
	r.decode(t, &d)
	if d.Deleted != 3 {
		t.Errorf("dead purge deleted %d, want 3", d.Deleted)
	}
}

func TestStats(t *testing.T) {
	ts := mustStartServer(t, Config{})
	ts.eng.put(job.Job{Queue: "a", State: job.StateReady})
	r := ts.do(t, "GET", "/v1/stats", nil)
	r.wantStatus(t, 200)
	wantKeys(t, r.body, "governor", "queues", "uptime_s")
	if !bytes.Contains(r.body, []byte(`"governor":null`)) {
		t.Errorf("governor not null: %s", r.body)
	}
	var doc StatsDoc
	r.decode(t, &doc)
	if doc.UptimeS != 90 || len(doc.Queues) != 1 || doc.Queues[0].Ready != 1 {
		t.Errorf("stats = %+v", doc)
	}
	ts.eng.with(func(f *fakeEngine) { f.short = true })
	ts.do(t, "GET", "/v1/stats", nil).decode(t, &doc)
	if !doc.StoreShort {
		t.Error("store_short not reported")
	}
}

func TestHealthReady(t *testing.T) {
	ts := mustStartServer(t, Config{})
	r := ts.do(t, "GET", "/healthz", nil)
	r.wantStatus(t, 200)
	var h Health
	r.decode(t, &h)
	if h.Status != "ok" {
		t.Errorf("healthz = %s", r.body)
	}
	ts.do(t, "GET", "/readyz", nil).wantStatus(t, 200)
	for _, tc := range []struct {
		sh     engine.Shedding
		status int
		want   Readiness
	}{
		{engine.Shedding{Level: job.LevelHigh, Paused: []string{"a", "b"}, Refused: []string{"b"}}, 200,
			Readiness{Status: "ready", Level: "high", Paused: []string{"a", "b"}, Refused: []string{"b"}}},
		{engine.Shedding{Level: job.LevelCritical, Paused: []string{"a"}, Refused: []string{"a"}}, 503,
			Readiness{Status: "shedding", Level: "critical", Paused: []string{"a"}, Refused: []string{"a"}}},
	} {
		ts.eng.with(func(f *fakeEngine) { f.shedding = tc.sh })
		r := ts.do(t, "GET", "/readyz", nil)
		r.wantStatus(t, tc.status)
		var got Readiness
		r.decode(t, &got)
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
			t.Errorf("/readyz at %s = %s, want %+v", tc.sh.Level, r.body, tc.want)
		}
		if retry := r.header.Get("Retry-After"); (tc.status == 503) != (retry == "5") {
			t.Errorf("/readyz at %s: Retry-After %q", tc.sh.Level, retry)
		}
	}
	ts.eng.with(func(f *fakeEngine) { f.shedding = engine.Shedding{Level: job.LevelCritical} })
	for _, tc := range []struct {
		err   error
		code  string
		retry int
	}{
		{job.ErrDiskFull, "disk_full", 1},
		{job.Retry(job.ErrUnavailable, 5*time.Second), "unavailable", 5},
		{errors.New("store closed"), "unavailable", 1},
	} {
		ts.eng.with(func(f *fakeEngine) { f.ready = tc.err })
		ts.do(t, "GET", "/readyz", nil).wantError(t, 503, tc.code, "", tc.retry)
		ts.do(t, "GET", "/healthz", nil).wantStatus(t, 200)
	}
}

func TestMetrics(t *testing.T) {
	ts := mustStartServer(t, Config{})
	for _, st := range []job.State{job.StateReady, job.StateReady, job.StateDead} {
		ts.eng.put(job.Job{Queue: "a", State: st})
	}
	ts.eng.with(func(f *fakeEngine) {
		f.extraQ = []engine.QueueStats{{Name: "b", Class: job.ClassCritical, CompletedTotal: 4, RetriedTotal: 3, DeadTotal: 2, RejectedTotal: 1, Rejected: map[string]uint64{"rate_limited": 1}, Paused: true}}
		f.short = true
	})
	r := ts.do(t, "GET", "/metrics", nil)
	r.wantStatus(t, 200)
	want := []string{
		`edgeq_queue_depth{queue="a",state="ready"} 2`,
		`edgeq_queue_depth{queue="a",state="dead"} 1`,
		`edgeq_queue_depth{queue="a",state="delayed"} 0`,
		`edgeq_queue_depth{queue="a",state="leased"} 0`,
		`edgeq_jobs_enqueued_total{queue="a"} 3`,
		`edgeq_jobs_completed_total{queue="b"} 4`,
		`edgeq_jobs_retried_total{queue="b"} 3`,
		`edgeq_jobs_dead_total{queue="b"} 2`,
		`edgeq_jobs_rejected_total{queue="b",reason="rate_limited"} 1`,
		`edgeq_queue_oldest_age_seconds{queue="a"} 1.5`,
		`edgeq_queue_paused{queue="b"} 1`,
		`edgeq_queue_info{class="critical",queue="b"} 1`,
		`edgeq_store_short 1`,
		`edgeq_uptime_seconds 90`,
		`go_goroutines `,
	}
	if runtime.GOOS == "linux" {
		want = append(want, "process_resident_memory_bytes ")
	}
	for _, w := range want {
		if !bytes.Contains(r.body, []byte("\n"+w)) {
			t.Errorf("metrics lack %q", w)
		}
	}
	// A pedantic registry also checks Collect against Describe.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newStatsCollector(ts.eng))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestShutdown(t *testing.T) {
	listenerClosed := make(chan struct{}, 1)
	ts := mustStartServerHook(t, Config{}, func() { listenerClosed <- struct{}{} })
	entered, release, waiting := make(chan struct{}), make(chan struct{}), make(chan struct{}, 1)
	ts.eng.with(func(f *fakeEngine) { f.enqueueEntered, f.enqueueRelease, f.leaseWaiting = entered, release, waiting })

	// One enqueue inside the engine and one long poll, both in flight.
	enqueued := make(chan reply, 1)
	leased := make(chan reply, 1)
	var wg sync.WaitGroup
	wg.Go(func() { enqueued <- ts.do(t, "POST", "/v1/queues/q/jobs", strings.NewReader("x")) })
	wg.Go(func() { leased <- ts.do(t, "POST", "/v1/queues/q/lease?wait=60s", nil) })
	<-entered
	<-waiting

	done := make(chan error, 1)
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- ts.Shutdown(ctx)
	})
	<-listenerClosed

	// The long poll ends at once, refused as shutting_down.
	(<-leased).wantError(t, 503, "shutting_down", "", 1)

	// New requests are refused; health stays up, readiness goes down.
	h := ts.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "http://127.0.0.1/v1/queues/q/jobs", strings.NewReader("y")))
	reply{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}.wantError(t, 503, "shutting_down", "", 1)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/readyz", nil))
	reply{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}.wantError(t, 503, "shutting_down", "", 1)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/healthz", nil))
	if rec.Code != 200 {
		t.Errorf("healthz during shutdown = %d", rec.Code)
	}
	if _, err := net.Dial("tcp", ts.Addr().String()); err == nil {
		t.Error("listener still accepts connections")
	}

	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
	default:
	}
	close(release)
	(<-enqueued).wantStatus(t, http.StatusCreated)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wg.Wait()

	if err := ts.Shutdown(t.Context()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := ts.Start(); !errors.Is(err, job.ErrShuttingDown) {
		t.Errorf("Start after Shutdown = %v", err)
	}
}

func TestShutdownDeadline(t *testing.T) {
	ts := mustStartServer(t, Config{})
	ts.shutdownErrOK = true
	entered, release := make(chan struct{}), make(chan struct{})
	ts.eng.with(func(f *fakeEngine) { f.enqueueEntered, f.enqueueRelease = entered, release })
	got := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		req, _ := http.NewRequest("POST", ts.base+"/v1/queues/q/jobs", strings.NewReader("x"))
		resp, err := ts.hc.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		got <- err
	})
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown with an ended ctx = %v, want context.Canceled", err)
	}
	if err := <-got; err == nil {
		t.Error("request on a force-closed connection succeeded")
	}
	close(release)
	wg.Wait()
	if err := ts.Shutdown(t.Context()); !errors.Is(err, context.Canceled) {
		t.Errorf("second Shutdown = %v, want the first result", err)
	}
}

func TestNewAndStart(t *testing.T) {
	eng := newFakeEngine()
	for _, tc := range []struct {
		name string
		cfg  Config
		eng  Engine
		want string
	}{
		{"nil engine", Config{}, nil, "nil engine"},
		{"cert only", Config{TLSCert: "c.pem"}, eng, "TLSCert and TLSKey"},
		{"key only", Config{TLSKey: "k.pem"}, eng, "TLSCert and TLSKey"},
		{"missing files", Config{TLSCert: "/nonexistent/c.pem", TLSKey: "/nonexistent/k.pem"}, eng, "load tls key pair"},
		{"negative payload", Config{MaxPayload: -1}, eng, "MaxPayload"},
	} {
		if _, err := New(tc.cfg, tc.eng); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New error = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}

	ts := mustStartServer(t, Config{})
	if err := ts.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	other, err := New(Config{Addr: ts.Addr().String()}, eng)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("Start on a bound address = %v", err)
	}
	if err := other.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown of a server that never started = %v", err)
	}
	if other.Addr() != nil {
		t.Errorf("Addr before Start = %v", other.Addr())
	}
}
