package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jetStream runs an in-process JetStream server on 127.0.0.1 with stream
// EDGE on edge.> (dedupe window 10m) and answers its URL and the stream.
func jetStream(t *testing.T) (string, jetstream.Stream) {
	url, st, _ := jetStreamServer(t)
	return url, st
}

func jetStreamServer(t *testing.T) (string, jetstream.Stream, *server.Server) {
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
	return s.ClientURL(), st, s
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

// TestUplinkSeenFromTheBox: /v1/stats, `edgeq stats` and /metrics show an
// uplink, connected and then down with its queue's backlog, and its alert
// once it is down longer than alert_after.
func TestUplinkSeenFromTheBox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary; skipped in -short")
	}
	url, stream, srv := jetStreamServer(t)
	conf := filepath.Join(t.TempDir(), "edgeq.yaml")
	config := fmt.Sprintf(`uplinks:
  cloud: {type: nats, url: %q, stream: EDGE, subject: "edge.{queue}", max_rate: 500, alert_after: 1s}
queues:
  telemetry: {handler: {type: uplink, uplink: cloud}}
  events: {class: high, handler: {type: uplink, uplink: cloud}}
`, url)
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, t.TempDir(), "--config", conf)
	c := &http.Client{Timeout: 10 * time.Second}
	enqueue := func(n int) {
		for range n {
			if code, err := call(t.Context(), c, "POST", d.base+"/v1/queues/telemetry/jobs", []byte(`{"t":1}`), nil); err != nil || code != 201 {
				t.Fatalf("enqueue: %d %v", code, err)
			}
		}
	}
	uplinkStats := func() map[string]any {
		var doc struct {
			Uplinks []map[string]any `json:"uplinks"`
		}
		if code, err := call(t.Context(), c, "GET", d.base+"/v1/stats", nil, &doc); err != nil || code != 200 || len(doc.Uplinks) != 1 {
			t.Fatalf("stats: %d %v %+v", code, err, doc)
		}
		return doc.Uplinks[0]
	}
	enqueue(5)
	// The stream holds a message before its ack reaches the uplink, which
	// counts it sent then: wait for both.
	up := uplinkStats()
	for deadline := time.Now().Add(30 * time.Second); (streamCount(t, stream) < 5 || up["jobs_sent"] != 5.0) && time.Now().Before(deadline); up = uplinkStats() {
		time.Sleep(20 * time.Millisecond)
	}
	if up["name"] != "cloud" || up["connected"] != true || up["jobs_sent"] != 5.0 || up["max_rate"] != 500.0 ||
		up["last_success"] == nil || fmt.Sprint(up["queues"]) != "[events telemetry]" {
		t.Errorf("uplink while up: %v", up)
	}
	out, err := exec.Command(binary(t), "stats", "--addr", d.addr).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("UPLINK")) || !regexp.MustCompile(`(?m)^cloud\s+nats\s+up\s`).Match(out) {
		t.Errorf("edgeq stats: %v\n%s", err, out)
	}
	metrics := func() string {
		resp, err := c.Get(d.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for _, want := range []string{`edgeq_uplink_connected{uplink="cloud"} 1`, `edgeq_uplink_jobs_sent_total{uplink="cloud"} 5`,
		`edgeq_uplink_batch_size_count{uplink="cloud"}`, `edgeq_uplink_max_rate{uplink="cloud"} 500`} {
		if m := metrics(); !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	enqueue(3)
	deadline := time.Now().Add(30 * time.Second)
	for up = uplinkStats(); up["alerting"] != true && time.Now().Before(deadline); up = uplinkStats() {
		time.Sleep(50 * time.Millisecond)
	}
	if up["connected"] != false || up["alerting"] != true || up["backlog_jobs"].(float64) < 3 || up["down_for_s"].(float64) < 1 {
		t.Errorf("uplink while down: %v", up)
	}
	if jobs, bytes := up["backlog_jobs"].(float64), up["backlog_bytes"]; bytes != jobs*7 { // each payload is {"t":1}
		t.Errorf("uplink while down: backlog_bytes %v for %v jobs of 7 bytes", bytes, jobs)
	}
	if m := metrics(); !strings.Contains(m, `edgeq_uplink_backlog_bytes{uplink="cloud"} `) {
		t.Errorf("/metrics lacks edgeq_uplink_backlog_bytes")
	}
	if m := metrics(); !strings.Contains(m, `edgeq_uplink_alert{uplink="cloud"} 1`) || !strings.Contains(m, `edgeq_uplink_connected{uplink="cloud"} 0`) {
		t.Errorf("/metrics while down lacks the alert")
	}
	out, _ = exec.Command(binary(t), "stats", "--addr", d.addr).CombinedOutput()
	if !regexp.MustCompile(`(?m)^cloud\s+nats\s+down \S+ ALERT\s`).Match(out) {
		t.Errorf("edgeq stats while down:\n%s", out)
	}
	if !strings.Contains(d.log.String(), "uplink alert raised") {
		t.Errorf("no alert in the log:\n%s", d.log)
	}
}

// TestUplinkMissingStreamStopsStart: a server that answers without the
// uplink's stream stops edgeq at start with an error naming the uplink
// and the stream, exit 78 (a configuration error); edgeq creates nothing.
func TestUplinkMissingStreamStopsStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary; skipped in -short")
	}
	url, _ := jetStream(t)
	conf := filepath.Join(t.TempDir(), "edgeq.yaml")
	config := fmt.Sprintf("uplinks:\n  cloud: {type: nats, url: %q, stream: NOPE, subject: \"edge.{queue}\"}\n"+
		"queues:\n  telemetry: {handler: {type: uplink, uplink: cloud}}\n", url)
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	d := spawnDaemon(t, t.TempDir(), "--config", conf)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("edgeq still running with a missing stream:\n%s", d.log)
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 78 || !strings.Contains(d.log.String(), `uplinks.cloud: stream "NOPE" not found`) {
		t.Errorf("exit %d, log:\n%s\nwant 78 and an error naming uplinks.cloud and stream \"NOPE\"", code, d.log)
	}
}

