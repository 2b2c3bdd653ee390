package uplink

import (
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// TestCriticalDuringCatchUpArrivesWithinASecond is issue 19's test line
// on a real engine and JetStream server: during a catch-up paced at 20
// jobs/s, where each backlog batch (up to the queue's concurrency, 40)
// holds 2 s of tokens, five critical jobs enqueued one after the other
// each arrive (acked by their PubAck) within a second. A critical job that
// waited for a backlog batch's tokens, or rode in one, would take 2 s or
// more; overtaking them takes milliseconds, which leaves the bound
// headroom on a loaded machine.
func TestCriticalDuringCatchUpArrivesWithinASecond(t *testing.T) {
	s := jsServer(t, 0, t.TempDir())
	createStream(t, s.ClientURL(), 1, 0)
	u := startUplink(t, Config{URL: s.ClientURL(), MaxRate: 20, Batch: Batch{MaxJobs: 100, Linger: 50 * time.Millisecond}})
	e := catchUp(t, u, 1000, 10)
	deadline := time.Now().Add(10 * time.Second)
	for u.Stats().JobsSent == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var worst time.Duration
	for i := range 5 {
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		if _, err := e.EnqueueBatch(t.Context(), "alarms", []job.New{{Payload: []byte("fire")}}); err != nil {
			t.Fatal(err)
		}
		for time.Since(start) < 5*time.Second {
			if st, _ := e.QueueStats("alarms"); st.CompletedTotal == uint64(i+1) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		took := time.Since(start)
		if took > time.Second {
			t.Errorf("critical job %d during catch-up took %v to arrive, want within a second", i+1, took)
		}
		worst = max(worst, took)
	}
	t.Logf("slowest critical job: %v", worst)
	if st, _ := e.QueueStats("backlog"); st.Ready == 0 {
		t.Errorf("backlog drained before the checks: %+v", st)
	}
}
