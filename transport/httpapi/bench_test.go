package httpapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

var benchSizes = []int{64, 1 << 10, 64 << 10}

// resettableBody is a request body that can be rewound between iterations.
type resettableBody struct{ bytes.Reader }

func (*resettableBody) Close() error { return nil }

// discardWriter is the cheapest ResponseWriter: it isolates the handler's
// own cost from httptest.ResponseRecorder's.
type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }

// BenchmarkEnqueueHandler measures the per-request overhead of
// POST /v1/queues/{q}/jobs in the handler alone (no network, a fake engine
// that stores nothing). Run:
//
//	go test -run x -bench EnqueueHandler -benchmem ./transport/httpapi/
func BenchmarkEnqueueHandler(b *testing.B) {
	eng := newFakeEngine()
	eng.discard = true
	s, err := New(Config{}, eng)
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	for _, w := range []string{"recorder", "discard"} {
		for _, size := range benchSizes {
			b.Run(w+"/"+strconv.Itoa(size), func(b *testing.B) {
				payload := bytes.Repeat([]byte("x"), size)
				body := &resettableBody{}
				req := httptest.NewRequest("POST", "http://127.0.0.1/v1/queues/bench/jobs?ttr=30s", nil)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Edgeq-Header-Trace-Id", "abc")
				req.Body, req.ContentLength = body, int64(size)
				dw := &discardWriter{h: http.Header{}}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					body.Reset(payload)
					if w == "recorder" {
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, req)
						if rec.Code != http.StatusCreated {
							b.Fatalf("status %d: %s", rec.Code, rec.Body)
						}
						continue
					}
					clear(dw.h)
					h.ServeHTTP(dw, req)
					if dw.code != http.StatusCreated {
						b.Fatalf("status %d", dw.code)
					}
				}
			})
		}
	}
}

// BenchmarkEnqueueLoopback measures whole enqueues through Client and a real
// listener on 127.0.0.1 (fake engine), many at a time: the HTTP ceiling of
// the daemon on this host. Run:
//
//	go test -run x -bench EnqueueLoopback -benchmem -cpu 2 ./transport/httpapi/
func BenchmarkEnqueueLoopback(b *testing.B) {
	ts := mustStartServer(b, Config{})
	ts.eng.with(func(f *fakeEngine) { f.discard = true })
	c := ts.client(b, "")
	payload := bytes.Repeat([]byte("x"), 64)
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Enqueue(b.Context(), "bench", payload, EnqueueOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkEnqueueBatchHandler measures POST /v1/queues/{q}/batch of 100
// jobs of 256 random bytes (as `edgeq bench --batch 100` sends them) in the
// handler alone, fake engine; ns/op and allocs/op are per batch. Run:
//
//	go test -run x -bench EnqueueBatchHandler -benchmem ./transport/httpapi/
func BenchmarkEnqueueBatchHandler(b *testing.B) {
	eng := newFakeEngine()
	eng.discard = true
	s, err := New(Config{}, eng)
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	payload := make([]byte, 256)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	var ndjson []byte
	for range 100 {
		line, _ := BatchLine{Payload: payload}.MarshalJSON()
		ndjson = append(append(ndjson, line...), '\n')
	}
	body := &resettableBody{}
	req := httptest.NewRequest("POST", "http://127.0.0.1/v1/queues/bench/batch", nil)
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Body, req.ContentLength = body, int64(len(ndjson))
	dw := &discardWriter{h: http.Header{}}
	b.SetBytes(int64(len(ndjson)))
	b.ReportAllocs()
	for b.Loop() {
		body.Reset(ndjson)
		clear(dw.h)
		h.ServeHTTP(dw, req)
		if dw.code != http.StatusCreated {
			b.Fatalf("status %d", dw.code)
		}
	}
}
