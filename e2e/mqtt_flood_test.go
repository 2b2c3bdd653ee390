package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// TestMQTTFloodKeepsIngestOpen is issue 14's MQTT flood on the real binary:
// one publisher sends large QoS 1 messages as fast as the broker takes
// them, to a daemon under GOMEMLIMIT. edgeq holds a bounded number of
// bytes of them at a time, so the Go heap stays far from the limit, the
// governor never reaches critical, and an unrelated HTTP producer is never
// refused; every message becomes a job.
func TestMQTTFloodKeepsIngestOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 100 MB through a broker and the real binary; skipped in -short")
	}
	broker := "tcp://" + startMochi(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "edgeq.yaml")
	os.WriteFile(conf, []byte("max_payload: 1MiB\ngovernor: {interval: 200ms}\n"+
		"mqtt: {broker: "+broker+", client_id: edgeq-flood}\nqueues:\n  big: {}\n  web: {}\n"), 0o600)
	daemonEnv = []string{"GOMEMLIMIT=64MiB"}
	defer func() { daemonEnv = nil }()
	d := startDaemon(t, filepath.Join(dir, "data"), "--config", conf)
	ctx := context.Background()
	c := &http.Client{Timeout: 10 * time.Second}

	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("e2e-flood").SetAutoReconnect(false).
		SetWriteTimeout(30 * time.Second))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer pub.Disconnect(0)

	// An unrelated producer, refused never.
	stop := make(chan struct{})
	var sent, refused, peakHeap atomic.Int64
	var refusal atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			code, err := call(ctx, c, "POST", d.base+"/v1/queues/web/jobs", []byte("x"), nil)
			sent.Add(1)
			if err != nil || code != 201 {
				refused.Add(1)
				refusal.Store(fmt.Sprintf("%d %v", code, err))
			}
			if m, err := readMetrics(d.base); err == nil && int64(m["go_memstats_heap_inuse_bytes"]) > peakHeap.Load() {
				peakHeap.Store(int64(m["go_memstats_heap_inuse_bytes"]))
			}
		}
	}()
	stopProducer := sync.OnceFunc(func() { close(stop); <-done })
	defer func() {
		stopProducer()
		t.Logf("%d HTTP enqueues during the flood, %d refused; Go heap in use at most %d MiB (sampled every 50ms)",
			sent.Load(), refused.Load(), peakHeap.Load()>>20)
	}()

	const messages = 120
	payload := bytes.Repeat([]byte("0123456789abcdef"), 900<<10/16)
	toks := make([]mqtt.Token, 0, messages)
	for range messages {
		toks = append(toks, pub.Publish("edgeq/jobs/big", 1, false, payload))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	var q struct {
		Ready int `json:"ready"`
	}
	for deadline := time.Now().Add(60 * time.Second); q.Ready < messages; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages became jobs:\n%s", q.Ready, messages, d.log)
		}
		time.Sleep(100 * time.Millisecond)
		if code, err := call(ctx, c, "GET", d.base+"/v1/queues/big", nil, &q); err != nil || code != 200 {
			t.Fatalf("queue stats: %d %v", code, err)
		}
	}
	stopProducer()
	if n := refused.Load(); n > 0 {
		t.Errorf("%d of %d unrelated HTTP enqueues refused during the flood (last: %v)", n, sent.Load(), refusal.Load())
	}
	if log := d.log.String(); strings.Contains(log, "to=critical") {
		t.Errorf("the flood drove the governor to critical:\n%s", log)
	}
	// The last group's bytes are given back just after its acks.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n := scrape(t, d.base)["edgeq_mqtt_in_hand_bytes"]
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("edgeq_mqtt_in_hand_bytes = %v 5s after every message became a job, want 0", n)
		}
	}
}
