package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

func TestDecodeBatch(t *testing.T) {
	body := `{"payload":{"a": "b"}}` + "\n" +
		`  {"payload_b64":"aGk=","content_type":"text/plain","key":"k","delay":"1m30s","max_attempts":9,"ttr":"2m","expires_in":"1h","expires_at":"2026-01-01T00:00:00Z","headers":{"A-B":"c"}}  ` + "\r\n" +
		`{"payload":null,"key":null,"payload_b64":null}` + "\n" +
		`{"payload":"x","content_type":"application/vnd.x+json","run_at":"2025-01-02T03:04:05.5+01:00","delay":null}`
	lines, err := decodeBatch([]byte(body), 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []BatchLine{
		{Payload: []byte(`{"a": "b"}`), EnqueueOptions: EnqueueOptions{ContentType: "application/json"}},
		{Payload: []byte("hi"), EnqueueOptions: EnqueueOptions{
			ContentType: "text/plain", Key: "k", Delay: 90 * time.Second,
			MaxAttempts: 9, TTR: 2 * time.Minute, ExpiresIn: time.Hour,
			ExpiresAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			Headers:   map[string]string{"a-b": "c"},
		}},
		{Payload: []byte("null"), EnqueueOptions: EnqueueOptions{ContentType: "application/json"}},
		{Payload: []byte(`"x"`), EnqueueOptions: EnqueueOptions{ContentType: "application/vnd.x+json", RunAt: time.Date(2025, 1, 2, 2, 4, 5, 5e8, time.UTC)}},
	}
	if len(lines) != len(want) {
		t.Fatalf("decoded %d lines, want %d", len(lines), len(want))
	}
	for i := range want {
		if !sameLine(lines[i], want[i]) {
			t.Errorf("line %d\n got %+v\nwant %+v", i+1, lines[i], want[i])
		}
	}
	// The lines own their payloads.
	orig := []byte(`{"payload":[1]}`)
	lines, _ = decodeBatch(orig, 100)
	copy(orig, bytes.Repeat([]byte("x"), len(orig)))
	if string(lines[0].Payload) != "[1]" {
		t.Errorf("payload shares the body: %q", lines[0].Payload)
	}
}

func TestDecodeBatchErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		sentinel   error
		msg        string
	}{
		{"syntax", `{"payload":1,}`, job.ErrInvalidArgument, "line 1: json: invalid character"},
		{"trailing data", `{"payload":1} {}`, job.ErrInvalidArgument, "line 1: json:"},
		{"null line", "null", job.ErrInvalidArgument, "line 1: json: want an object"},
		{"string line", `"x"`, job.ErrInvalidArgument, "line 1: json:"},
		{"second line", "{\"payload\":1}\n\n{\"payload\":1,\"ttr\":\"-1s\"}", job.ErrInvalidArgument, "line 3: ttr: must not be negative"},
		{"empty duration", `{"payload":1,"delay":""}`, job.ErrInvalidArgument, "line 1: delay:"},
		{"delay and run_at", `{"payload":1,"run_at":"2025-01-01T00:00:00Z","delay":"0s"}`, job.ErrInvalidArgument, "line 1: delay: set delay or run_at, not both"},
		{"empty time", `{"payload":1,"expires_at":""}`, job.ErrInvalidArgument, "line 1: expires_at:"},
		{"float attempts", `{"payload":1,"max_attempts":1.5}`, job.ErrInvalidArgument, "line 1: max_attempts:"},
		{"key not a string", `{"payload":1,"key":5}`, job.ErrInvalidArgument, "line 1: key: want a string"},
		{"content_type not a string", `{"payload":1,"content_type":{}}`, job.ErrInvalidArgument, "line 1: content_type:"},
		{"header case clash", `{"payload":1,"headers":{"A":"1","a":"2"}}`, job.ErrInvalidArgument, "line 1: headers: header \"a\" given twice"},
		{"empty header name", `{"payload":1,"headers":{"":"1"}}`, job.ErrInvalidArgument, "line 1: headers: empty header name"},
		{"case-sensitive fields", `{"Payload":1}`, job.ErrInvalidArgument, "line 1: payload: missing"},
		{"b64 not a string", `{"payload_b64":1}`, job.ErrInvalidArgument, "line 1: payload_b64: want a base64 string"},
		{"too large", `{"payload":"` + strings.Repeat("x", 100) + `"}`, job.ErrTooLarge, "line 1: payload: 102 bytes, above max_payload 100"},
		{"none", "", job.ErrInvalidArgument, "body: no jobs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeBatch([]byte(tc.body), 100)
			if !errors.Is(err, tc.sentinel) || err == nil || !strings.HasPrefix(err.Error(), tc.msg) {
				t.Errorf("error = %v, want %v starting %q", err, tc.sentinel, tc.msg)
			}
		})
	}
}

