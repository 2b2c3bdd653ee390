package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeEngine is an in-memory Engine: enough semantics to drive every
// endpoint, plus error injection by method name.
type fakeEngine struct {
	mu       sync.Mutex
	now      time.Time
	next     job.ID
	jobs     map[job.ID]*job.Job
	acked    map[job.ID]string // lease that acked the job, as the engine remembers it
	keys     map[string]job.ID // queue + "\x00" + key
	paused   map[string]bool
	news     []job.New // every job.New that reached the engine, in order
	batches  int       // EnqueueBatch calls that reached the engine
	errs     map[string]error
	ready    error
	shedding engine.Shedding
	discard  bool // Enqueue stores nothing (benchmarks)
	extraQ   []engine.QueueStats
	short    bool
	uptime   time.Duration
	drainETA *time.Duration
	refused  []refusal // Refused calls, in order

	enqueueEntered chan struct{} // when set, Enqueue signals it and waits for enqueueRelease
	enqueueRelease chan struct{}
	leaseWaiting   chan struct{} // when set, a Lease that must wait signals it
}

// refusal is one call of Refused.
type refusal struct {
	queue string
	n     int
	err   error
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{
		now:    time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
		jobs:   map[job.ID]*job.Job{},
		acked:  map[job.ID]string{},
		keys:   map[string]job.ID{},
		paused: map[string]bool{},
		errs:   map[string]error{},
		uptime: 90 * time.Second,
	}
}

