package httpapi

import (
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
)

// TestClientNackDelay: the client's delay means what the API's does (SPEC
// 5): 0 makes the job ready now, engine.NackBackoff waits for the queue's
// backoff (an hour here), a positive delay delays it.
func TestClientNackDelay(t *testing.T) {
	c := startRealServer(t, engine.Config{Backoff: engine.Backoff{Initial: time.Hour, Max: time.Hour}}).client
	for _, tc := range []struct {
		name  string
		delay time.Duration
		want  string
	}{
		{"zero is now", 0, "ready"},
		{"backoff", engine.NackBackoff, "delayed"},
		{"positive", time.Minute, "delayed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if _, err := c.Enqueue(ctx, "nack", []byte("x"), EnqueueOptions{}); err != nil {
				t.Fatal(err)
			}
			jobs, err := c.Lease(ctx, "nack", 1, 0, 0)
			if err != nil || len(jobs) != 1 || jobs[0].Lease == nil {
				t.Fatalf("Lease = %v, %v", jobs, err)
			}
			st, err := c.Nack(ctx, jobs[0].ID, jobs[0].Lease.ID, tc.delay, "again")
			if err != nil || st != tc.want {
				t.Errorf("Nack(delay %v) = %q, %v; want %q", tc.delay, st, err, tc.want)
			}
			if _, err := c.Purge(ctx, "nack"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
