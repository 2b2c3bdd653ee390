package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPoisonJobIsDeadLetteredAfterMaxAttempts is SPEC 3's poison-job rule on
// the real binary: the queue's exec handler SIGKILLs edgeq itself. The
// attempt counter is durable at lease time, so after max_attempts crashes
// the restarted daemon dead-letters the job instead of running it again.
func TestPoisonJobIsDeadLetteredAfterMaxAttempts(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the real binary repeatedly; skipped in -short")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "edgeq.yaml")
	os.WriteFile(conf, []byte(`queues:
  poison:
    max_attempts: 3
    handler: {type: exec, command: ["/bin/sh", "-c", "kill -9 $PPID; sleep 5"], timeout: 10s}
`), 0o644)
	data := filepath.Join(dir, "data")
	c := &http.Client{Timeout: 5 * time.Second}
	ctx := context.Background()

	d := startDaemon(t, data, "--config", conf)
	var r struct {
		ID string `json:"id"`
	}
	// Delayed, so that the 201 is answered before the handler runs.
	if code, err := call(ctx, c, "POST", d.base+"/v1/queues/poison/jobs?delay=1s", []byte("boom"), &r); err != nil || code != 201 {
		t.Fatalf("enqueue: %d %v", code, err)
	}
	crashes := 0
	for restart := 0; restart < 8; restart++ {
		select {
		case <-d.done:
			crashes++
		case <-time.After(20 * time.Second):
			t.Fatalf("edgeq was not killed by its handler within 20s (after %d crashes):\n%s", crashes, d.log)
		}
		d = spawnDaemon(t, data, "--config", conf)
		if !d.waitHealthy(10 * time.Second) {
			continue // killed again during start: one more attempt spent
		}
		var j struct {
			State     string `json:"state"`
			Attempt   int    `json:"attempt"`
			LastError string `json:"last_error"`
		}
		code, err := call(ctx, c, "GET", fmt.Sprintf("%s/v1/jobs/%s", d.base, r.ID), nil, &j)
		if err != nil {
			continue // killed while we asked
		}
		if code == 200 && j.State == "dead" {
			if j.Attempt != 3 || j.LastError == "" {
				t.Errorf("dead poison job: attempt %d, last_error %q; want attempt 3 and a reason", j.Attempt, j.LastError)
			}
			if crashes != 3 {
				t.Errorf("the job crashed edgeq %d times, want max_attempts = 3", crashes)
			}
			t.Logf("dead after %d crashes: %q", crashes, j.LastError)
			// And it stays dead: the daemon keeps running.
			time.Sleep(2 * time.Second)
			select {
			case <-d.done:
				t.Fatalf("edgeq died again after the poison job was dead-lettered:\n%s", d.log)
			default:
			}
			return
		}
	}
	t.Fatalf("the poison job is not dead after %d crashes", crashes)
}
