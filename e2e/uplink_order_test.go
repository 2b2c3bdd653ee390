package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// orderCollector is an http uplink's collector that records the job ids
// it takes, in order; it refuses some requests whole (503) and fails the
// third job of others while taking the rest.
type orderCollector struct {
	srv   *httptest.Server
	mu    sync.Mutex
	n     int      // guarded by mu: requests so far
	taken []string // guarded by mu
}

func newOrderCollector(t *testing.T) *orderCollector {
	c := &orderCollector{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ids []string
		dec := json.NewDecoder(r.Body)
		for dec.More() {
			var l struct{ ID string }
			if err := dec.Decode(&l); err != nil {
				w.WriteHeader(400)
				return
			}
			ids = append(ids, l.ID)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.n++
		switch {
		case c.n%7 == 2:
			w.WriteHeader(http.StatusServiceUnavailable)
		case c.n%5 == 4 && len(ids) >= 3:
			c.taken = append(c.taken, ids[:2]...)
			c.taken = append(c.taken, ids[3:]...)
			w.WriteHeader(http.StatusOK)
			json.NewEncoder(w).Encode(map[string][]string{"failed": {ids[2]}})
		default:
			c.taken = append(c.taken, ids...)
		}
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// lastCopies answers the ids taken, each at the place of its last copy.
func (c *orderCollector) lastCopies() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	last := map[string]int{}
	for i, id := range c.taken {
		last[id] = i
	}
	var out []string
	for i, id := range c.taken {
		if last[id] == i {
			out = append(out, id)
		}
	}
	return out
}

// TestUplinkOrderSurvivesSIGKILL: a queue an uplink drains is ordered by
// default. The collector refuses whole batches and single jobs of others,
// and edgeq is killed with SIGKILL mid-drain and restarted: every job
// arrives, and the last copy of each that the collector took is in
// enqueue order (a failed job, and the jobs leased when edgeq died, go
// out again before any later job).
func TestUplinkOrderSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary; skipped in -short")
	}
	c := newOrderCollector(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "edgeq.yaml")
	// max_rate slows the drain so that the kill lands in the middle of it.
	config := fmt.Sprintf(`governor: {concurrency: {max: 64}}
uplinks:
  cloud: {type: http, url: %q, batch: {max_jobs: 20, linger: 5ms}, max_rate: 400}
queues:
  events: {class: normal, concurrency: 40, backoff: {initial: 20ms, max: 100ms},
           breaker: {failures: 100, cool_down: 100ms}, handler: {type: uplink, uplink: cloud}}
`, c.srv.URL+"/ingest")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	d := startDaemon(t, data, "--config", conf)
	hc := &http.Client{Timeout: 10 * time.Second}
	var want []string
	for range 3 {
		var body bytes.Buffer
		for i := range 200 {
			fmt.Fprintf(&body, "{\"payload\": {\"n\": %d}}\n", i)
		}
		var res struct {
			Jobs []struct{ ID string } `json:"jobs"`
		}
		req, _ := http.NewRequestWithContext(t.Context(), "POST", d.base+"/v1/queues/events/batch", &body)
		req.Header.Set("Content-Type", "application/x-ndjson")
		if code, err := doJSON(hc, req, &res); err != nil || code != 201 {
			t.Fatalf("enqueue: %d %v", code, err)
		}
		for _, j := range res.Jobs {
			want = append(want, j.ID)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(c.lastCopies()) < 150 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	d.kill()
	before := len(c.lastCopies())
	if before < 150 || before >= len(want) {
		t.Fatalf("killed with %d of %d jobs taken: not mid-drain", before, len(want))
	}

	startDaemon(t, data, "--config", conf)
	deadline = time.Now().Add(30 * time.Second)
	for len(c.lastCopies()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := c.lastCopies(); !slices.Equal(got, want) {
		t.Fatalf("killed with %d taken; the collector's last copies (%d) are not the %d jobs in enqueue order:\n%v",
			before, len(got), len(want), got)
	}
}
