package uplink

import (
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// startEngine runs an engine on a memory store whose queue "telemetry"
// sends through u with max_attempts 2: more failed tries than that would
// send jobs dead, unless a down uplink costs none.
func startEngine(t *testing.T, u *Uplink, class job.Class) *engine.Engine {
	t.Helper()
	return runEngine(t, engine.Config{
		Workers: 40,
		Backoff: engine.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond},
		Queues: map[string]engine.QueueConfig{
			"telemetry": {Class: class, Concurrency: 20, MaxAttempts: 2, Handler: u.Handler(class),
				Breaker: engine.Breaker{Failures: 3, CoolDown: 100 * time.Millisecond}},
		},
	})
}

// waitDrained polls until queue q of e holds no job, within d.
func waitDrained(t *testing.T, e *engine.Engine, q string, d time.Duration) engine.QueueStats {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		s, err := e.QueueStats(q)
		if err != nil {
			t.Fatal(err)
		}
		if s.Ready+s.Delayed+s.Leased == 0 || time.Now().After(deadline) {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOfflineUnderIngestThenBack: the server goes away under continuous
// ingest and comes back on the same address; the queue accumulates, no
// job goes dead, and the stream holds every job exactly once.
func TestOfflineUnderIngestThenBack(t *testing.T) {
	port, dir := freePort(t), t.TempDir()
	s := jsServer(t, port, dir)
	stream := createStream(t, s.ClientURL(), 1, 0)
	u := startUplink(t, Config{URL: s.ClientURL(), Timeout: time.Second, Batch: Batch{MaxJobs: 20, Linger: 5 * time.Millisecond}})
	e := startEngine(t, u, job.ClassNormal)

	enqueued := 0
	ingest := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			res, err := e.EnqueueBatch(t.Context(), "telemetry", []job.New{{Payload: []byte("r")}, {Payload: []byte("r")}})
			if err != nil {
				t.Fatal(err)
			}
			enqueued += len(res)
			time.Sleep(5 * time.Millisecond)
		}
	}
	ingest(300 * time.Millisecond)
	s.Shutdown()
	s.WaitForShutdown()
	ingest(time.Second)
	if st := u.Stats(); st.Connected || st.DownSince.IsZero() {
		t.Errorf("while the server is gone: %+v, want down", st)
	}
	down, _ := e.QueueStats("telemetry")
	if down.Ready+down.Delayed == 0 {
		t.Errorf("while down the queue holds %+v, want a backlog", down)
	}
	jsServer(t, port, dir)
	ingest(300 * time.Millisecond)
	st := waitDrained(t, e, "telemetry", 30*time.Second)
	if st.Dead != 0 || st.Ready+st.Delayed+st.Leased != 0 {
		t.Fatalf("after the outage: %+v, want every job sent, none dead", st)
	}
	msgs, ids := streamIDs(t, stream)
	if int(msgs) != enqueued || len(ids) != enqueued {
		t.Fatalf("stream holds %d messages, %d distinct ids; %d jobs were enqueued", msgs, len(ids), enqueued)
	}
	if u.Stats().Reconnects == 0 {
		t.Error("no reconnect counted")
	}
}
