package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jetStream runs an in-process JetStream server on 127.0.0.1 with stream
// EDGE on edge.> (dedupe window 10m) and answers its URL and the stream.
func jetStream(t *testing.T) (string, jetstream.Stream) {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "EDGE", Subjects: []string{"edge.>"}, Duplicates: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return s.ClientURL(), st
}

// streamCount answers how many messages the stream holds.
func streamCount(t *testing.T, s jetstream.Stream) uint64 {
	t.Helper()
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestUplinkSIGKILLMidBatch: edgeq drains a backlog into JetStream and is
// killed with SIGKILL mid-batch, then restarted on the same data: no job
// is lost, and the jobs published but not yet acked in edgeq are sent again
// and dropped by the stream's dedupe, so the stream holds each job once.
func TestUplinkSIGKILLMidBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary; skipped in -short")
	}
	url, stream := jetStream(t)
	conf := filepath.Join(t.TempDir(), "edgeq.yaml")
	// max_rate slows the drain so that the kill lands in the middle of it.
	config := fmt.Sprintf(`governor: {concurrency: {max: 64}}
uplinks:
  cloud: {type: nats, url: %q, stream: EDGE, subject: "edge.{queue}",
          batch: {max_jobs: 50, linger: 5ms}, max_rate: 1500}
queues:
  telemetry: {class: normal, concurrency: 50, handler: {type: uplink, uplink: cloud}}
`, url)
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	d := startDaemon(t, dir, "--config", conf)
	ctx := t.Context()
	c := &http.Client{Timeout: 10 * time.Second}
	ids := map[string]bool{}
	for range 6 {
		var body bytes.Buffer
		for i := range 500 {
			fmt.Fprintf(&body, "{\"payload\": {\"n\": %d}}\n", i)
		}
		var res struct {
			Jobs []struct{ ID string } `json:"jobs"`
		}
		req, _ := http.NewRequestWithContext(ctx, "POST", d.base+"/v1/queues/telemetry/batch", &body)
		req.Header.Set("Content-Type", "application/x-ndjson")
		if code, err := doJSON(c, req, &res); err != nil || code != 201 {
			t.Fatalf("enqueue: %d %v", code, err)
		}
		for _, j := range res.Jobs {
			ids[j.ID] = true
		}
	}
	// Kill once some of the backlog is in the stream, well before all.
	deadline := time.Now().Add(20 * time.Second)
	for streamCount(t, stream) < 600 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	d.kill()
	before := streamCount(t, stream)
	if before == 0 || before >= uint64(len(ids)) {
		t.Fatalf("killed with %d of %d jobs in the stream: not mid-drain", before, len(ids))
	}

	startDaemon(t, dir, "--config", conf)
	restarted := time.Now()
	deadline = time.Now().Add(30 * time.Second)
	for streamCount(t, stream) < uint64(len(ids)) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	seen := map[string]int{}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		seen[m.Header.Get("Nats-Msg-Id")]++
	}
	lost := 0
	for id := range ids {
		if seen[id] == 0 {
			lost++
		}
	}
	if info.State.Msgs != uint64(len(ids)) || len(seen) != len(ids) || lost != 0 {
		t.Fatalf("stream holds %d messages, %d distinct ids; %d jobs enqueued, %d lost (killed at %d)",
			info.State.Msgs, len(seen), len(ids), lost, before)
	}
	t.Logf("killed with %d of %d in the stream; all arrived once, %v after the restart", before, len(ids), time.Since(restarted))
}

// doJSON sends req and decodes a JSON answer under 300 into out.
func doJSON(c *http.Client, req *http.Request, out any) (int, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
}