// with runs fn on the fake under its lock, for tests that change it while
// the server runs.
func (f *fakeEngine) with(fn func(*fakeEngine)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// setErr makes method answer err until cleared with nil.
func (f *fakeEngine) setErr(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[method] = err
}

func (f *fakeEngine) errLocked(method string) error { return f.errs[method] }

func (f *fakeEngine) enqueueLocked(n job.New) (job.Result, error) {
	if err := job.CheckQueueName(n.Queue); err != nil {
		return job.Result{}, err
	}
	if n.Key != "" {
		if id, ok := f.keys[n.Queue+"\x00"+n.Key]; ok {
			return job.Result{ID: id, Queue: n.Queue, State: f.jobs[id].State, Durable: true, Duplicate: true}, nil
		}
	}
	f.next++
	j := &job.Job{
		ID: f.next, Queue: n.Queue, State: job.StateReady, MaxAttempts: cmpOr(n.MaxAttempts, 5),
		CreatedAt: f.now, RunAt: f.now, ExpiresAt: n.ExpiresAt, TTR: n.TTR, Key: n.Key,
		Headers: n.Headers, ContentType: n.ContentType, Payload: n.Payload,
	}
	if n.Delay > 0 || !n.RunAt.IsZero() {
		j.State = job.StateDelayed
		j.RunAt = f.now.Add(n.Delay)
		if !n.RunAt.IsZero() {
			j.RunAt = n.RunAt
		}
	}
	if !f.discard {
		f.jobs[j.ID] = j
		if n.Key != "" {
			f.keys[n.Queue+"\x00"+n.Key] = j.ID
		}
	}
	return job.Result{ID: j.ID, Queue: j.Queue, State: j.State, Durable: true}, nil
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

func (f *fakeEngine) Enqueue(ctx context.Context, n job.New) (job.Result, error) {
	f.mu.Lock()
	entered, release := f.enqueueEntered, f.enqueueRelease
	f.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
		<-release
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errLocked("Enqueue"); err != nil {
		return job.Result{}, err
	}
	if !f.discard {
		f.news = append(f.news, n)
	}
	return f.enqueueLocked(n)
}

func (f *fakeEngine) EnqueueBatch(ctx context.Context, queue string, jobs []job.New) ([]job.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches++
	if err := f.errLocked("EnqueueBatch"); err != nil {
		return nil, err
	}
	if err := job.CheckQueueName(queue); err != nil {
		return nil, err
	}
	var res []job.Result
	for _, n := range jobs {
		f.news = append(f.news, n)
		r, err := f.enqueueLocked(n)
		if err != nil {
			return nil, err
		}
		res = append(res, r)
	}
	return res, nil
}

func (f *fakeEngine) Lease(ctx context.Context, r engine.LeaseRequest) ([]*job.Job, error) {
	f.mu.Lock()
	if err := f.errLocked("Lease"); err != nil {
		f.mu.Unlock()
		return nil, err
	}
	waiting := f.leaseWaiting
	var out []*job.Job
	for _, id := range f.sortedIDsLocked() {
		j := f.jobs[id]
		if len(out) == r.Max {
			break
		}
		if j.Queue == r.Queue && j.State == job.StateReady {
			j.State = job.StateLeased
			j.Attempt++
			j.LeaseID = "L" + j.ID.String()
			j.LeaseExpires = f.now.Add(cmpDur(r.TTR, time.Minute))
			out = append(out, j.Clone())
		}
	}
	f.mu.Unlock()
	if len(out) > 0 || r.Wait == 0 {
		return out, nil
	}
	if waiting != nil {
		waiting <- struct{}{}
	}
	t := time.NewTimer(r.Wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, nil
	}
}

func cmpDur(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

func (f *fakeEngine) sortedIDsLocked() []job.ID {
	ids := make([]job.ID, 0, len(f.jobs))
	for id := range f.jobs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// leasedLocked finds a job held under lease.
func (f *fakeEngine) leasedLocked(id job.ID, lease string) (*job.Job, error) {
	j, ok := f.jobs[id]
	if !ok {
		return nil, job.ErrNotFound
	}
	if j.State != job.StateLeased || j.LeaseID != lease {
		return nil, job.ErrLeaseLost
	}
	return j, nil
}

func (f *fakeEngine) Ack(ctx context.Context, id job.ID, lease string, _ []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errLocked("Ack"); err != nil {
		return err
	}
	if l, ok := f.acked[id]; ok {
		if l != lease {
			return job.ErrLeaseLost
		}
		return nil
	}
	if _, err := f.leasedLocked(id, lease); err != nil {
		return err
	}
	delete(f.jobs, id)
	f.acked[id] = lease
	return nil
}

func (f *fakeEngine) AckBatch(ctx context.Context, acks []engine.AckRequest) ([]error, error) {
	f.mu.Lock()
	err := f.errLocked("AckBatch")
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	errs := make([]error, len(acks))
	for i, a := range acks {
		errs[i] = f.Ack(ctx, a.ID, a.Lease, a.Result)
	}
	return errs, nil
}

func (f *fakeEngine) AckLease(ctx context.Context, acks []engine.AckRequest, r engine.LeaseRequest) ([]error, []*job.Job, error) {
	errs, err := f.AckBatch(ctx, acks)
	if err != nil {
		return nil, nil, err
	}
	jobs, err := f.Lease(ctx, r)
	return errs, jobs, err
}

func (f *fakeEngine) Nack(ctx context.Context, id job.ID, lease string, delay time.Duration, reason string) (job.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, err := f.leasedLocked(id, lease)
	if err != nil {
		return 0, err
	}
	j.LeaseID, j.LastError = "", reason
	switch {
	case j.Attempt >= j.MaxAttempts:
		j.State = job.StateDead
	case delay == engine.NackBackoff:
		j.State, j.RunAt = job.StateDelayed, f.now.Add(time.Second) // a backoff of 1s
	case delay > 0:
		j.State, j.RunAt = job.StateDelayed, f.now.Add(delay)
	default:
		j.State = job.StateReady
	}
	return j.State, nil
}

func (f *fakeEngine) Fail(ctx context.Context, id job.ID, lease string, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, err := f.leasedLocked(id, lease)
	if err != nil {
		return err
	}
	j.State, j.LeaseID, j.LastError = job.StateDead, "", reason
	return nil
}

func (f *fakeEngine) Extend(ctx context.Context, id job.ID, lease string, ttr time.Duration) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, err := f.leasedLocked(id, lease)
	if err != nil {
		return time.Time{}, err
	}
	j.LeaseExpires = f.now.Add(cmpDur(ttr, time.Minute))
	return j.LeaseExpires, nil
}

func (f *fakeEngine) Job(ctx context.Context, id job.ID) (*job.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	if !ok {
		return nil, job.ErrNotFound
	}
	return j.Clone(), nil
}

func (f *fakeEngine) Cancel(ctx context.Context, id job.ID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	switch {
	case !ok:
		return job.ErrNotFound
	case j.State == job.StateLeased:
		return job.ErrConflict
	}
	delete(f.jobs, id)
	return nil
}

func (f *fakeEngine) Refused(queue string, n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refused = append(f.refused, refusal{queue, n, err})
}

func (f *fakeEngine) Stats() engine.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	by := map[string]*engine.QueueStats{}
	for _, j := range f.jobs {
		q := by[j.Queue]
		if q == nil {
			q = &engine.QueueStats{Name: j.Queue, Class: job.ClassNormal, Concurrency: 4, DrainETA: f.drainETA}
			by[j.Queue] = q
		}
		q.EnqueuedTotal++
		switch j.State {
		case job.StateReady:
			q.Ready++
			q.OldestReadyAge = 1500 * time.Millisecond
		case job.StateDelayed:
			q.Delayed++
		case job.StateLeased:
			q.Leased++
		case job.StateDead:
			q.Dead++
		}
	}
	st := engine.Stats{StoreShort: f.short, Uptime: f.uptime}
	for _, q := range by {
		q.Paused = f.paused[q.Name]
		st.Queues = append(st.Queues, *q)
	}
	st.Queues = append(st.Queues, f.extraQ...)
	slices.SortFunc(st.Queues, func(a, b engine.QueueStats) int { return strings.Compare(a.Name, b.Name) })
	return st
}

func (f *fakeEngine) QueueStats(name string) (engine.QueueStats, error) {
	for _, q := range f.Stats().Queues {
		if q.Name == name {
			return q, nil
		}
	}
	return engine.QueueStats{}, job.ErrNotFound
}

func (f *fakeEngine) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeEngine) Shedding() engine.Shedding {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.shedding
}

func (f *fakeEngine) Pause(ctx context.Context, queue string) error {
	return f.setPaused(queue, true)
}

func (f *fakeEngine) Resume(ctx context.Context, queue string) error {
	return f.setPaused(queue, false)
}

func (f *fakeEngine) setPaused(queue string, p bool) error {
	if err := job.CheckQueueName(queue); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused[queue] = p
	return nil
}

// deleteLocked deletes up to limit (0: all) jobs of queue in the states
// listed, in id order, and answers how many.
func (f *fakeEngine) deleteLocked(queue string, limit int, states ...job.State) int {
	n := 0
	for _, id := range f.sortedIDsLocked() {
		if j := f.jobs[id]; j.Queue == queue && slices.Contains(states, j.State) && (limit == 0 || n < limit) {
			delete(f.jobs, id)
			n++
		}
	}
	return n
}

func (f *fakeEngine) Purge(ctx context.Context, queue string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deleteLocked(queue, 0, job.StateReady, job.StateDelayed), nil
}

func (f *fakeEngine) DeadList(ctx context.Context, queue string, after job.ID, limit int) ([]*job.Job, job.ID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*job.Job
	for _, id := range f.sortedIDsLocked() {
		j := f.jobs[id]
		if id <= after || j.Queue != queue || j.State != job.StateDead {
			continue
		}
		if len(out) == limit {
			return out, out[len(out)-1].ID, nil
		}
		c := j.Clone()
		c.Payload = nil // listings come without payloads
		out = append(out, c)
	}
	return out, 0, nil
}

func (f *fakeEngine) DeadRetry(ctx context.Context, queue string, limit int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, id := range f.sortedIDsLocked() {
		if j := f.jobs[id]; j.Queue == queue && j.State == job.StateDead && n < limit {
			j.State, j.Attempt = job.StateReady, 0
			n++
		}
	}
	return n, nil
}

func (f *fakeEngine) RetryDead(ctx context.Context, id job.ID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.jobs[id]
	switch {
	case j == nil:
		return fmt.Errorf("job %s: %w", id, job.ErrNotFound)
	case j.State != job.StateDead:
		return fmt.Errorf("job %s is %s, not dead: %w", id, j.State, job.ErrConflict)
	}
	j.State, j.Attempt = job.StateReady, 0
	return nil
}

func (f *fakeEngine) DeadPurge(ctx context.Context, queue string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deleteLocked(queue, 0, job.StateDead), nil
}

// put stores a job directly and answers it.
func (f *fakeEngine) put(j job.Job) *job.Job {
	f.mu.Lock()
	defer f.mu.Unlock()
	if j.ID == 0 {
		f.next++
		j.ID = f.next
	}
	f.next = max(f.next, j.ID)
	if j.CreatedAt.IsZero() {
		j.CreatedAt, j.RunAt = f.now, f.now
	}
	f.jobs[j.ID] = &j
	return &j
}

func (f *fakeEngine) received() (news []job.New, batches int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.news), f.batches
}

