package uplink

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// line is one NDJSON line of an http uplink's body.
type line struct {
	ID          string            `json:"id"`
	Queue       string            `json:"queue"`
	Headers     map[string]string `json:"headers"`
	ContentType string            `json:"content_type"`
	Payload     json.RawMessage   `json:"payload"`
	PayloadB64  []byte            `json:"payload_b64"`
}

// request is one POST the collector received, its body decoded.
type request struct {
	at     time.Time
	header http.Header
	raw    int // body bytes on the wire
	lines  []line
}

// collector is an httptest server that decodes the uplink's batches;
// answer (nil: 200) chooses each answer from the request's number (from
// 0) and its lines.
type collector struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []request // guarded by mu
	answer func(n int, lines []line, w http.ResponseWriter) bool
}

func newCollector(t *testing.T, answer func(n int, lines []line, w http.ResponseWriter) bool) *collector {
	t.Helper()
	c := &collector{answer: answer}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(c.serve(t)))
	return c
}

func (c *collector) start(t *testing.T) *collector {
	t.Helper()
	c.srv.Start()
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) serve(t *testing.T) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		body, err := decodeBody(r.Header.Get("Content-Encoding"), raw)
		if err != nil {
			t.Errorf("decode %s body: %v", r.Header.Get("Content-Encoding"), err)
			w.WriteHeader(400)
			return
		}
		var lines []line
		for l := range strings.Lines(string(body)) {
			var ln line
			if err := json.Unmarshal([]byte(l), &ln); err != nil {
				t.Errorf("line %q: %v", l, err)
			}
			lines = append(lines, ln)
		}
		c.mu.Lock()
		n := len(c.reqs)
		c.reqs = append(c.reqs, request{at: time.Now(), header: r.Header.Clone(), raw: len(raw), lines: lines})
		c.mu.Unlock()
		if c.answer == nil || !c.answer(n, lines, w) {
			w.WriteHeader(200)
		}
	}
}

func decodeBody(enc string, raw []byte) ([]byte, error) {
	switch enc {
	case "":
		return raw, nil
	case "gzip":
		r, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(r)
	case "zstd":
		d, err := zstd.NewReader(nil)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return d.DecodeAll(raw, nil)
	}
	return nil, fmt.Errorf("unknown encoding %q", enc)
}

func (c *collector) requests() []request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.reqs)
}

// ids answers how often each job id arrived.
func (c *collector) ids() map[string]int {
	ids := map[string]int{}
	for _, r := range c.requests() {
		for _, l := range r.lines {
			ids[l.ID]++
		}
	}
	return ids
}

// TestHTTPBatchBodies: concurrent jobs go out as few POSTs of NDJSON,
// compressed as asked with Content-Encoding; each line carries the job's
// id, queue, headers and payload (JSON inline, else base64); the token
// file and the configured headers reach the collector.
func TestHTTPBatchBodies(t *testing.T) {
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, enc := range []string{"", "gzip", "zstd"} {
		t.Run(cmpStr(enc, "none"), func(t *testing.T) {
			c := newCollector(t, nil).start(t)
			u := startHTTPUplink(t, Config{URL: c.srv.URL + "/ingest", Compress: enc, TokenFile: token,
				Headers: map[string]string{"X-Site": "site-42"}, Batch: Batch{MaxJobs: 50, Linger: 200 * time.Millisecond}})
			var jobs []*job.Job
			for i := range 40 {
				if i%2 == 0 {
					j := newJob("telemetry", fmt.Appendf(nil, `{"n":%d,"unit":"celsius","value":21.5}`, i))
					j.ContentType = "application/json"
					jobs = append(jobs, j)
				} else {
					jobs = append(jobs, newJob("raw", []byte{0, 1, 2, byte(i)}))
				}
			}
			for i, o := range handleAll(u.Handler(job.ClassNormal), jobs) {
				if o.Verdict != engine.Ack {
					t.Fatalf("job %d: %+v, want ack", i, o)
				}
			}
			reqs := c.requests()
			if len(reqs) == 0 || len(reqs) > 4 {
				t.Fatalf("%d requests for 40 concurrent jobs, want a few batches", len(reqs))
			}
			byID := map[string]line{}
			for _, r := range reqs {
				h := r.header
				if h.Get("Content-Encoding") != enc || h.Get("Content-Type") != "application/x-ndjson" ||
					h.Get("Authorization") != "Bearer s3cret" || h.Get("X-Site") != "site-42" || h.Get(HeaderBatch) == "" {
					t.Errorf("request headers %v", h)
				}
				if got, want := h.Get(HeaderBatch), fmt.Sprintf("%s-%d", r.lines[0].ID, len(r.lines)); got != want {
					t.Errorf("%s = %q, want %q", HeaderBatch, got, want)
				}
				for _, l := range r.lines {
					byID[l.ID] = l
				}
			}
			for _, j := range jobs {
				l, ok := byID[j.ID.String()]
				switch {
				case !ok:
					t.Fatalf("job %s never arrived", j.ID)
				case l.Queue != j.Queue || l.Headers["Sensor"] != "t1" || l.ContentType != j.ContentType:
					t.Errorf("line %+v for job %+v", l, j)
				case j.ContentType == "application/json" && (string(l.Payload) != string(j.Payload) || l.PayloadB64 != nil):
					t.Errorf("JSON payload arrived as %s / %q, want %s inline", l.Payload, l.PayloadB64, j.Payload)
				case j.ContentType == "" && (!bytes.Equal(l.PayloadB64, j.Payload) || l.Payload != nil):
					t.Errorf("binary payload arrived as %s / %v, want %v in payload_b64", l.Payload, l.PayloadB64, j.Payload)
				}
			}
			st := u.Stats()
			if st.JobsSent != 40 || st.Type != "http" || !st.Connected {
				t.Errorf("stats %+v", st)
			}
			wire := 0
			for _, r := range reqs {
				wire += r.raw
			}
			if enc == "" && st.Compression != 1 || enc != "" && (st.Compression >= 0.8 || st.Compression <= 0) {
				t.Errorf("compression ratio %.2f with %q (%d bytes on the wire)", st.Compression, enc, wire)
			}
		})
	}
}

