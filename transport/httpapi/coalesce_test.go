package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// coalesceServer is a real server for the coalescing tests: its engine and
// URL.
func coalesceServer(t *testing.T) (*engine.Engine, string) {
	t.Helper()
	rs := startRealServer(t, engine.Config{})
	return rs.eng, rs.base
}

// gate is a RoundTripper that counts requests by path and holds the first
// one until open is closed, so that the calls behind it pile up.
type gate struct {
	rt    http.RoundTripper
	open  chan struct{}
	first atomic.Bool
	mu    sync.Mutex
	paths []string // guarded by mu
}

func (g *gate) RoundTrip(r *http.Request) (*http.Response, error) {
	g.mu.Lock()
	g.paths = append(g.paths, r.URL.Path)
	g.mu.Unlock()
	if g.first.CompareAndSwap(false, true) {
		<-g.open
	}
	return g.rt.RoundTrip(r)
}

func (g *gate) requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.paths...)
}

// coalescingClient is a client with Coalesce on whose first request waits
// for the gate.
func coalescingClient(t *testing.T, base string, cfg Coalescing) (*Client, *gate) {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	g := &gate{rt: tr, open: make(chan struct{})}
	c := NewClient(base, "", &http.Client{Transport: g})
	if err := c.Coalesce(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, g
}

// waiting polls until n calls wait on queue's lane (bounded).
func waiting(t *testing.T, c *Client, queue string, n int) {
	t.Helper()
	for range 2000 {
		c.co.mu.Lock()
		got := 0
		if ln := c.co.lanes[queue]; ln != nil {
			got = len(ln.waiting)
		}
		c.co.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("fewer than %d calls came to wait on lane %s", n, queue)
}

type enqueueAnswer struct {
	res EnqueueResult
	err error
}

// enqueueAll starts one Enqueue per options in its own goroutine; the
// answers arrive in order on the slice once wait is called.
func enqueueAll(c *Client, queue string, opts []EnqueueOptions) (answers []enqueueAnswer, wait func()) {
	answers = make([]enqueueAnswer, len(opts))
	var wg sync.WaitGroup
	for i, o := range opts {
		wg.Go(func() {
			r, err := c.Enqueue(context.Background(), queue, fmt.Appendf(nil, "job %d", i), o)
			answers[i] = enqueueAnswer{r, err}
		})
	}
	return answers, wg.Wait
}

// TestCoalesceEnqueue (issue 17): with Coalesce, concurrent Enqueue calls
// made while a request is in flight go in one batch request, each caller
// gets its own job's answer (id, duplicate flag, durability), and every job
// is stored with the payload and options it was given.
func TestCoalesceEnqueue(t *testing.T) {
	eng, base := coalesceServer(t)
	c, g := coalescingClient(t, base, Coalescing{})
	first, wait1 := enqueueAll(c, "q", []EnqueueOptions{{}})
	waitRequests(t, g, 1) // the first request is in the gate
	opts := make([]EnqueueOptions, 40)
	for i := range opts {
		opts[i] = EnqueueOptions{MaxAttempts: i + 1}
	}
	opts[7].Key, opts[8].Key = "k", "k"
	opts[9].Delay = time.Hour
	answers, wait := enqueueAll(c, "q", opts)
	waiting(t, c, "q", len(opts))
	close(g.open)
	wait1()
	wait()
	if first[0].err != nil {
		t.Fatalf("first Enqueue: %v", first[0].err)
	}
	if got := g.requests(); len(got) != 2 || got[1] != "/v1/queues/q/batch" {
		t.Errorf("requests %v, want the first and one batch of %d", got, len(opts))
	}
	// 7 and 8 share a key: whichever came first is stored, the other is its duplicate.
	if a, b := answers[7].res, answers[8].res; a.ID != b.ID || a.Duplicate == b.Duplicate {
		t.Errorf("Enqueue 7 and 8 (key k both) = %+v and %+v, want one job and one duplicate of it", a, b)
	}
	ids := map[string]int{}
	for i, a := range answers {
		if a.err != nil || !a.res.Durable || a.res.Queue != "q" {
			t.Fatalf("Enqueue %d = %+v, %v", i, a.res, a.err)
		}
		if a.res.Duplicate {
			if i != 7 && i != 8 {
				t.Errorf("Enqueue %d = %+v, want no duplicate", i, a.res)
			}
			continue
		}
		if prev, ok := ids[a.res.ID]; ok {
			t.Fatalf("Enqueue %d and %d answered the same id %s", prev, i, a.res.ID)
		}
		ids[a.res.ID] = i
		id, _ := job.ParseID(a.res.ID)
		j, err := eng.Job(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if string(j.Payload) != fmt.Sprintf("job %d", i) || j.MaxAttempts != i+1 || j.ContentType != "application/octet-stream" {
			t.Errorf("job of Enqueue %d: payload %q, max_attempts %d, content type %q", i, j.Payload, j.MaxAttempts, j.ContentType)
		}
		if want := map[bool]string{false: "ready", true: "delayed"}[i == 9]; a.res.State != want {
			t.Errorf("Enqueue %d: state %s, want %s", i, a.res.State, want)
		}
	}
}

// TestCoalesceRefusalIsOwn: a job the daemon refuses fails only its own
// caller; the others of its batch are sent again alone and stored.
func TestCoalesceRefusalIsOwn(t *testing.T) {
	eng, base := coalesceServer(t)
	c, g := coalescingClient(t, base, Coalescing{})
	_, wait1 := enqueueAll(c, "q", []EnqueueOptions{{}})
	waitRequests(t, g, 1)
	opts := make([]EnqueueOptions, 5)
	opts[2].ExpiresAt = time.Now().Add(-time.Hour)
	answers, wait := enqueueAll(c, "q", opts)
	waiting(t, c, "q", len(opts))
	close(g.open)
	wait1()
	wait()
	for i, a := range answers {
		var ae *APIError
		switch {
		case i == 2 && !(errors.As(a.err, &ae) && ae.Code == "invalid_argument" && strings.Contains(ae.Message, "expires_at")):
			t.Errorf("Enqueue %d (expired) = %+v, %v; want its own 400 invalid_argument naming expires_at", i, a.res, a.err)
		case i != 2 && (a.err != nil || a.res.ID == ""):
			t.Errorf("Enqueue %d = %+v, %v; want stored", i, a.res, a.err)
		}
	}
	if s, err := eng.QueueStats("q"); err != nil || s.Ready != 5 {
		t.Errorf("queue q holds %d ready jobs (%v), want 5", s.Ready, err)
	}
}

// TestCoalesceGiveUp: a caller whose context ends while its job waits
// gets the context's error, and its job is never sent.
func TestCoalesceGiveUp(t *testing.T) {
	eng, base := coalesceServer(t)
	c, g := coalescingClient(t, base, Coalescing{})
	_, wait1 := enqueueAll(c, "q", []EnqueueOptions{{}})
	waitRequests(t, g, 1)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Enqueue(ctx, "q", []byte("late"), EnqueueOptions{})
		errc <- err
	}()
	waiting(t, c, "q", 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Enqueue after cancel = %v, want context.Canceled", err)
	}
	close(g.open)
	wait1()
	c.Close()
	if s, err := eng.QueueStats("q"); err != nil || s.Ready != 1 {
		t.Errorf("queue q holds %d ready jobs (%v), want only the first", s.Ready, err)
	}
	if got := g.requests(); len(got) != 1 {
		t.Errorf("requests %v, want only the first", got)
	}
}

func TestCoalesceConfig(t *testing.T) {
	c := NewClient("http://127.0.0.1:1", "", nil)
	for _, cfg := range []Coalescing{{MaxLines: -1}, {MaxLines: 1001}, {Linger: -1}, {Linger: time.Second}} {
		if err := c.Coalesce(cfg); err == nil {
			t.Errorf("Coalesce(%+v) = nil, want an error", cfg)
		}
	}
}

func waitRequests(t *testing.T, g *gate, n int) {
	t.Helper()
	for range 2000 {
		if len(g.requests()) >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("fewer than %d requests came", n)
}

// TestCoalesceAcks: with Coalesce, concurrent Ack calls made while an ack
// request is in flight go in one POST /v1/acks, and each caller gets its
// own ack's answer.
func TestCoalesceAcks(t *testing.T) {
	eng, base := coalesceServer(t)
	plain := NewClient(base, "", nil)
	t.Cleanup(plain.CloseIdleConnections)
	for range 6 {
		if _, err := plain.Enqueue(t.Context(), "w", []byte("x"), EnqueueOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	jobs, err := plain.Lease(t.Context(), "w", 6, time.Second, 0)
	if err != nil || len(jobs) != 6 {
		t.Fatalf("Lease = %d jobs, %v", len(jobs), err)
	}
	c, g := coalescingClient(t, base, Coalescing{})
	first := make(chan error, 1)
	go func() { first <- c.Ack(context.Background(), jobs[0].ID, jobs[0].Lease.ID) }()
	waitRequests(t, g, 1)
	errs := make([]error, 5)
	var wg sync.WaitGroup
	for i := range errs {
		j := jobs[i+1]
		lease := j.Lease.ID
		if i == 2 {
			lease = "0000000000000003"
		}
		wg.Go(func() { errs[i] = c.Ack(context.Background(), j.ID, lease) })
	}
	for range 2000 { // bounded: until the five wait behind the first
		c.co.mu.Lock()
		n := len(c.co.acks.waiting)
		c.co.mu.Unlock()
		if n == len(errs) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(g.open)
	wg.Wait()
	if err := <-first; err != nil {
		t.Errorf("first Ack: %v", err)
	}
	for i, err := range errs {
		if i == 2 {
			if !errors.Is(err, job.ErrLeaseLost) {
				t.Errorf("Ack %d with another lease = %v, want lease_lost", i, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Ack %d = %v", i, err)
		}
	}
	if got := g.requests(); len(got) != 2 || got[0] != "/v1/acks" || got[1] != "/v1/acks" {
		t.Errorf("requests %v, want two POST /v1/acks", got)
	}
	if s, err := eng.QueueStats("w"); err != nil || s.CompletedTotal != 5 || s.Leased != 1 {
		t.Errorf("queue w: completed %d, leased %d (%v); want 5 and 1", s.CompletedTotal, s.Leased, err)
	}
}

// TestCoalesceInFlight: with InFlight 2, a call made while one request is
// held goes out in a second request at once instead of waiting for it.
func TestCoalesceInFlight(t *testing.T) {
	eng, base := coalesceServer(t)
	c, g := coalescingClient(t, base, Coalescing{InFlight: 2})
	first, wait1 := enqueueAll(c, "q", []EnqueueOptions{{}})
	waitRequests(t, g, 1)
	second, wait2 := enqueueAll(c, "q", []EnqueueOptions{{}})
	wait2()
	if second[0].err != nil || second[0].res.ID == "" {
		t.Fatalf("second Enqueue = %+v, %v", second[0].res, second[0].err)
	}
	close(g.open)
	wait1()
	if first[0].err != nil || first[0].res.ID == second[0].res.ID {
		t.Errorf("first Enqueue = %+v, %v", first[0].res, first[0].err)
	}
	if s, err := eng.QueueStats("q"); err != nil || s.Ready != 2 {
		t.Errorf("queue q holds %d ready jobs (%v), want 2", s.Ready, err)
	}
	if err := c.Coalesce(Coalescing{InFlight: 17}); err == nil {
		t.Error("Coalesce with InFlight 17 = nil, want an error")
	}
}
