package uplink

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

var lastID atomic.Uint64

func newJob(queue string, payload []byte) *job.Job {
	return &job.Job{ID: job.ID(lastID.Add(1)), Queue: queue, Payload: payload, Headers: map[string]string{"Sensor": "t1"}}
}

func cmpStr(a, b string) string {
	if a == "" {
		return b
	}
	return a
}

// handleAll runs h on jobs concurrently and answers the outcomes in order.
func handleAll(h engine.Handler, jobs []*job.Job) []engine.Outcome {
	outs := make([]engine.Outcome, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() { outs[i] = h.Handle(context.Background(), j) })
	}
	wg.Wait()
	return outs
}

func TestNATSBatchesWithHeaders(t *testing.T) {
	s := jsServer(t, 0, t.TempDir())
	stream := createStream(t, s.ClientURL(), 1, 0)
	u := startUplink(t, Config{URL: s.ClientURL(), Batch: Batch{MaxJobs: 40, Linger: time.Second}})
	jobs := make([]*job.Job, 40)
	for i := range jobs {
		jobs[i] = newJob("telemetry", []byte(`{"t":21.5}`))
	}
	for i, o := range handleAll(u.Handler(job.ClassNormal), jobs) {
		if o.Verdict != engine.Ack {
			t.Fatalf("job %d: %+v, want ack", i, o)
		}
	}
	st := u.Stats()
	if st.JobsSent != 40 || st.Batches != 1 || !st.Connected {
		t.Errorf("stats %+v: want 40 jobs in one batch, connected", st)
	}
	msgs, ids := streamIDs(t, stream)
	if msgs != 40 || len(ids) != 40 {
		t.Fatalf("stream holds %d messages with %d ids, want 40 and 40", msgs, len(ids))
	}
	// The calls raced each other into the batch; the stream holds the
	// jobs in the order they were enqueued (by id) all the same.
	var last job.ID
	for seq := uint64(1); seq <= 40; seq++ {
		m, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := job.ParseID(m.Header.Get(HeaderMsgID))
		if id <= last {
			t.Fatalf("message %d holds job %s after job %s: out of order", seq, id, last)
		}
		last = id
	}
	m, err := stream.GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := job.ParseID(m.Header.Get(HeaderMsgID))
	if m.Subject != "edge.telemetry" || m.Header.Get(HeaderQueue) != "telemetry" || m.Header.Get("Sensor") != "t1" || id == 0 || !bytes.Equal(m.Data, []byte(`{"t":21.5}`)) {
		t.Errorf("message %s %v %q: want subject edge.telemetry, the job id, queue and own headers, the payload", m.Subject, m.Header, m.Data)
	}
}

func TestNATSMissingStreamRefusedAtStart(t *testing.T) {
	s := jsServer(t, 0, t.TempDir())
	u, err := New(Config{Name: "cloud", Type: "nats", URL: s.ClientURL(), Stream: "NOPE", Subject: "edge.{queue}"})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Stop()
	err = u.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), "uplinks.cloud") || !strings.Contains(err.Error(), `"NOPE"`) {
		t.Fatalf("Start = %v, want an error naming uplinks.cloud and stream \"NOPE\"", err)
	}
}

// TestNATSPartialFailureAcksThoseThatMadeIt: one job of a batch is refused
// by the stream (larger than its max_msg_size); the others are acked, it
// is retried and counts an attempt (the link works).
func TestNATSPartialFailureAcksThoseThatMadeIt(t *testing.T) {
	s := jsServer(t, 0, t.TempDir())
	stream := createStream(t, s.ClientURL(), 1, 300)
	u := startUplink(t, Config{URL: s.ClientURL(), Batch: Batch{MaxJobs: 5, Linger: 5 * time.Second}})
	jobs := make([]*job.Job, 5)
	for i := range jobs {
		jobs[i] = newJob("telemetry", []byte("small"))
	}
	jobs[2].Payload = bytes.Repeat([]byte("x"), 400)
	outs := handleAll(u.Handler(job.ClassNormal), jobs)
	for i, o := range outs {
		want := engine.Ack
		if i == 2 {
			want = engine.Retry
			if o.Unreached || o.TargetFailed {
				t.Errorf("refused job: %+v, want a retry that counts an attempt", o)
			}
		}
		if o.Verdict != want {
			t.Errorf("job %d: %+v, want verdict %d", i, o, want)
		}
	}
	if st := u.Stats(); st.Batches != 1 || st.JobsSent != 4 || st.JobsFailed != 1 {
		t.Errorf("stats %+v: want one batch, 4 sent, 1 failed", st)
	}
	if msgs, _ := streamIDs(t, stream); msgs != 4 {
		t.Errorf("stream holds %d, want 4", msgs)
	}
}

// deliver hands j to h until it is acked, as the engine would retry it;
// it answers how many tries that took (bounded).
func deliver(t *testing.T, h engine.Handler, j *job.Job) int {
	for try := 1; try <= 200; try++ {
		o := h.Handle(t.Context(), j)
		if o.Verdict == engine.Ack {
			return try
		}
		if o.Verdict == engine.Dead {
			t.Errorf("job %s dead: %s", j.ID, o.Error)
			return try
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("job %s not acked after 200 tries", j.ID)
	return 0
}

// TestNATSClusterLeaderKill publishes through a 3-node cluster and kills
// the stream's leader mid-stream: every job is acked in the end and the
// stream holds each exactly once.
func TestNATSClusterLeaderKill(t *testing.T) {
	servers := jsCluster(t)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	all := strings.Join(urls, ",")
	stream := createStream(t, all, 3, 0)
	u := startUplink(t, Config{URL: all, Timeout: 2 * time.Second, Batch: Batch{MaxJobs: 10, Linger: 10 * time.Millisecond}})
	h := u.Handler(job.ClassNormal)
	const n = 300
	var acked atomic.Int64
	killed := make(chan string, 1)
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Go(func() {
			for i := w; i < n; i += 10 {
				deliver(t, h, newJob("telemetry", []byte("reading")))
				if acked.Add(1) == n/3 {
					for _, s := range servers {
						if s.JetStreamIsStreamLeader("$G", "EDGE") {
							killed <- s.Name()
							s.Shutdown()
							break
						}
					}
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-killed:
	default:
		t.Fatal("no stream leader found to kill")
	}
	msgs, ids := streamIDs(t, stream)
	if msgs != n || len(ids) != n {
		t.Fatalf("stream holds %d messages with %d distinct ids, want %d of each", msgs, len(ids), n)
	}
}