func TestBatchLineRoundTrip(t *testing.T) {
	for _, l := range []BatchLine{
		{Payload: []byte(`{"a":1}`), EnqueueOptions: EnqueueOptions{ContentType: "application/json"}},
		{Payload: []byte("\x00\xff binary"), EnqueueOptions: EnqueueOptions{ContentType: "application/octet-stream"}},
		{Payload: []byte{}, EnqueueOptions: EnqueueOptions{ContentType: "application/octet-stream"}},
		{Payload: []byte(`{"not json`), EnqueueOptions: EnqueueOptions{ContentType: "application/json"}},
		{Payload: []byte("x"), EnqueueOptions: EnqueueOptions{
			ContentType: "text/plain", Key: "k\"\n\u2028", RunAt: time.Date(2025, 1, 1, 0, 0, 0, 1, time.FixedZone("", -7200)),
			MaxAttempts: 3, TTR: time.Hour, ExpiresIn: 2 * time.Second, ExpiresAt: time.Unix(1e9, 0),
			Headers: map[string]string{"b": "2", "a": "\x01"},
		}},
	} {
		b, err := l.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.ContainsAny(b, "\r\n") {
			t.Errorf("encoded line spans lines: %s", b)
		}
		got, err := decodeBatch(b, 1<<20)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		if !sameLine(got[0], l) {
			t.Errorf("round trip of %+v\nvia %s\ngave %+v", l, b, got[0])
		}
	}
	// A pretty-printed JSON payload is compacted onto one line.
	b, _ := BatchLine{Payload: []byte("{\n \"a\": 1\n}"), EnqueueOptions: EnqueueOptions{ContentType: "application/json"}}.MarshalJSON()
	if string(b) != `{"payload":{"a":1},"content_type":"application/json"}` {
		t.Errorf("pretty payload encoded as %s", b)
	}
}

// sameLine compares lines, times by instant.
func sameLine(a, b BatchLine) bool {
	return bytes.Equal(a.Payload, b.Payload) && a.ContentType == b.ContentType && a.Key == b.Key &&
		a.Delay == b.Delay && a.RunAt.Equal(b.RunAt) && a.MaxAttempts == b.MaxAttempts && a.TTR == b.TTR &&
		a.ExpiresIn == b.ExpiresIn && a.ExpiresAt.Equal(b.ExpiresAt) && len(a.Headers) == len(b.Headers) &&
		maps.Equal(a.Headers, b.Headers)
}