// TestHTTPPartialFailure: a 207 naming failed jobs acks exactly the
// others; the failed ones spend an attempt.
func TestHTTPPartialFailure(t *testing.T) {
	var failed []string
	c := newCollector(t, func(n int, lines []line, w http.ResponseWriter) bool {
		failed = []string{lines[1].ID, lines[3].ID}
		w.WriteHeader(207)
		json.NewEncoder(w).Encode(map[string]any{"failed": failed})
		return true
	}).start(t)
	u := startHTTPUplink(t, Config{URL: c.srv.URL, Batch: Batch{MaxJobs: 5, Linger: time.Second}})
	jobs := []*job.Job{newJob("q", []byte("a")), newJob("q", []byte("b")), newJob("q", []byte("c")), newJob("q", []byte("d")), newJob("q", []byte("e"))}
	out := handleAll(u.Handler(job.ClassNormal), jobs)
	if len(c.requests()) != 1 {
		t.Fatalf("%d requests, want 1", len(c.requests()))
	}
	for i, j := range jobs {
		o := out[i]
		if j.ID.String() == failed[0] || j.ID.String() == failed[1] {
			if o.Verdict != engine.Retry || o.Unreached || !strings.Contains(o.Error, "collector") {
				t.Errorf("failed job %s: %+v, want a retry that spends an attempt", j.ID, o)
			}
		} else if o.Verdict != engine.Ack {
			t.Errorf("job %s: %+v, want ack", j.ID, o)
		}
	}
	if st := u.Stats(); st.JobsSent != 3 || st.JobsFailed != 2 {
		t.Errorf("stats sent %d failed %d, want 3 and 2", st.JobsSent, st.JobsFailed)
	}
}

// TestHTTPStatusOutcomes: what each answer means for the batch's jobs.
func TestHTTPStatusOutcomes(t *testing.T) {
	for _, tc := range []struct {
		code      int
		unreached bool
	}{
		{400, false}, {401, false}, {413, false}, {500, false},
		{408, true}, {429, true}, {502, true}, {503, true}, {504, true},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			c := newCollector(t, func(int, []line, http.ResponseWriter) bool { return false })
			c.answer = func(_ int, _ []line, w http.ResponseWriter) bool { w.WriteHeader(tc.code); return true }
			c.start(t)
			u := startHTTPUplink(t, Config{URL: c.srv.URL, Batch: Batch{Linger: time.Millisecond}})
			o := u.Handler(job.ClassNormal).Handle(t.Context(), newJob("q", []byte("x")))
			if o.Verdict != engine.Retry || o.Unreached != tc.unreached || !strings.Contains(o.Error, fmt.Sprint(tc.code)) {
				t.Errorf("answer %d: %+v, want a retry, unreached %v, naming the status", tc.code, o, tc.unreached)
			}
			if st := u.Stats(); st.Connected == tc.unreached {
				t.Errorf("answer %d: connected %v", tc.code, st.Connected)
			}
		})
	}
}

