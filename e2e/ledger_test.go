package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
)

// ledger records what a daemon answered while producers and an acking
// worker ran against it, so that a test can check SPEC 3's guarantees after
// the daemon was killed (and, for the power-cut test, its unsynced writes
// dropped). Safe for concurrent use.
type ledger struct {
	mu       sync.Mutex
	accepted map[string]bool // answered 201
	acked    map[string]bool // ack answered 200
	ackSent  map[string]bool // ack sent, answered or not: the job may be gone
	// pad, when set, makes every fourth payload pad bytes long, over the
	// store's value threshold, so that the value log fills and rotates.
	pad int
}

func newLedger() *ledger {
	return &ledger{accepted: map[string]bool{}, acked: map[string]bool{}, ackSent: map[string]bool{}}
}

// run starts producers enqueuing into queue at base and one worker leasing
// and acking as it goes, until ctx ends or the daemon dies under them; wg
// waits for them.
func (l *ledger) run(ctx context.Context, wg *sync.WaitGroup, client *http.Client, base, queue string, round, producers int) {
	for p := range producers {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				var r struct {
					ID string `json:"id"`
				}
				url := fmt.Sprintf("%s/v1/queues/%s/jobs", base, queue)
				payload := []byte(fmt.Sprintf("r%d-p%d-%d", round, p, n))
				if l.pad > 0 && n%4 == 0 {
					payload = append(payload, bytes.Repeat([]byte{'.'}, l.pad)...)
				}
				code, err := call(ctx, client, "POST", url, payload, &r)
				if err != nil {
					return // the process died under us: this one was never answered
				}
				if code == 201 {
					l.mark(l.accepted, r.ID)
				}
			}
		})
	}
	wg.Go(func() {
		for ctx.Err() == nil {
			var lr struct{ Jobs []apiJob }
			code, err := call(ctx, client, "POST", base+"/v1/queues/"+queue+"/lease?max=20&ttr=60s", nil, &lr)
			if err != nil || code != 200 {
				return
			}
			for _, j := range lr.Jobs {
				l.mark(l.ackSent, j.ID)
				code, err := call(ctx, client, "POST", fmt.Sprintf("%s/v1/jobs/%s/ack?lease=%s", base, j.ID, j.Lease.ID), nil, nil)
				if err != nil {
					return
				}
				if code == 200 {
					l.mark(l.acked, j.ID)
				}
			}
		}
	})
}

func (l *ledger) mark(set map[string]bool, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	set[id] = true
}

// counts answers how many jobs were answered 201 and how many acks 200.
func (l *ledger) counts() (accepted, acked int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.accepted), len(l.acked)
}

// check drains queue on d, which was restarted after the last fault (what
// names it: "SIGKILL", "a power cut"), and fails t for every job answered
// 201 that is gone and every job acked with 200 that is delivered again.
// Call it once the producers and the worker have stopped. The drained jobs
// count as acked from then on, so check can run again after the next fault.
// It answers how many jobs the drain delivered.
func (l *ledger) check(t *testing.T, client *http.Client, d *daemon, queue, what string) int {
	t.Helper()
	delivered := map[string]bool{}
	ctx := context.Background()
	for {
		var lr struct{ Jobs []apiJob }
		code, err := call(ctx, client, "POST", d.base+"/v1/queues/"+queue+"/lease?max=100", nil, &lr)
		if err != nil || code != 200 {
			t.Fatalf("lease: %d %v (again: %s)\n%s", code, err, answerOf(client, d.base+"/v1/queues/"+queue+"/lease?max=100"), d.log)
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
	l.mu.Lock()
	defer l.mu.Unlock()
	lost := 0
	for id := range l.accepted {
		if !l.ackSent[id] && !delivered[id] {
			lost++
			if lost <= 10 {
				t.Errorf("job %s was answered 201 and is gone after %s", id, what)
			}
		}
	}
	for id := range l.acked {
		if delivered[id] {
			t.Errorf("job %s was acked with 200 and delivered again", id)
		}
	}
	for id := range delivered {
		l.acked[id], l.ackSent[id] = true, true
	}
	t.Logf("accepted %d, acked before the faults %d, delivered after restart %d, lost %d", len(l.accepted), len(l.acked)-len(delivered), len(delivered), lost)
	return len(delivered)
}

// answerOf posts to url and answers the status and body, for a failure's
// message.
func answerOf(client *http.Client, url string) string {
	resp, err := client.Post(url, "", nil)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, body)
}