// TestUplinkHTTP: the real binary drains a backlog to an HTTP collector
// as gzip NDJSON batches with the token from token_file; a job the
// collector lists as failed is sent again, and /v1/stats shows the
// uplink's compression.
func TestUplinkHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary; skipped in -short")
	}
	var (
		mu       sync.Mutex
		got      = map[string]int{} // guarded by mu
		failOnce string             // guarded by mu: the job answered failed once
		bad      []string           // guarded by mu: what the collector did not like
	)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		zr, err := gzip.NewReader(r.Body)
		if err != nil || r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("Authorization") != "Bearer t0ken" ||
			r.Header.Get("Edgeq-Batch") == "" || r.Header.Get("Content-Type") != "application/x-ndjson" {
			bad = append(bad, fmt.Sprintf("request %v: %v", r.Header, err))
			w.WriteHeader(400)
			return
		}
		var failed []string
		dec := json.NewDecoder(zr)
		for dec.More() {
			var l struct {
				ID      string          `json:"id"`
				Queue   string          `json:"queue"`
				Payload json.RawMessage `json:"payload"`
			}
			if err := dec.Decode(&l); err != nil || l.Queue != "telemetry" || !strings.HasPrefix(string(l.Payload), `{"n":`) {
				bad = append(bad, fmt.Sprintf("line %+v: %v", l, err))
				continue
			}
			if failOnce == "" {
				failOnce = l.ID
				failed = append(failed, l.ID)
				continue
			}
			got[l.ID]++
		}
		w.WriteHeader(207)
		json.NewEncoder(w).Encode(map[string]any{"failed": failed})
	}))
	t.Cleanup(collector.Close)

	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "edgeq.yaml")
	config := fmt.Sprintf(`governor: {concurrency: {max: 64}}
uplinks:
  cloud: {type: http, url: %q, token_file: %q, compress: gzip, batch: {max_jobs: 50, linger: 5ms}}
queues:
  # Not ordered: the jobs after the failed one in its batch are acked,
  # not sent again after it.
  telemetry: {class: normal, concurrency: 50, ordered: false, handler: {type: uplink, uplink: cloud}}
`, collector.URL+"/ingest", token)
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, t.TempDir(), "--config", conf)
	c := &http.Client{Timeout: 10 * time.Second}
	var body bytes.Buffer
	for i := range 300 {
		fmt.Fprintf(&body, "{\"payload\": {\"n\": %d, \"unit\": \"celsius\", \"value\": 21.5}}\n", i)
	}
	var res struct {
		Jobs []struct{ ID string } `json:"jobs"`
	}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", d.base+"/v1/queues/telemetry/batch", &body)
	req.Header.Set("Content-Type", "application/x-ndjson")
	if code, err := doJSON(c, req, &res); err != nil || code != 201 || len(res.Jobs) != 300 {
		t.Fatalf("enqueue: %d %v (%d jobs)", code, err, len(res.Jobs))
	}
	arrived := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	deadline := time.Now().Add(20 * time.Second)
	for arrived() < len(res.Jobs) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	for _, j := range res.Jobs {
		if got[j.ID] != 1 {
			t.Errorf("job %s arrived %d times, want once", j.ID, got[j.ID])
		}
	}
	if len(bad) > 0 {
		t.Errorf("the collector refused: %v", bad)
	}
	mu.Unlock()
	var doc struct {
		Uplinks []struct {
			Type        string  `json:"type"`
			JobsSent    int     `json:"jobs_sent"`
			JobsFailed  int     `json:"jobs_failed"`
			Compression float64 `json:"compression"`
		} `json:"uplinks"`
	}
	// A batch is counted once its answer is back, a moment after the
	// collector has its jobs.
	for {
		if code, err := call(t.Context(), c, "GET", d.base+"/v1/stats", nil, &doc); err != nil || code != 200 || len(doc.Uplinks) != 1 {
			t.Fatalf("stats: %d %v %+v", code, err, doc)
		}
		if doc.Uplinks[0].JobsSent >= 300 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if u := doc.Uplinks[0]; u.Type != "http" || u.JobsSent != 300 || u.JobsFailed != 1 || u.Compression <= 0 || u.Compression >= 0.5 {
		t.Errorf("uplink stats %+v, want http, 300 sent, 1 failed, gzip's ratio", u)
	}
}
