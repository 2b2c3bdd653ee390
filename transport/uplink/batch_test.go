package uplink

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// TestHandleBatchOnePublish: an uplink's handler takes the engine's
// batches (engine.BatchHandler, up to batch.max_jobs): 150 jobs handed in
// one call go out as a batch of 100 and one of 50, each job acked by its
// own PubAck.
func TestHandleBatchOnePublish(t *testing.T) {
	s := jsServer(t, 0, t.TempDir())
	stream := createStream(t, s.ClientURL(), 1, 0)
	u := startUplink(t, Config{URL: s.ClientURL(), Batch: Batch{MaxJobs: 100, Linger: 5 * time.Millisecond}})
	bh, ok := u.Handler(job.ClassNormal).(engine.BatchHandler)
	if !ok {
		t.Fatalf("the handler %T takes no batches", u.Handler(job.ClassNormal))
	}
	if got := bh.BatchMax(); got != 100 {
		t.Errorf("BatchMax = %d, want batch.max_jobs 100", got)
	}
	jobs := make([]*job.Job, 150)
	for i := range jobs {
		jobs[i] = newJob("telemetry", []byte(`{"t":21.5}`))
	}
	outs := bh.HandleBatch(t.Context(), jobs)
	if len(outs) != len(jobs) {
		t.Fatalf("%d outcomes for %d jobs", len(outs), len(jobs))
	}
	for i, o := range outs {
		if o.Verdict != engine.Ack {
			t.Fatalf("job %d: %+v, want ack", i, o)
		}
	}
	if st := u.Stats(); st.JobsSent != 150 || st.Batches != 2 {
		t.Errorf("stats %+v: want 150 jobs in 2 batches", st)
	}
	if msgs, ids := streamIDs(t, stream); msgs != 150 || len(ids) != 150 {
		t.Errorf("stream holds %d messages with %d ids, want 150 and 150", msgs, len(ids))
	}
}

// TestCriticalOvertakesPacedBacklog: during a catch-up paced at 20 jobs/s
// in batches of 100 (5 s of tokens a batch), a critical job neither waits
// for the backlog batch's tokens nor joins a backlog batch nor lingers:
// on synctest's clock it is acked within 100ms, while the backlog keeps
// its cap.
func TestCriticalOvertakesPacedBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{Name: "cloud", Type: "nats", URL: "nats://x", Stream: "EDGE", Subject: "e",
			MaxRate: 20, Batch: Batch{MaxJobs: 100, Linger: 50 * time.Millisecond}}
		u, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		u.pub = instant{}
		if err := u.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer u.Stop()
		low := u.Handler(job.ClassNormal).(engine.BatchHandler)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 2 { // the engine keeps two backlog batches in flight
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					jobs := make([]*job.Job, 100)
					for i := range jobs {
						jobs[i] = newJob("backlog", make([]byte, 10))
					}
					low.HandleBatch(t.Context(), jobs)
				}
			})
		}
		crit := u.Handler(job.ClassCritical)
		t0 := time.Now()
		var worst time.Duration
		for range 5 {
			time.Sleep(3 * time.Second)
			start := time.Now()
			if o := crit.Handle(t.Context(), newJob("alarms", []byte("fire"))); o.Verdict != engine.Ack {
				t.Fatalf("critical job: %+v", o)
			}
			worst = max(worst, time.Since(start))
		}
		if worst > 100*time.Millisecond {
			t.Errorf("a critical job during a paced catch-up took %v, want within 100ms", worst)
		}
		close(stop)
		sent := u.Stats().JobsSent
		wg.Wait()
		if el := time.Since(t0); float64(sent) > 20*el.Seconds()*1.1+100 {
			t.Errorf("%d jobs sent in %v, want the 20 jobs/s cap (+ one burst)", sent, el)
		}
	})
}

// gated is a sender whose acknowledgements wait for open to close.
type gated struct {
	instant
	open  chan struct{}
	mu    sync.Mutex
	sends int
}

func (g *gated) send(batch []*item) func(context.Context) []error {
	g.mu.Lock()
	g.sends++
	g.mu.Unlock()
	return func(ctx context.Context) []error {
		select {
		case <-g.open:
		case <-ctx.Done():
		}
		return make([]error, len(batch))
	}
}

// TestBatchesPipelined: a nats uplink sends the next batch while the last
// one's acknowledgements are awaited, up to maxInFlight batches.
func TestBatchesPipelined(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u, err := New(Config{Name: "cloud", Type: "nats", URL: "nats://x", Stream: "EDGE", Subject: "e",
			Batch: Batch{MaxJobs: 10, Linger: time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		g := &gated{open: make(chan struct{})}
		u.pub = g
		if err := u.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer u.Stop()
		h := u.Handler(job.ClassNormal).(engine.BatchHandler)
		var wg sync.WaitGroup
		for range maxInFlight + 2 {
			wg.Go(func() {
				jobs := make([]*job.Job, 10)
				for i := range jobs {
					jobs[i] = newJob("backlog", []byte("x"))
				}
				for _, o := range h.HandleBatch(t.Context(), jobs) {
					if o.Verdict != engine.Ack {
						t.Errorf("%+v, want ack", o)
					}
				}
			})
		}
		time.Sleep(time.Second)
		synctest.Wait()
		g.mu.Lock()
		sends := g.sends
		g.mu.Unlock()
		if sends != maxInFlight {
			t.Errorf("%d batches sent before any acknowledgement, want %d in flight", sends, maxInFlight)
		}
		close(g.open)
		wg.Wait()
		if st := u.Stats(); st.JobsSent != 10*(maxInFlight+2) || st.Batches != maxInFlight+2 {
			t.Errorf("stats %+v: want every job sent, in batches of 10", st)
		}
	})
}
