package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestCrashKeepsAcknowledgedJobs is SPEC 3's durability guarantee on the real
// binary: 16 producers enqueue over HTTP while a worker leases and acks; the
// process is killed with SIGKILL mid-stream and restarted on the same data
// directory, for several rounds. Every job answered 201 must then be
// delivered, and no job whose ack was answered 200 may be delivered again.
func TestCrashKeepsAcknowledgedJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary; skipped in -short")
	}
	dir := t.TempDir()
	const rounds, producers = 3, 16
	var (
		mu       sync.Mutex
		accepted = map[string]bool{} // answered 201
		acked    = map[string]bool{} // ack answered 200
		ackSent  = map[string]bool{} // ack sent, answered or not: the job may be gone
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	for round := range rounds {
		d := startDaemon(t, dir)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for p := range producers {
			wg.Go(func() {
				for n := 0; ctx.Err() == nil; n++ {
					var r struct {
						ID string `json:"id"`
					}
					url := fmt.Sprintf("%s/v1/queues/crash/jobs", d.base)
					code, err := call(ctx, client, "POST", url, []byte(fmt.Sprintf("r%d-p%d-%d", round, p, n)), &r)
					if err != nil {
						return // the process died under us: this one was never answered
					}
					if code == 201 {
						mu.Lock()
						accepted[r.ID] = true
						mu.Unlock()
					}
				}
			})
		}
		wg.Go(func() { // a worker acking as it goes
			for ctx.Err() == nil {
				var lr struct{ Jobs []apiJob }
				code, err := call(ctx, client, "POST", d.base+"/v1/queues/crash/lease?max=20&ttr=60s", nil, &lr)
				if err != nil || code != 200 {
					return
				}
				for _, j := range lr.Jobs {
					mu.Lock()
					ackSent[j.ID] = true
					mu.Unlock()
					code, err := call(ctx, client, "POST", fmt.Sprintf("%s/v1/jobs/%s/ack?lease=%s", d.base, j.ID, j.Lease.ID), nil, nil)
					if err != nil {
						return
					}
					if code == 200 {
						mu.Lock()
						acked[j.ID] = true
						mu.Unlock()
					}
				}
			}
		})
		time.Sleep(time.Duration(700+300*round) * time.Millisecond) // let the stream run; the kill lands mid-stream
		d.kill()
		cancel()
		wg.Wait()
		mu.Lock()
		t.Logf("round %d: %d accepted, %d acked so far", round, len(accepted), len(acked))
		mu.Unlock()
	}
	if len(accepted) < 100 {
		t.Fatalf("only %d jobs accepted in %d rounds: the test did not exercise anything", len(accepted), rounds)
	}

	// Restart and drain everything.
	d := startDaemon(t, dir)
	delivered := map[string]bool{}
	ctx := context.Background()
	for {
		var lr struct{ Jobs []apiJob }
		code, err := call(ctx, client, "POST", d.base+"/v1/queues/crash/lease?max=100", nil, &lr)
		if err != nil || code != 200 {
			t.Fatalf("lease: %d %v", code, err)
		}
		if len(lr.Jobs) == 0 {
			break
		}
		for _, j := range lr.Jobs {
			if delivered[j.ID] {
				t.Errorf("job %s delivered twice in the drain", j.ID)
			}
			delivered[j.ID] = true
			if code, err := call(ctx, client, "POST", fmt.Sprintf("%s/v1/jobs/%s/ack?lease=%s", d.base, j.ID, j.Lease.ID), nil, nil); err != nil || code != 200 {
				t.Fatalf("ack in drain: %d %v", code, err)
			}
		}
	}
	lost := 0
	for id := range accepted {
		if !ackSent[id] && !delivered[id] {
			lost++
			if lost <= 10 {
				t.Errorf("job %s was answered 201 and is gone after SIGKILL", id)
			}
		}
	}
	for id := range acked {
		if delivered[id] {
			t.Errorf("job %s was acked with 200 and delivered again", id)
		}
	}
	t.Logf("accepted %d, acked before kills %d, delivered after restart %d, lost %d", len(accepted), len(acked), len(delivered), lost)
	if err := d.term(); err != nil {
		t.Errorf("clean stop: %v", err)
	}
}
