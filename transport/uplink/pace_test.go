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

// catchUp runs an engine whose queues "backlog" (normal, concurrency 40)
// and "alarms" (critical) share u, with n jobs of size bytes waiting in
// backlog.
func catchUp(t *testing.T, u *Uplink, n, size int) *engine.Engine {
	t.Helper()
	e := runEngine(t, engine.Config{
		Workers: 64,
		Queues: map[string]engine.QueueConfig{
			"backlog": {Class: job.ClassNormal, Concurrency: 40, Handler: u.Handler(job.ClassNormal)},
			"alarms":  {Class: job.ClassCritical, Handler: u.Handler(job.ClassCritical)},
		},
	})
	for n > 0 {
		jobs := make([]job.New, min(n, 500))
		for i := range jobs {
			jobs[i] = job.New{Payload: make([]byte, size)}
		}
		if _, err := e.EnqueueBatch(t.Context(), "backlog", jobs); err != nil {
			t.Fatal(err)
		}
		n -= len(jobs)
	}
	return e
}

// measure answers the jobs/s and bytes/s u sent over d, after warm.
func measure(u *Uplink, warm, d time.Duration) (jobs, bytes float64) {
	time.Sleep(warm)
	a, start := u.Stats(), time.Now()
	time.Sleep(d)
	b, el := u.Stats(), time.Since(start).Seconds()
	return float64(b.JobsSent-a.JobsSent) / el, float64(b.BytesSent-a.BytesSent) / el
}

// capped checks that got, measured on the wall clock, is at most 10% above
// the cap want, and that the drain goes on at all. A loaded machine can only
// slow the drain below the cap, never push it above: at a load of 30 on 2
// cores it ran at 0.45 of a 200 kB/s cap, so the lower bound is a fifth;
// TestPacingAccounting holds the drain to the cap within 10% on synctest's
// clock.
func capped(t *testing.T, what string, got, want float64) {
	t.Helper()
	if got > want*1.1 || got < want*0.2 {
		t.Errorf("%s = %.1f/s, want at most %.0f/s + 10%% (and not below a fifth of it)", what, got, want)
	}
}

// TestMaxRatePacesCatchUpAndCriticalGoesFirst: a backlog drains at
// max_rate; a critical job enqueued during the drain arrives within a
// second.
func TestMaxRatePacesCatchUpAndCriticalGoesFirst(t *testing.T) {
	s := jsServer(t, 0, t.TempDir())
	createStream(t, s.ClientURL(), 1, 0)
	u := startUplink(t, Config{URL: s.ClientURL(), MaxRate: 200, Batch: Batch{MaxJobs: 20, Linger: 5 * time.Millisecond}})
	e := catchUp(t, u, 2000, 10)
	rate, _ := measure(u, 300*time.Millisecond, 2*time.Second)
	capped(t, "drain rate", rate, 200)
	if st := u.Stats(); st.MaxRate != 200 || st.Rate == 0 {
		t.Errorf("stats %+v: want max_rate 200 and a current rate", st)
	}

	start := time.Now()
	if _, err := e.EnqueueBatch(t.Context(), "alarms", []job.New{{Payload: []byte("fire")}}); err != nil {
		t.Fatal(err)
	}
	for time.Since(start) < 5*time.Second {
		if st, _ := e.QueueStats("alarms"); st.CompletedTotal == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("a critical job during catch-up took %v to arrive, want within a second", took)
	}
	if st, _ := e.QueueStats("backlog"); st.Ready == 0 {
		t.Errorf("backlog drained before the check: %+v", st)
	}
}

// TestMaxBandwidthPacesCatchUp: a backlog of 1000-byte jobs drains at
// max_bandwidth.
func TestMaxBandwidthPacesCatchUp(t *testing.T) {
	s := jsServer(t, 0, t.TempDir())
	createStream(t, s.ClientURL(), 1, 0)
	u := startUplink(t, Config{URL: s.ClientURL(), MaxBandwidth: 200_000, Batch: Batch{MaxJobs: 20, Linger: 5 * time.Millisecond}})
	catchUp(t, u, 2000, 1000)
	_, bw := measure(u, 300*time.Millisecond, 2*time.Second)
	capped(t, "drain bandwidth", bw, 200_000)
}

// instant acknowledges every job at once.
type instant struct{}

func (instant) start(context.Context) error { return nil }
func (instant) publish(_ context.Context, b []*item) []error {
	return make([]error, len(b))
}
func (instant) connected() bool { return true }
func (instant) close()          {}

// TestPacingAccounting drains 2000 jobs through an uplink whose server
// acknowledges at once, on synctest's clock: the drain takes the time
// max_rate or max_bandwidth allows, within 10%.
func TestPacingAccounting(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		size int
		want time.Duration // 2000 jobs at the cap
	}{
		{"max_rate", Config{MaxRate: 200}, 10, 10 * time.Second},
		{"max_bandwidth", Config{MaxBandwidth: 100_000}, 1000, 20 * time.Second},
		{"both, bandwidth binds", Config{MaxRate: 1000, MaxBandwidth: 100_000}, 1000, 20 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := tt.cfg
				cfg.Name, cfg.Type, cfg.URL, cfg.Stream, cfg.Subject = "cloud", "nats", "nats://x", "EDGE", "e"
				cfg.Batch = Batch{MaxJobs: 20, Linger: 5 * time.Millisecond}
				u, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				u.pub = instant{}
				if err := u.Start(t.Context()); err != nil {
					t.Fatal(err)
				}
				defer u.Stop()
				h := u.Handler(job.ClassNormal)
				start := time.Now()
				var wg sync.WaitGroup
				for w := range 40 {
					wg.Go(func() {
						for i := w; i < 2000; i += 40 {
							if o := h.Handle(t.Context(), newJob("q", make([]byte, tt.size))); o.Verdict != engine.Ack {
								t.Errorf("%+v", o)
							}
						}
					})
				}
				wg.Wait()
				took := time.Since(start)
				if took < tt.want*9/10 || took > tt.want*11/10 {
					t.Errorf("2000 jobs took %v, want %v ± 10%%", took, tt.want)
				}
				st := u.Stats()
				if st.JobsSent != 2000 || st.BatchSizes[4] == 0 || st.BatchSizes[5]+st.BatchSizes[6] != 0 {
					t.Errorf("stats %+v: want 2000 jobs, full batches of 20 and none larger", st)
				}
			})
		})
	}
}