// TestHTTP429Paces: a 429 with Retry-After holds the uplink back for that
// long: calls meanwhile are answered unreached without a request, and the
// next request comes after it.
func TestHTTP429Paces(t *testing.T) {
	c := newCollector(t, func(n int, _ []line, w http.ResponseWriter) bool {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			return true
		}
		return false
	}).start(t)
	u := startHTTPUplink(t, Config{URL: c.srv.URL, Batch: Batch{Linger: time.Millisecond}})
	h := u.Handler(job.ClassNormal)
	j := newJob("q", []byte("x"))
	if o := h.Handle(t.Context(), j); o.Verdict != engine.Retry || !o.Unreached {
		t.Fatalf("after 429: %+v, want unreached", o)
	}
	if o := h.Handle(t.Context(), j); o.Verdict != engine.Retry || !o.Unreached {
		t.Fatalf("right after 429: %+v, want unreached", o)
	}
	if n := len(c.requests()); n != 1 {
		t.Fatalf("%d requests within Retry-After, want 1", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.Handle(t.Context(), j).Verdict != engine.Ack {
		if time.Now().After(deadline) {
			t.Fatal("never acked after Retry-After")
		}
		time.Sleep(50 * time.Millisecond)
	}
	reqs := c.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	if gap := reqs[1].at.Sub(reqs[0].at); gap < 900*time.Millisecond {
		t.Errorf("second request %v after the 429, want Retry-After (1s)", gap)
	}
}

// TestHTTPCollectorDownThenBack: the collector drops every connection for
// a while under continuous ingest, then answers again; no job goes dead
// and every job arrives.
func TestHTTPCollectorDownThenBack(t *testing.T) {
	var mu sync.Mutex
	down := false
	c := newCollector(t, nil)
	inner := c.srv.Config.Handler
	c.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		d := down
		mu.Unlock()
		if d {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		inner.ServeHTTP(w, r)
	})
	c.start(t)
	u := startHTTPUplink(t, Config{URL: c.srv.URL, Compress: "zstd", Timeout: time.Second, Batch: Batch{MaxJobs: 20, Linger: 5 * time.Millisecond}})
	e := startEngine(t, u, job.ClassNormal)

	enqueued := map[string]bool{}
	ingest := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			res, err := e.EnqueueBatch(t.Context(), "telemetry", []job.New{{Payload: []byte("r")}, {Payload: []byte("r")}})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				enqueued[r.ID.String()] = true
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	ingest(300 * time.Millisecond)
	mu.Lock()
	down = true
	mu.Unlock()
	ingest(time.Second)
	if st := u.Stats(); st.Connected || st.DownSince.IsZero() {
		t.Errorf("while the collector drops connections: %+v, want down", st)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	ingest(300 * time.Millisecond)
	st := waitDrained(t, e, "telemetry", 30*time.Second)
	if st.Dead != 0 || st.Ready+st.Delayed+st.Leased != 0 {
		t.Fatalf("after the outage: %+v, want every job sent, none dead", st)
	}
	got := c.ids()
	for id := range enqueued {
		if got[id] == 0 {
			t.Fatalf("job %s never arrived (%d of %d did)", id, len(got), len(enqueued))
		}
	}
	if u.Stats().Reconnects == 0 {
		t.Error("no recovery counted")
	}
}

// TestHTTPMutualTLS: the collector wants a client certificate signed by
// its CA; without one the uplink never gets in, with one its jobs are
// acked.
func TestHTTPMutualTLS(t *testing.T) {
	p := newPKI(t)
	scert, skey := p.issue(t, "server", x509.ExtKeyUsageServerAuth)
	ccert, ckey := p.issue(t, "client", x509.ExtKeyUsageClientAuth)
	pair, err := tls.LoadX509KeyPair(scert, skey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	c := newCollector(t, nil)
	c.srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	c.srv.Config.ErrorLog = nil
	c.srv.StartTLS()
	t.Cleanup(c.srv.Close)

	u := startHTTPUplink(t, Config{URL: c.srv.URL, TLS: TLSFiles{CA: p.caPath}, Batch: Batch{Linger: time.Millisecond}})
	if o := u.Handler(job.ClassNormal).Handle(t.Context(), newJob("q", []byte("x"))); o.Verdict != engine.Retry || !o.Unreached {
		t.Fatalf("without a client certificate: %+v, want unreached", o)
	}
	u = startHTTPUplink(t, Config{URL: c.srv.URL, TLS: TLSFiles{CA: p.caPath, Cert: ccert, Key: ckey}, Batch: Batch{Linger: time.Millisecond}})
	if o := u.Handler(job.ClassNormal).Handle(t.Context(), newJob("q", []byte("x"))); o.Verdict != engine.Ack {
		t.Fatalf("over mutual TLS: %+v, want ack", o)
	}
	if n := len(c.ids()); n != 1 {
		t.Errorf("collector holds %d jobs, want 1", n)
	}
}

// TestHTTPConfigErrors: bad settings are refused, naming the key.
func TestHTTPConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Type: "http"}, "url: required"},
		{Config{Type: "http", URL: "ftp://x"}, "url:"},
		{Config{Type: "http", URL: "http://x", Compress: "lz4"}, "compress:"},
		{Config{Type: "http", URL: "http://x", Stream: "EDGE"}, "stream: not used by http uplinks"},
		{Config{Type: "nats", URL: "nats://x", Stream: "S", Subject: "s", Compress: "gzip"}, "compress: not used by nats uplinks"},
		{Config{Type: "nats", URL: "nats://x", Stream: "S", Subject: "s", TokenFile: "/t"}, "token_file: not used by nats uplinks"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := New(Config{Name: "c", Type: "http", URL: "http://127.0.0.1:1", TokenFile: filepath.Join(t.TempDir(), "none")}); err == nil || !strings.Contains(err.Error(), "token_file") {
		t.Errorf("missing token file: %v", err)
	}
}