// testServer is a Server listening on 127.0.0.1:0 with a fake engine.
type testServer struct {
	*Server
	eng  *fakeEngine
	base string
	hc   *http.Client

	shutdownErrOK bool // the test made Shutdown fail on purpose
}

// mustStartServer starts a Server on 127.0.0.1:0 and shuts it down when the
// test ends. cfg.Addr is ignored.
func mustStartServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	return mustStartServerHook(t, cfg, nil)
}

func mustStartServerHook(t testing.TB, cfg Config, hook func()) *testServer {
	t.Helper()
	eng := newFakeEngine()
	cfg.Addr = "127.0.0.1:0"
	s, err := New(cfg, eng)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.testHookShutdown = hook
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	ts := &testServer{Server: s, eng: eng, base: "http://" + s.Addr().String(), hc: &http.Client{}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil && !ts.shutdownErrOK {
			t.Errorf("Shutdown: %v", err)
		}
		ts.hc.CloseIdleConnections()
	})
	return ts
}

// client returns a Client of the server, closed when the test ends.
func (ts *testServer) client(t testing.TB, token string) *Client {
	t.Helper()
	c := NewClient(ts.base, token, nil)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// reply is an answer read whole.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends a raw request; hdr holds "Name", "value" pairs.
func (ts *testServer) do(t *testing.T, method, path string, body io.Reader, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, ts.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := ts.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// decode decodes the body into v, failing on unknown fields.
func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(r.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, r.body, err)
	}
}

