package native

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
	"github.com/edgeq/edgeq/engine/store"
	"github.com/edgeq/edgeq/transport/httpapi"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The real engine satisfies the interface this package declares.
var _ Engine = (*engine.Engine)(nil)

// stack is a real engine on the in-memory store served by both the HTTP
// API and the native protocol (TCP and unix socket).
type stack struct {
	eng    *engine.Engine
	http   *httpapi.Server
	srv    *Server
	base   string // the HTTP API's URL
	tcp    string // native://127.0.0.1:port
	unix   string // unix:///path
	token  string
	client *Client // over TCP, with the token
}

// startStack starts a stack; the servers shut down, then the engine stops,
// when the test ends (or earlier, by stop).
func startStack(t *testing.T, ec engine.Config, token string) *stack {
	t.Helper()
	return startStackOn(t, ec, token, memstore.New(), nil)
}

// servedEngine is what both servers of a stack are given.
type servedEngine interface {
	httpapi.Engine
	Engine
}

// startStackOn starts a stack on st; wrap, when set, is what both servers
// are given instead of the engine itself.
func startStackOn(t *testing.T, ec engine.Config, token string, ss store.Store, wrap func(*engine.Engine) servedEngine) *stack {
	t.Helper()
	eng, err := engine.New(ec, ss)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eng.Stop(context.Background()); err != nil {
			t.Errorf("engine Stop: %v", err)
		}
	})
	var served servedEngine = eng
	if wrap != nil {
		served = wrap(eng)
	}
	hs, err := httpapi.New(httpapi.Config{Addr: "127.0.0.1:0", Token: token, MaxPayload: 64 << 10}, served)
	if err != nil {
		t.Fatal(err)
	}
	if err := hs.Start(); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(shortTempDir(t), "edgeq.sock")
	ns, err := New(Config{Listen: "127.0.0.1:0", Socket: sock, Token: token, MaxPayload: 64 << 10}, served)
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.Start(); err != nil {
		t.Fatal(err)
	}
	st := &stack{eng: eng, http: hs, srv: ns, base: "http://" + hs.Addr().String(),
		tcp: "native://" + ns.Addr().String(), unix: "unix://" + sock, token: token}
	st.client = st.newClient(t, st.tcp, token)
	t.Cleanup(st.stop)
	return st
}

func (st *stack) stop() {
	st.client.Close()
	_ = st.srv.Shutdown(context.Background())
	_ = st.http.Shutdown(context.Background())
}