// FuzzDecodeBatch: decodeBatch never panics, refuses only with the two
// sentinels, and every line it accepts survives MarshalJSON and decodes
// back to itself (one line each, or all together as one body).
func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{
		`{"payload":{"a":1}}`,
		`{"payload_b64":"AAEC","content_type":"application/x-bin","key":"k","delay":"5s"}`,
		`{"payload":2,"run_at":"2025-01-01T00:00:00Z"}`,
		`{"payload":"x","max_attempts":3,"ttr":"1m","expires_in":"1h","expires_at":"2026-01-01T00:00:00+02:00","headers":{"A":"b"}}` + "\r\n\n" + `{"payload":null}`,
		`{"payload":[1,2,{"b":"\u2028"}],"content_type":"application/ld+json"}`,
		`{"payload":1,"payload_b64":"AA=="}`,
		`{"payload_b64":""}`,
		"{\"payload\":\"\xff\"}",
		`{}`, `null`, `[]`, "\n\n",
	} {
		f.Add([]byte(s))
	}
	const maxPayload = 1 << 10
	f.Fuzz(func(t *testing.T, body []byte) {
		lines, err := decodeBatch(body, maxPayload)
		if err != nil {
			if !errors.Is(err, job.ErrInvalidArgument) && !errors.Is(err, job.ErrTooLarge) {
				t.Fatalf("error %v wraps neither ErrInvalidArgument nor ErrTooLarge", err)
			}
			return
		}
		var all []byte
		for i, l := range lines {
			b, err := l.MarshalJSON()
			if err != nil {
				t.Fatalf("line %d: MarshalJSON: %v", i, err)
			}
			if bytes.ContainsAny(b, "\r\n") {
				t.Fatalf("line %d encoded across lines: %q", i, b)
			}
			again, err := decodeBatch(b, maxPayload)
			if err != nil {
				t.Fatalf("line %d: %+v encoded as %s does not decode: %v", i, l, b, err)
			}
			if len(again) != 1 || !sameLine(again[0], l) {
				t.Fatalf("line %d: %+v encoded as %s decodes as %+v", i, l, b, again)
			}
			all = append(append(all, b...), '\n')
		}
		again, err := decodeBatch(all, maxPayload)
		if err != nil || len(again) != len(lines) {
			t.Fatalf("re-encoded body: %d lines, %v; want %d", len(again), err, len(lines))
		}
	})
}

// raceEnabled is set by race_test.go under the race detector.
var raceEnabled bool

// TestEnqueueBatchAllocs bounds the allocations of a batch of 100 jobs in
// the handler: per job the payload and the fake engine's result, no more
// (a line decoded on the heap, an id string for the answer and the
// answer's reflection encoding took two more each).
func TestEnqueueBatchAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items at random: allocations are not counted")
	}
	eng := newFakeEngine()
	eng.discard = true
	s, err := New(Config{}, eng)
	if err != nil {
		t.Fatal(err)
	}
	var ndjson []byte
	for range 100 {
		line, _ := BatchLine{Payload: bytes.Repeat([]byte{0xfe}, 256)}.MarshalJSON()
		ndjson = append(append(ndjson, line...), '\n')
	}
	body := &resettableBody{}
	req := httptest.NewRequest("POST", "http://127.0.0.1/v1/queues/bench/batch", nil)
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Body, req.ContentLength = body, int64(len(ndjson))
	dw := &discardWriter{h: http.Header{}}
	allocs := testing.AllocsPerRun(20, func() {
		body.Reset(ndjson)
		clear(dw.h)
		s.ServeHTTP(dw, req)
		if dw.code != http.StatusCreated {
			t.Fatalf("status %d", dw.code)
		}
	})
	if allocs > 240 {
		t.Errorf("%.0f allocations for a batch of 100, want at most 240", allocs)
	}
}

// TestBatchAnswer: the hand-encoded answer of a batch is what
// encoding/json makes of BatchResponse.
func TestBatchAnswer(t *testing.T) {
	res := []job.Result{
		{ID: 0x0123456789abcdef, State: job.StateReady, Durable: true},
		{ID: 1, State: job.StateDelayed, Duplicate: true},
		{ID: ^job.ID(0), State: job.State(200)},
	}
	want := BatchResponse{Jobs: []BatchResult{}}
	for _, r := range res {
		want.Jobs = append(want.Jobs, BatchResult{ID: r.ID.String(), State: r.State.String(), Durable: r.Durable, Duplicate: r.Duplicate})
	}
	wantJSON, _ := json.Marshal(want)
	if got := appendBatchAnswer(nil, res); string(got) != string(wantJSON)+"\n" {
		t.Errorf("batch answer\n got %s\nwant %s", got, wantJSON)
	}
}
