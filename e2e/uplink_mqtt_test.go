package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// cloudBroker is an in-process mochi broker standing for the cloud one;
// it records the topic of every message published to it.
type cloudBroker struct {
	t      *testing.T
	addr   string
	srv    *mochi.Server
	mu     sync.Mutex
	topics map[string]int // guarded by mu
}

func (b *cloudBroker) start() {
	b.t.Helper()
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		b.t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "cloud", Address: b.addr})); err != nil {
		b.t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		b.t.Fatal(err)
	}
	err := srv.Subscribe("sites/#", 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		b.mu.Lock()
		b.topics[pk.TopicName]++
		b.mu.Unlock()
	})
	if err != nil {
		b.t.Fatal(err)
	}
	b.srv = srv
}

func (b *cloudBroker) stop() {
	if b.srv != nil {
		b.srv.Close()
		b.srv = nil
	}
}

func (b *cloudBroker) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.topics)
}

// TestUplinkMQTT: the real binary sends a queue's jobs through an mqtt
// uplink, one QoS 1 message each on the topic its template makes of the
// queue, a header and the job id; the broker goes away under ingest and
// comes back, and every job arrives. /v1/stats and `edgeq stats` show the
// uplink.
func TestUplinkMQTT(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary; skipped in -short")
	}
	b := &cloudBroker{t: t, addr: freePort(t), topics: map[string]int{}}
	b.start()
	t.Cleanup(b.stop)
	conf := filepath.Join(t.TempDir(), "edgeq.yaml")
	config := fmt.Sprintf(`uplinks:
  cloud: {type: mqtt, url: "tcp://%s", client_id: site-0042, topic: "sites/site-0042/{queue}/{header.sensor}/{id}",
          batch: {max_jobs: 20, linger: 5ms}, timeout: 2s}
queues:
  telemetry: {concurrency: 20, handler: {type: uplink, uplink: cloud}, breaker: {failures: 3, cool_down: 200ms},
              backoff: {initial: 50ms, max: 200ms}}
`, b.addr)
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, t.TempDir(), "--config", conf)
	c := &http.Client{Timeout: 10 * time.Second}
	var ids []string
	enqueue := func(n int) {
		for range n {
			req, _ := http.NewRequestWithContext(t.Context(), "POST", d.base+"/v1/queues/telemetry/jobs", strings.NewReader(`{"t":21.5}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Edgeq-Header-Sensor", "t1")
			var res struct{ ID string }
			if code, err := doJSON(c, req, &res); err != nil || code != 201 {
				t.Fatalf("enqueue: %d %v", code, err)
			}
			ids = append(ids, res.ID)
		}
	}
	waitArrived := func(n int) {
		deadline := time.Now().Add(20 * time.Second)
		for b.count() < n && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	enqueue(30)
	waitArrived(30)
	// A message reaches the broker's subscribers before its PUBACK
	// reaches edgeq: poll until the last one is counted.
	var up map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; {
		var doc struct {
			Uplinks []map[string]any `json:"uplinks"`
		}
		if code, err := call(t.Context(), c, "GET", d.base+"/v1/stats", nil, &doc); err != nil || code != 200 || len(doc.Uplinks) != 1 {
			t.Fatalf("stats: %d %v %+v", code, err, doc)
		}
		if up = doc.Uplinks[0]; up["jobs_sent"] == 30.0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if up["type"] != "mqtt" || up["connected"] != true || up["jobs_sent"] != 30.0 {
		t.Errorf("uplink: %v, want mqtt, connected, 30 jobs sent", up)
	}
	out, err := exec.Command(binary(t), "stats", "--addr", d.addr).CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^cloud\s+mqtt\s+up\s`).Match(out) {
		t.Errorf("edgeq stats: %v\n%s", err, out)
	}

	b.stop()
	enqueue(30)
	b.start()
	enqueue(30)
	waitArrived(len(ids))
	b.mu.Lock()
	defer b.mu.Unlock()
	missing := 0
	for _, id := range ids {
		if b.topics["sites/site-0042/telemetry/t1/"+id] == 0 {
			missing++
		}
	}
	if missing != 0 || len(b.topics) != len(ids) {
		t.Fatalf("%d of %d jobs never arrived; the broker holds %d topics", missing, len(ids), len(b.topics))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var st struct{ Ready, Dead int }
	if code, err := call(ctx, c, "GET", d.base+"/v1/queues/telemetry", nil, &st); err != nil || code != 200 || st.Dead != 0 {
		t.Errorf("queue: %d %v %+v, want none dead", code, err, st)
	}
}