func (st *stack) newClient(t *testing.T, addr, token string) *Client {
	t.Helper()
	c, err := NewClient(addr, ClientConfig{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// shortTempDir is a temporary directory with a path short enough for a
// unix socket (108 bytes on Linux), which t.TempDir's may not be.
func shortTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "eq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// httpRefusal sends a raw request to the HTTP API and answers its refusal.
func (st *stack) httpRefusal(t *testing.T, path, ctype string, body string, hdr ...string) *httpapi.APIError {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, st.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if st.token != "" {
		req.Header.Set("Authorization", "Bearer "+st.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e httpapi.ErrorResponse
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 400 {
		t.Fatalf("POST %s: %d %s, want a refusal", path, resp.StatusCode, b)
	}
	if err := jsonUnmarshal(b, &e); err != nil {
		t.Fatalf("POST %s: %d %s: %v", path, resp.StatusCode, b, err)
	}
	return &httpapi.APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message,
		RetryAfter: time.Duration(e.Error.RetryAfterS) * time.Second}
}

// nativeRefusal sends a raw request over the native protocol and answers
// its refusal.
func (st *stack) nativeRefusal(t *testing.T, op byte, target string, ps []param, data []byte) *httpapi.APIError {
	t.Helper()
	_, err := st.client.call(t.Context(), op, target, ps, data)
	var ae *httpapi.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("op %d %q %v: %v, want a refusal", op, target, ps, err)
	}
	return ae
}

// enqueueAndLease enqueues a job into q and leases it.
func (st *stack) enqueueAndLease(t *testing.T, q string) httpapi.Job {
	t.Helper()
	if _, err := st.client.Enqueue(t.Context(), q, []byte("x"), httpapi.EnqueueOptions{}); err != nil {
		t.Fatal(err)
	}
	jobs, err := st.client.Lease(t.Context(), q, 1, 0, 0)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("lease: %v %v", jobs, err)
	}
	return jobs[0]
}

func acksData(pairs ...string) []byte {
	b := binary.AppendUvarint(nil, uint64(len(pairs)/2))
	for _, s := range pairs {
		b = appendStr(b, s)
	}
	return b
}

func batchData(jobs ...[]param) []byte {
	b := binary.AppendUvarint(nil, uint64(len(jobs)))
	for _, ps := range jobs {
		b = appendParams(b, ps)
		b = appendBytes(b, []byte(`{"a":1}`))
	}
	return b
}

// TestRefusalsMatchHTTP holds every refusal the HTTP API answers for the
// job operations equal, code, message and retry hint, on the native
// protocol, against the real engine.
func TestRefusalsMatchHTTP(t *testing.T) {
	st := startStack(t, engine.Config{
		StrictQueues: true,
		Queues: map[string]engine.QueueConfig{
			"q":    {},
			"full": {MaxDepth: 1},
			"slow": {Rate: 0.001, Burst: 1},
			"bulk": {Class: job.ClassBulk},
		},
	}, "s3cret")
	ctx := t.Context()
	if _, err := st.client.Enqueue(ctx, "full", nil, httpapi.EnqueueOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.client.Enqueue(ctx, "slow", nil, httpapi.EnqueueOptions{}); err != nil {
		t.Fatal(err)
	}
	leased := st.enqueueAndLease(t, "q")
	missing := "00000000000fffff"
	big := strings.Repeat("x", 64<<10+1)
	const nd = "application/x-ndjson"
	jsonT := "application/json"

	// field, when set, is the field the native message names where the
	// HTTP one names the HTTP form of it (body, line N, query parameter);
	// otherwise the messages are equal.
	for _, tc := range []struct {
		name  string
		code  string
		field string
		http  func() *httpapi.APIError
		nat   func() *httpapi.APIError
	}{
		{"unknown enqueue option", "invalid_argument", "dealy",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/queues/q/jobs?dealy=1s", "", "x") },
			func() *httpapi.APIError { return st.nativeRefusal(t, opEnqueue, "q", []param{{"dealy", "1s"}}, nil) }},
		{"bad delay", "invalid_argument", "",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/queues/q/jobs?delay=soon", "", "x") },
			func() *httpapi.APIError { return st.nativeRefusal(t, opEnqueue, "q", []param{{"delay", "soon"}}, nil) }},
		{"delay and run_at", "invalid_argument", "",
			func() *httpapi.APIError {
				return st.httpRefusal(t, "/v1/queues/q/jobs?delay=1s&run_at=2030-01-01T00:00:00Z", "", "x")
			},
			func() *httpapi.APIError {
				return st.nativeRefusal(t, opEnqueue, "q", []param{{"delay", "1s"}, {"run_at", "2030-01-01T00:00:00Z"}}, nil)
			}},
		{"bad max_attempts", "invalid_argument", "",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/queues/q/jobs?max_attempts=-1", "", "x") },
			func() *httpapi.APIError {
				return st.nativeRefusal(t, opEnqueue, "q", []param{{"max_attempts", "-1"}}, nil)
			}},
		{"bad expires_at", "invalid_argument", "",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/queues/q/jobs?expires_at=tomorrow", "", "x") },
			func() *httpapi.APIError {
				return st.nativeRefusal(t, opEnqueue, "q", []param{{"expires_at", "tomorrow"}}, nil)
			}},
		{"invalid queue", "invalid_queue", "",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/queues/a%20b/jobs", "", "x") },
			func() *httpapi.APIError { return st.nativeRefusal(t, opEnqueue, "a b", nil, nil) }},
		{"unknown queue", "unknown_queue", "",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/queues/nope/jobs", "", "x") },
			func() *httpapi.APIError { return st.nativeRefusal(t, opEnqueue, "nope", nil, nil) }},
		{"payload too large", "payload_too_large", "payload",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/queues/q/jobs", "", big) },
			func() *httpapi.APIError { return st.nativeRefusal(t, opEnqueue, "q", nil, []byte(big)) }},
		{"queue full", "queue_full", "",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/queues/full/jobs", "", "x") },
			func() *httpapi.APIError { return st.nativeRefusal(t, opEnqueue, "full", nil, nil) }},
		{"rate limited", "rate_limited", "",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/queues/slow/jobs", "", "x") },
			func() *httpapi.APIError { return st.nativeRefusal(t, opEnqueue, "slow", nil, nil) }},
		{"batch bad option", "invalid_argument", "jobs[0]",
			func() *httpapi.APIError {
				return st.httpRefusal(t, "/v1/queues/q/batch", nd, `{"payload":{"a":1},"ttr":"soon"}`)
			},
			func() *httpapi.APIError {
				return st.nativeRefusal(t, opBatch, "q", nil, batchData([]param{{"ttr", "soon"}}))
			}},
		{"batch full", "queue_full", "",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/queues/full/batch", nd, `{"payload":{"a":1}}`) },
			func() *httpapi.APIError { return st.nativeRefusal(t, opBatch, "full", nil, batchData(nil)) }},
		{"lease bad max", "invalid_argument", "",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/queues/q/lease?max=101", "", "") },
			func() *httpapi.APIError { return st.nativeRefusal(t, opLease, "q", []param{{"max", "101"}}, nil) }},
		{"lease long wait", "invalid_argument", "",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/queues/q/lease?wait=61s", "", "") },
			func() *httpapi.APIError { return st.nativeRefusal(t, opLease, "q", []param{{"wait", "61s"}}, nil) }},
		{"lease unknown queue", "unknown_queue", "",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/queues/nope/lease", "", "") },
			func() *httpapi.APIError { return st.nativeRefusal(t, opLease, "nope", nil, nil) }},
		{"ack bad id", "invalid_argument", "",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/jobs/xyz/ack?lease=l", "", "") },
			func() *httpapi.APIError { return st.nativeRefusal(t, opAck, "xyz", []param{{"lease", "l"}}, nil) }},
		{"ack without lease", "invalid_argument", "lease",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/jobs/"+missing+"/ack", "", "") },
			func() *httpapi.APIError { return st.nativeRefusal(t, opAck, missing, nil, nil) }},
		{"ack not found", "not_found", "",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/jobs/"+missing+"/ack?lease=l", "", "") },
			func() *httpapi.APIError { return st.nativeRefusal(t, opAck, missing, []param{{"lease", "l"}}, nil) }},
		{"ack lease lost", "lease_lost", "",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/jobs/"+leased.ID+"/ack?lease=wrong", "", "") },
			func() *httpapi.APIError {
				return st.nativeRefusal(t, opAck, leased.ID, []param{{"lease", "wrong"}}, nil)
			}},
		{"nack bad delay", "invalid_argument", "",
			func() *httpapi.APIError {
				return st.httpRefusal(t, "/v1/jobs/"+leased.ID+"/nack?lease=l&delay=-1s", "", "")
			},
			func() *httpapi.APIError {
				return st.nativeRefusal(t, opNack, leased.ID, []param{{"lease", "l"}, {"delay", "-1s"}}, nil)
			}},
		{"nack lease lost", "lease_lost", "",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/jobs/"+leased.ID+"/nack?lease=wrong", "", "") },
			func() *httpapi.APIError {
				return st.nativeRefusal(t, opNack, leased.ID, []param{{"lease", "wrong"}}, nil)
			}},
		{"fail not found", "not_found", "",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/jobs/"+missing+"/fail?lease=l", "", "") },
			func() *httpapi.APIError { return st.nativeRefusal(t, opFail, missing, []param{{"lease", "l"}}, nil) }},
		{"extend bad ttr", "invalid_argument", "",
			func() *httpapi.APIError {
				return st.httpRefusal(t, "/v1/jobs/"+leased.ID+"/extend?lease=l&ttr=x", "", "")
			},
			func() *httpapi.APIError {
				return st.nativeRefusal(t, opExtend, leased.ID, []param{{"lease", "l"}, {"ttr", "x"}}, nil)
			}},
		{"extend lease lost", "lease_lost", "",
			func() *httpapi.APIError {
				return st.httpRefusal(t, "/v1/jobs/"+leased.ID+"/extend?lease=wrong", "", "")
			},
			func() *httpapi.APIError {
				return st.nativeRefusal(t, opExtend, leased.ID, []param{{"lease", "wrong"}}, nil)
			}},
		{"acks none", "invalid_argument", "acks",
			func() *httpapi.APIError { return st.httpRefusal(t, "/v1/acks", jsonT, `{"acks":[]}`) },
			func() *httpapi.APIError { return st.nativeRefusal(t, opAcks, "", nil, acksData()) }},
		{"acks bad id", "invalid_argument", "",
			func() *httpapi.APIError {
				return st.httpRefusal(t, "/v1/acks", jsonT, `{"acks":[{"id":"xyz","lease":"l"}]}`)
			},
			func() *httpapi.APIError { return st.nativeRefusal(t, opAcks, "", nil, acksData("xyz", "l")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, n := tc.http(), tc.nat()
			if h.Code != tc.code {
				t.Fatalf("HTTP answered %s %q, want %s", h.Code, h.Message, tc.code)
			}
			sameMsg := n.Message == h.Message
			if tc.field != "" {
				sameMsg = strings.HasPrefix(n.Message, tc.field+": ")
			}
			if n.Code != h.Code || !sameMsg || n.RetryAfter != h.RetryAfter || n.Status != h.Status {
				t.Errorf("native answered %d %s %q retry %s,\nHTTP answered %d %s %q retry %s",
					n.Status, n.Code, n.Message, n.RetryAfter, h.Status, h.Code, h.Message, h.RetryAfter)
			}
		})
	}

	t.Run("shed", func(t *testing.T) {
		st.eng.SetLevel(job.LevelCritical)
		defer st.eng.SetLevel(job.LevelNormal)
		h := st.httpRefusal(t, "/v1/queues/bulk/jobs", "", "x")
		n := st.nativeRefusal(t, opEnqueue, "bulk", nil, nil)
		if h.Code != "shed" || n.Code != h.Code || n.Message != h.Message || n.RetryAfter != h.RetryAfter {
			t.Errorf("native %s %q %s, HTTP %s %q %s", n.Code, n.Message, n.RetryAfter, h.Code, h.Message, h.RetryAfter)
		}
	})
	t.Run("acks answer each", func(t *testing.T) {
		j := st.enqueueAndLease(t, "q")
		errs, err := st.client.Acks(ctx, []httpapi.AckItem{{ID: j.ID, Lease: "wrong"}, {ID: missing, Lease: "l"}, {ID: j.ID, Lease: j.Lease.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(errs[0], job.ErrLeaseLost) || !errors.Is(errs[1], job.ErrNotFound) || errs[2] != nil {
			t.Errorf("acks = %v, want lease_lost, not_found, acked", errs)
		}
	})
}

func jsonUnmarshal(b []byte, v any) error { return jsonDecode(b, v) }

// TestAuth: TCP needs the HTTP API's token in a hello; the unix socket's
// file mode is its access control.
func TestAuth(t *testing.T) {
	st := startStack(t, engine.Config{}, "s3cret")
	ctx := t.Context()
	for _, tc := range []struct {
		name, addr, token, want string
	}{
		{"tcp without token", st.tcp, "", "hello without a token"},
		{"tcp wrong token", st.tcp, "guess", "wrong token"},
		{"tcp right token", st.tcp, "s3cret", ""},
		{"unix without token", st.unix, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := st.newClient(t, tc.addr, tc.token)
			_, err := c.Enqueue(ctx, "q", []byte("x"), httpapi.EnqueueOptions{})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("enqueue: %v", err)
				}
				return
			}
			var ae *httpapi.APIError
			if !errors.As(err, &ae) || ae.Code != "unauthorized" || ae.Message != tc.want || ae.Status != http.StatusUnauthorized {
				t.Fatalf("enqueue: %v, want unauthorized: %s", err, tc.want)
			}
		})
	}
	t.Run("tcp request before hello", func(t *testing.T) {
		nc, err := net.Dial("tcp", strings.TrimPrefix(st.tcp, "native://"))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if _, err := nc.Write(appendRequest(nil, opEnqueue, "q", nil, []byte("x"))); err != nil {
			t.Fatal(err)
		}
		code, msg := readErrorFrame(t, nc)
		if code != "unauthorized" || msg != "send a hello with the token first" {
			t.Errorf("answer %s %q", code, msg)
		}
		if _, err := nc.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("after the refusal: %v, want the connection closed", err)
		}
	})
	t.Run("socket mode", func(t *testing.T) {
		fi, err := os.Stat(strings.TrimPrefix(st.unix, "unix://"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
			t.Errorf("socket mode %v, want 0660 socket", fi.Mode())
		}
	})
}

// readErrorFrame reads one answer frame from nc and wants it an error.
func readErrorFrame(t *testing.T, nc net.Conn) (code, msg string) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var hdr [frameHeader]byte
	n, err := readFrameLen(nc, &hdr, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	f := make([]byte, n)
	if _, err := io.ReadFull(nc, f); err != nil {
		t.Fatal(err)
	}
	if f[0] != statusError {
		t.Fatalf("answer status %d, want an error", f[0])
	}
	var ae *httpapi.APIError
	if !errors.As(decodeError(f[1:]), &ae) {
		t.Fatalf("undecodable error frame %q", f)
	}
	return ae.Code, ae.Message
}

// TestMaxFrame: a frame above max_frame is refused, naming it, and the
// connection closed; the server keeps serving others.
func TestMaxFrame(t *testing.T) {
	st := startStack(t, engine.Config{}, "")
	nc, err := net.Dial("tcp", strings.TrimPrefix(st.tcp, "native://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	hdr := binary.BigEndian.AppendUint32(nil, uint32(st.srv.MaxFrame()+1))
	if _, err := nc.Write(append(hdr, opEnqueue, 0, 0)); err != nil {
		t.Fatal(err)
	}
	code, msg := readErrorFrame(t, nc)
	if want := "frame: 1048577 bytes, above max_frame 1048576"; code != "payload_too_large" || msg != want {
		t.Errorf("answer %s %q, want payload_too_large %q", code, msg, want)
	}
	if _, err := st.client.Enqueue(t.Context(), "q", nil, httpapi.EnqueueOptions{}); err != nil {
		t.Errorf("another connection: %v", err)
	}
}

// TestJobOperations runs each operation with every option over the unix
// socket and checks what the engine holds and answers.
func TestJobOperations(t *testing.T) {
	st := startStack(t, engine.Config{}, "")
	c := st.newClient(t, st.unix, "")
	ctx := t.Context()
	runAt := time.Now().Add(-time.Second).UTC().Truncate(time.Second)
	res, err := c.Enqueue(ctx, "ops", []byte(`{"n":1}`), httpapi.EnqueueOptions{
		Key: "k1", RunAt: runAt, MaxAttempts: 3, TTR: 30 * time.Second, ExpiresIn: time.Hour,
		ContentType: "application/json", Headers: map[string]string{"Trace-Id": "abc"},
	})
	if err != nil || !res.Durable || res.Duplicate || res.Queue != "ops" || res.State != "ready" {
		t.Fatalf("enqueue = %+v, %v", res, err)
	}
	dup, err := c.Enqueue(ctx, "ops", []byte("again"), httpapi.EnqueueOptions{Key: "k1"})
	if err != nil || !dup.Duplicate || dup.ID != res.ID {
		t.Fatalf("duplicate = %+v, %v", dup, err)
	}
	br, err := c.EnqueueBatch(ctx, "ops", []httpapi.BatchLine{{Payload: []byte("a")}, {Payload: []byte("b"), EnqueueOptions: httpapi.EnqueueOptions{Delay: time.Hour}}})
	if err != nil || len(br) != 2 || br[0].State != "ready" || br[1].State != "delayed" {
		t.Fatalf("batch = %+v, %v", br, err)
	}
	jobs, err := c.Lease(ctx, "ops", 10, time.Second, 45*time.Second)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("lease = %+v, %v", jobs, err)
	}
	j := jobs[0]
	if j.ID != res.ID || string(j.Payload) != `{"n":1}` || j.Key != "k1" || j.MaxAttempts != 3 || j.Attempt != 1 ||
		j.Headers["trace-id"] != "abc" || j.ContentType != "application/json" || j.ExpiresAt.IsZero() || j.RunAt.Before(runAt) {
		t.Errorf("leased job = %+v", j)
	}
	if d := time.Until(j.Lease.ExpiresAt); d < 40*time.Second || d > 46*time.Second {
		t.Errorf("lease expires in %s, want about 45s", d)
	}
	if string(jobs[1].Body()) != "a" {
		t.Errorf("second job payload %q", jobs[1].Body())
	}
	exp, err := c.Extend(ctx, j.ID, j.Lease.ID, 2*time.Minute)
	if err != nil || time.Until(exp) < 110*time.Second {
		t.Errorf("extend = %s, %v", exp, err)
	}
	state, err := c.Nack(ctx, j.ID, j.Lease.ID, 0, "boom")
	if err != nil || state != "ready" {
		t.Fatalf("nack = %q, %v", state, err)
	}
	if err := c.Ack(ctx, jobs[1].ID, jobs[1].Lease.ID); err != nil {
		t.Fatal(err)
	}
	again, err := c.Lease(ctx, "ops", 1, 0, 0)
	if err != nil || len(again) != 1 || again[0].LastError != "boom" || again[0].Attempt != 2 {
		t.Fatalf("lease after nack = %+v, %v", again, err)
	}
	if err := c.Fail(ctx, again[0].ID, again[0].Lease.ID, "bad"); err != nil {
		t.Fatal(err)
	}
	qs, err := st.eng.QueueStats("ops")
	if err != nil || qs.Dead != 1 || qs.Delayed != 1 || qs.Ready != 0 || qs.Leased != 0 {
		t.Errorf("queue stats = %+v, %v", qs, err)
	}
}

// TestPipelining: many concurrent calls on one connection are each
// answered with their own answer.
func TestPipelining(t *testing.T) {
	st := startStack(t, engine.Config{}, "")
	c, err := NewClient(st.tcp, ClientConfig{Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 64
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r, err := c.Enqueue(t.Context(), "p", []byte{byte(i)}, httpapi.EnqueueOptions{Key: url.QueryEscape(string(rune('a' + i)))})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = r.ID
		})
	}
	wg.Wait()
	jobs, err := c.Lease(t.Context(), "p", 100, 0, 0)
	if err != nil || len(jobs) != n {
		t.Fatalf("lease: %d jobs, %v", len(jobs), err)
	}
	for _, j := range jobs {
		i := int(j.Body()[0])
		if ids[i] != j.ID {
			t.Errorf("job %d answered id %s, holds %s", i, ids[i], j.ID)
		}
	}
}

// TestShutdownAnswersInFlight: Shutdown ends a long poll at once and
// answers it before closing the connection.
func TestShutdownAnswersInFlight(t *testing.T) {
	st := startStack(t, engine.Config{}, "")
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		_, err := st.client.Lease(context.Background(), "idle", 1, 30*time.Second, 0)
		errc <- err
	}()
	<-started
	// Wait until the server has read the poll: a request of a connection
	// is unanswered.
	deadline := time.Now().Add(5 * time.Second)
	for !pollRead(st.srv) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// The real engine ends a cut long poll with no jobs, which the HTTP
	// API answers 200 with an empty list; either that or shutting_down,
	// but an answer, not a broken connection.
	if err := <-errc; err != nil && !errors.Is(err, job.ErrShuttingDown) {
		t.Errorf("long poll answered %v, want an empty list or shutting_down", err)
	}
	if err := st.srv.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

// pollRead reports whether a connection of s has a request unanswered.
func pollRead(s *Server) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.mu.Lock()
		n := c.inBytes
		c.mu.Unlock()
		if n > 0 {
			return true
		}
	}
	return false
}

// countingEngine counts the batches and jobs its engine is given; its
// enqueues wait for gate.
type countingEngine struct {
	*engine.Engine
	batches, jobs atomic.Int64
	gate          chan struct{}
}

func (e *countingEngine) Enqueue(ctx context.Context, n job.New) (job.Result, error) {
	e.jobs.Add(1)
	<-e.gate
	return e.Engine.Enqueue(ctx, n)
}

func (e *countingEngine) EnqueueBatch(ctx context.Context, queue string, jobs []job.New) ([]job.Result, error) {
	e.batches.Add(1)
	e.jobs.Add(int64(len(jobs)))
	<-e.gate
	return e.Engine.EnqueueBatch(ctx, queue, jobs)
}

// TestCoalesce: concurrent enqueues share batch frames, each answered with
// its own id, and a job the daemon refuses gets its own refusal while the
// others of its batch are stored.
func TestCoalesce(t *testing.T) {
	st := startStack(t, engine.Config{}, "")
	ce := &countingEngine{Engine: st.eng, gate: make(chan struct{})}
	srv, err := New(Config{Listen: "127.0.0.1:0"}, ce)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Shutdown(context.Background()) }()
	c, err := NewClient("native://"+srv.Addr().String(), ClientConfig{Coalesce: true, Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 200
	// wave enqueues n jobs into queue at once, job bad with both delay
	// and run_at (refused), and answers their ids and errors.
	wave := func(queue string, bad int, started func()) ([]string, []error) {
		ids, errs := make([]string, n), make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				o := httpapi.EnqueueOptions{}
				if i == bad {
					o.Delay, o.RunAt = time.Second, time.Now()
				}
				r, err := c.Enqueue(t.Context(), queue, []byte{byte(i), byte(i >> 8)}, o)
				ids[i], errs[i] = r.ID, err
			})
		}
		started()
		wg.Wait()
		return ids, errs
	}

	// The first frame is held in the engine until the other jobs wait
	// for the next: they go in a batch.
	ids, errs := wave("co", -1, func() {
		deadline := time.Now().Add(10 * time.Second)
		for laneWaiting(c, "co")+int(ce.jobs.Load()) < n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		close(ce.gate)
	})
	seen := map[string]bool{}
	for i, id := range ids {
		if errs[i] != nil || id == "" || seen[id] {
			t.Fatalf("job %d: id %q, %v", i, id, errs[i])
		}
		seen[id] = true
	}
	if b := ce.batches.Load(); b == 0 || b >= n/2 {
		t.Errorf("%d batch frames for %d concurrent enqueues, want a few", b, n)
	}
	for range 2 {
		jobs, err := c.Lease(t.Context(), "co", 100, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			b := j.Body()
			if i := int(b[0]) | int(b[1])<<8; ids[i] != j.ID {
				t.Errorf("job %d answered %s, stored as %s", i, ids[i], j.ID)
			}
		}
	}

	// A refused job gets its own refusal; the others of its batch are
	// sent again alone and stored.
	_, errs = wave("co2", 7, func() {})
	if !errors.Is(errs[7], job.ErrInvalidArgument) {
		t.Errorf("job 7: %v, want its own invalid_argument", errs[7])
	}
	for i, err := range errs {
		if i != 7 && err != nil {
			t.Errorf("job %d: %v", i, err)
		}
	}
	if qs, err := st.eng.QueueStats("co2"); err != nil || qs.Ready != n-1 {
		t.Fatalf("queue holds %+v, %v; want %d ready", qs, err, n-1)
	}
}

// laneWaiting is how many enqueues wait on queue's lane of c.
func laneWaiting(c *Client, queue string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.lanes[queue]; l != nil {
		return len(l.waiting)
	}
	return 0
}
