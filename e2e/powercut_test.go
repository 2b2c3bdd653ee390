package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgeq/edgeq/internal/crashfs"
)

// TestPowerCutKeepsAcknowledgedJobs runs the real binary on crashfs, which
// forgets at a cut everything not synced (SIGKILL alone keeps the page
// cache): 16 producers enqueue over HTTP while a worker leases and acks, the
// daemon is killed, the power is cut, and the next round starts on what
// survived. Every job answered 201 must then be delivered, and no job whose
// ack was answered 200 may be delivered again. This is the first step of
// issue 18's torture test, not all of it: no MQTT, no forced compaction.
func TestPowerCutKeepsAcknowledgedJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary on a FUSE mount; skipped in -short")
	}
	backing := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(backing, 0o755); err != nil {
		t.Fatal(err)
	}
	const rounds, producers = 3, 16
	var (
		mu       sync.Mutex
		accepted = map[string]bool{} // answered 201
		acked    = map[string]bool{} // ack answered 200
		ackSent  = map[string]bool{} // ack sent, answered or not: the job may be gone
	)
	var lostAtCuts crashfs.CutStats
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	for round := range rounds {
		fsys := crashfs.MountT(t, backing, crashfs.Options{})
		d := startDaemon(t, fsys.Dir())
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for p := range producers {
			wg.Go(func() {
				for n := 0; ctx.Err() == nil; n++ {
					var r struct {
						ID string `json:"id"`
					}
					url := fmt.Sprintf("%s/v1/queues/cut/jobs", d.base)
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
				code, err := call(ctx, client, "POST", d.base+"/v1/queues/cut/lease?max=20&ttr=60s", nil, &lr)
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
		time.Sleep(time.Duration(700+300*round) * time.Millisecond) // let the stream run; the cut lands mid-stream
		d.kill()
		cancel()
		wg.Wait()
		if err := fsys.Cut(); err != nil {
			t.Fatalf("round %d: power cut: %v", round, err)
		}
		st := fsys.LastCut()
		lostAtCuts.Writes += st.Writes
		lostAtCuts.Entries += st.Entries
		mu.Lock()
		t.Logf("round %d: %d accepted, %d acked so far; the cut undid %d writes and %d entries", round, len(accepted), len(acked), st.Writes, st.Entries)
		mu.Unlock()
	}
	if lostAtCuts.Writes == 0 {
		t.Fatalf("no cut in %d rounds found an unsynced write: the cuts tested nothing", rounds)
	}
	if len(accepted) < 100 {
		t.Fatalf("only %d jobs accepted in %d rounds: the test did not exercise anything", len(accepted), rounds)
	}

	// Restart on what survived the last cut and drain everything.
	d := startDaemon(t, backing)
	delivered := map[string]bool{}
	ctx := context.Background()
	for {
		var lr struct{ Jobs []apiJob }
		code, err := call(ctx, client, "POST", d.base+"/v1/queues/cut/lease?max=100", nil, &lr)
		if err != nil || code != 200 {
			t.Fatalf("lease: %d %v\n%s", code, err, d.log)
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
				t.Errorf("job %s was answered 201 and is gone after a power cut", id)
			}
		}
	}
	for id := range acked {
		if delivered[id] {
			t.Errorf("job %s was acked with 200 and delivered again", id)
		}
	}
	t.Logf("accepted %d, acked before cuts %d, delivered after restart %d, lost %d", len(accepted), len(acked), len(delivered), lost)
	if err := d.term(); err != nil {
		t.Errorf("clean stop: %v", err)
	}
}
