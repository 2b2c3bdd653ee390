package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDrillShedsOverHTTP: on the real binary, a governor drill to high
// refuses bulk jobs with 429 shed and a Retry-After, still takes critical
// ones, shows the drill in /v1/stats, and clearing it takes bulk again at
// once.
func TestDrillShedsOverHTTP(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "edgeq.yaml")
	os.WriteFile(conf, []byte("governor: {dwell: 10m}\nqueues:\n  sync: {class: bulk}\n  notify: {class: critical}\n"), 0o644)
	d := startDaemon(t, filepath.Join(dir, "data"), "--config", conf)
	ctx := context.Background()
	c := &http.Client{Timeout: 10 * time.Second}

	post := func(path, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "POST", d.base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if r := post("/v1/queues/sync/jobs", "x"); r.StatusCode != 201 {
		t.Fatalf("bulk before the drill: %d", r.StatusCode)
	}
	if r := post("/v1/governor/drill", `{"level":"high","duration":"60s"}`); r.StatusCode != 200 {
		t.Fatalf("drill: %d", r.StatusCode)
	}
	r := post("/v1/queues/sync/jobs", "x")
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.NewDecoder(r.Body).Decode(&e)
	if r.StatusCode != 429 || e.Error.Code != "shed" || r.Header.Get("Retry-After") == "" {
		t.Errorf("bulk during a high drill: %d %q Retry-After %q; want 429 shed with Retry-After", r.StatusCode, e.Error.Code, r.Header.Get("Retry-After"))
	}
	if r := post("/v1/queues/notify/jobs", "x"); r.StatusCode != 201 {
		t.Errorf("critical during a high drill: %d, want 201", r.StatusCode)
	}
	var stats struct {
		Governor struct {
			Level string `json:"level"`
			Drill *struct {
				Level string `json:"level"`
			} `json:"drill"`
		} `json:"governor"`
	}
	if _, err := call(ctx, c, "GET", d.base+"/v1/stats", nil, &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Governor.Level != "high" || stats.Governor.Drill == nil || stats.Governor.Drill.Level != "high" {
		t.Errorf("stats governor block = %+v, want level high with the drill", stats.Governor)
	}
	if code, err := call(ctx, c, "DELETE", d.base+"/v1/governor/drill", nil, nil); err != nil || code != 200 {
		t.Fatalf("clear drill: %d %v", code, err)
	}
	// Clearing returns at once to the level the host's own signals hold
	// (a healthy test box: not high), although the test config's dwell is
	// ten minutes.
	if _, err := call(ctx, c, "GET", d.base+"/v1/stats", nil, &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Governor.Level == "high" || stats.Governor.Drill != nil {
		t.Errorf("stats governor block right after the drill was cleared = %+v, want the host's level, no drill", stats.Governor)
	}
	if code, err := call(ctx, c, "POST", d.base+"/v1/queues/sync/jobs", []byte("x"), nil); err != nil || code != 201 {
		t.Errorf("bulk right after the drill was cleared: %d %v, want 201", code, err)
	}
}

// TestDrillPausesPullLeases: on the real binary, a lease on a queue that the
// governor's level pauses answers {"jobs": []} while other queues still
// lease, and a long poll on it wakes with the jobs once the level drops.
func TestDrillPausesPullLeases(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "edgeq.yaml")
	os.WriteFile(conf, []byte("queues:\n  sync: {class: bulk}\n  telemetry: {class: normal}\n"), 0o644)
	d := startDaemon(t, filepath.Join(dir, "data"), "--config", conf)
	ctx := context.Background()
	c := &http.Client{Timeout: 20 * time.Second}
	for _, q := range []string{"sync", "telemetry"} {
		if code, err := call(ctx, c, "POST", d.base+"/v1/queues/"+q+"/jobs", []byte("x"), nil); err != nil || code != 201 {
			t.Fatalf("enqueue %s: %d %v", q, code, err)
		}
	}
	if code, err := call(ctx, c, "POST", d.base+"/v1/governor/drill", []byte(`{"level":"high","duration":"60s"}`), nil); err != nil || code != 200 {
		t.Fatalf("drill: %d %v", code, err)
	}
	var got struct {
		Jobs []apiJob `json:"jobs"`
	}
	if code, err := call(ctx, c, "POST", d.base+"/v1/queues/sync/lease?max=10", nil, &got); err != nil || code != 200 || got.Jobs == nil || len(got.Jobs) != 0 {
		t.Fatalf("lease on bulk during a high drill: %d %v %+v, want 200 {\"jobs\": []}", code, err, got.Jobs)
	}
	if code, err := call(ctx, c, "POST", d.base+"/v1/queues/telemetry/lease", nil, &got); err != nil || code != 200 || len(got.Jobs) != 1 {
		t.Fatalf("lease on normal during a high drill: %d %v %d jobs, want 1", code, err, len(got.Jobs))
	}

	// A long poll on the shed queue waits, and wakes when a drill to normal
	// replaces the high one.
	type answer struct {
		jobs   int
		code   int
		err    error
		waited time.Duration
	}
	done := make(chan answer, 1)
	go func() {
		var got struct {
			Jobs []apiJob `json:"jobs"`
		}
		t0 := time.Now()
		code, err := call(ctx, c, "POST", d.base+"/v1/queues/sync/lease?wait=15s", nil, &got)
		done <- answer{len(got.Jobs), code, err, time.Since(t0)}
	}()
	select {
	case a := <-done:
		t.Fatalf("long poll on a shed queue answered early: %+v", a)
	case <-time.After(time.Second):
	}
	if code, err := call(ctx, c, "POST", d.base+"/v1/governor/drill", []byte(`{"level":"normal","duration":"60s"}`), nil); err != nil || code != 200 {
		t.Fatalf("drill to normal: %d %v", code, err)
	}
	a := <-done
	if a.err != nil || a.code != 200 || a.jobs != 1 || a.waited >= 10*time.Second {
		t.Fatalf("long poll after the level dropped: %+v, want the bulk job well before the 15s wait ends", a)
	}
}

// TestDrillWorkerLimitRecovers: on the real binary, a drill cuts the worker
// limit, and once the pressure ends the limit returns to max although no
// queue has work (it used to stay at min until work came). The pressure ends
// with a drill to normal rather than a clear, so that a busy test machine's
// own signals cannot hold the level up.
func TestDrillWorkerLimitRecovers(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "edgeq.yaml")
	os.WriteFile(conf, []byte("governor: {concurrency: {min: 1, max: 2}}\n"), 0o644)
	d := startDaemon(t, filepath.Join(dir, "data"), "--config", conf)
	ctx := context.Background()
	c := &http.Client{Timeout: 10 * time.Second}
	var gov struct {
		Level       string `json:"level"`
		Concurrency int    `json:"concurrency"`
	}
	if code, err := call(ctx, c, "POST", d.base+"/v1/governor/drill", []byte(`{"level":"critical","duration":"60s"}`), &gov); err != nil || code != 200 {
		t.Fatalf("drill: %d %v", code, err)
	}
	if gov.Level != "critical" || gov.Concurrency != 1 {
		t.Fatalf("governor at the drill's start = %+v, want critical with the limit cut to 1", gov)
	}
	if code, err := call(ctx, c, "POST", d.base+"/v1/governor/drill", []byte(`{"level":"normal","duration":"60s"}`), nil); err != nil || code != 200 {
		t.Fatalf("drill to normal: %d %v", code, err)
	}
	// The limit grows again 5s after its last cut (docs/governor.md).
	deadline := time.Now().Add(15 * time.Second)
	for {
		var stats struct {
			Governor struct {
				Level       string `json:"level"`
				Concurrency int    `json:"concurrency"`
				Reason      string `json:"reason"`
			} `json:"governor"`
		}
		if _, err := call(ctx, c, "GET", d.base+"/v1/stats", nil, &stats); err != nil {
			t.Fatal(err)
		}
		if stats.Governor.Concurrency == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("governor %+v 15s after the pressure ended, want the limit back at max 2", stats.Governor)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestReadyzSheddingLevels: on the real binary, /readyz answers 503
// {"status":"shedding","level":"critical"} at critical, when all but
// critical queues refuse jobs, and at elevated and high stays 200 and says
// which queues the level pauses and refuses.
func TestReadyzSheddingLevels(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "edgeq.yaml")
	os.WriteFile(conf, []byte("queues:\n  sync: {class: bulk}\n  batch: {class: low}\n  telemetry: {class: normal}\n  notify: {class: critical}\n"), 0o644)
	d := startDaemon(t, filepath.Join(dir, "data"), "--config", conf)
	ctx := context.Background()
	c := &http.Client{Timeout: 10 * time.Second}
	type ready struct {
		Status  string   `json:"status"`
		Level   string   `json:"level"`
		Paused  []string `json:"paused"`
		Refused []string `json:"refused"`
	}
	readyz := func() (int, string, ready) {
		t.Helper()
		resp, err := c.Get(d.base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r ready
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatalf("/readyz body is not JSON: %v", err)
		}
		return resp.StatusCode, resp.Header.Get("Retry-After"), r
	}
	drill := func(level string) {
		t.Helper()
		if code, err := call(ctx, c, "POST", d.base+"/v1/governor/drill", []byte(`{"level":"`+level+`","duration":"60s"}`), nil); err != nil || code != 200 {
			t.Fatalf("drill %s: %d %v", level, code, err)
		}
	}
	list := func(s []string) string { return strings.Join(s, ",") }
	tests := []struct {
		level           string
		code            int
		status          string
		paused, refused string
	}{
		{"normal", 200, "ready", "", ""},
		{"elevated", 200, "ready", "sync", ""},
		{"high", 200, "ready", "batch,sync", "batch,sync"},
		{"critical", 503, "shedding", "batch,sync,telemetry", "batch,sync,telemetry"},
	}
	for _, tt := range tests {
		drill(tt.level)
		code, retry, r := readyz()
		if code != tt.code || r.Status != tt.status || r.Level != tt.level || list(r.Paused) != tt.paused || list(r.Refused) != tt.refused {
			t.Errorf("/readyz at %s: %d %+v, want %d %s paused [%s] refused [%s]", tt.level, code, r, tt.code, tt.status, tt.paused, tt.refused)
		}
		if (code == 503) != (retry != "") {
			t.Errorf("/readyz at %s: %d with Retry-After %q", tt.level, code, retry)
		}
	}
	if code, err := call(ctx, c, "DELETE", d.base+"/v1/governor/drill", nil, nil); err != nil || code != 200 {
		t.Fatalf("clear drill: %d %v", code, err)
	}
	if code, _, r := readyz(); code != 200 || r.Status != "ready" {
		t.Errorf("/readyz after the drill: %d %+v, want 200 ready", code, r)
	}
}