// wantStatus fails unless the answer has status.
func (r reply) wantStatus(t *testing.T, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
}

// wantError checks an error answer: status, code, a message containing
// msgPart, JSON content type, and Retry-After (header and body) equal to
// retry seconds (0: absent).
func (r reply) wantError(t *testing.T, status int, code, msgPart string, retry int) {
	t.Helper()
	r.wantStatus(t, status)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var er ErrorResponse
	r.decode(t, &er)
	if er.Error.Code != code {
		t.Errorf("code = %q, want %q (message %q)", er.Error.Code, code, er.Error.Message)
	}
	if !strings.Contains(er.Error.Message, msgPart) {
		t.Errorf("message = %q, want it to contain %q", er.Error.Message, msgPart)
	}
	if er.Error.RetryAfterS != retry {
		t.Errorf("retry_after_s = %d, want %d", er.Error.RetryAfterS, retry)
	}
	wantHdr := ""
	if retry > 0 {
		wantHdr = strconv.Itoa(retry)
	}
	if got := r.header.Get("Retry-After"); got != wantHdr {
		t.Errorf("Retry-After = %q, want %q", got, wantHdr)
	}
}

// keysOf answers the sorted keys of a JSON object.
func keysOf(t *testing.T, raw []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("unmarshal %s: %v", raw, err)
	}
	return slices.Sorted(maps.Keys(m))
}

func wantKeys(t *testing.T, raw []byte, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := keysOf(t, raw); !slices.Equal(got, want) {
		t.Errorf("keys of %s\n got %q\nwant %q", raw, got, want)
	}
}
