package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExecBreakerOpens is SPEC 8's circuit breaker on the real binary with
// an exec handler whose command always exits 1: after breaker.failures
// consecutive failures across jobs the queue stops dispatching, so the
// remaining jobs keep their attempts instead of burning them on a target
// that is down.
func TestExecBreakerOpens(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "edgeq.yaml")
	os.WriteFile(conf, []byte(`queues:
  notify:
    class: critical
    concurrency: 1
    max_attempts: 5
    backoff: {initial: 1m, max: 1m}
    handler: {type: exec, command: ["/bin/sh", "-c", "echo down >&2; exit 1"], timeout: 10s}
    breaker: {failures: 3, cool_down: 1m}
`), 0o644)
	d := startDaemon(t, filepath.Join(dir, "data"), "--config", conf)
	ctx := context.Background()
	c := &http.Client{Timeout: 10 * time.Second}

	const jobs = 6
	body := strings.Repeat(`{"payload":"x"}`+"\n", jobs)
	if code, err := postNDJSON(ctx, c, d.base+"/v1/queues/notify/batch", []byte(body)); err != nil || code != 201 {
		t.Fatalf("batch enqueue: %d %v", code, err)
	}
	var q struct {
		Breaker string `json:"breaker"`
		Ready   int    `json:"ready"`
		Delayed int    `json:"delayed"`
		Retried int    `json:"retried_total"`
	}
	// Until the breaker opens or every job has failed once (what happens
	// when it never opens): bounded by both, and by 20s.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, err := call(ctx, c, "GET", d.base+"/v1/queues/notify", nil, &q); err != nil || code != 200 {
			t.Fatalf("queue stats: %d %v", code, err)
		}
		if q.Breaker == "open" || q.Retried >= jobs || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if q.Breaker != "open" {
		t.Fatalf("breaker %q after %d failed runs, want open after 3:\n%s", q.Breaker, q.Retried, d.log)
	}
	if q.Retried != 3 || q.Delayed != 3 || q.Ready != jobs-3 {
		t.Errorf("retried %d, delayed %d, ready %d; want 3 failed runs and %d jobs untouched", q.Retried, q.Delayed, q.Ready, jobs-3)
	}
	if !strings.Contains(d.log.String(), "breaker open") {
		t.Errorf("no \"breaker open\" line in the log:\n%s", d.log)
	}
	resp, err := c.Get(d.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("edgeq_queue_breaker_state{queue=%q} 1", "notify"); !strings.Contains(string(m), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}
