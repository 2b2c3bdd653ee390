package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBoundsOverHTTP runs the real binary with bounded queues: on_full
// reject answers 429 queue_full naming the bound it hit (max_depth or
// max_bytes); on_full evict_oldest accepts every job and keeps the newest,
// and a SIGKILL right after an evicting enqueue was answered finds, on
// restart, exactly the jobs it was told about: the evictions and the new
// job were durable together.
func TestBoundsOverHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary; skipped in -short")
	}
	conf := filepath.Join(t.TempDir(), "edgeq.yaml")
	config := `queues:
  tele: {max_depth: 3, on_full: evict_oldest}
  depth: {max_depth: 1}
  bytes: {max_bytes: 10}
`
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	d := startDaemon(t, dir, "--config", conf)
	c := &http.Client{Timeout: 10 * time.Second}
	post := func(queue, body string) (int, string) {
		t.Helper()
		resp, err := c.Post(d.base+"/v1/queues/"+queue+"/jobs", "application/octet-stream", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	for _, tc := range []struct{ queue, first, second, bound string }{
		{"depth", "a", "b", "max_depth is 1"},
		{"bytes", "123456", "123456", "max_bytes is 10"},
	} {
		if code, body := post(tc.queue, tc.first); code != 201 {
			t.Fatalf("%s: first job: %d %s", tc.queue, code, body)
		}
		code, body := post(tc.queue, tc.second)
		if code != 429 || !strings.Contains(body, `"code":"queue_full"`) || !strings.Contains(body, tc.bound) {
			t.Errorf("%s: over the bound: %d %s, want 429 queue_full naming %q", tc.queue, code, body, tc.bound)
		}
	}

	var ids []string
	for i := range 5 {
		code, body := post("tele", fmt.Sprintf("job-%d", i))
		var r struct{ ID string }
		if err := json.Unmarshal([]byte(body), &r); code != 201 || err != nil {
			t.Fatalf("tele job %d: %d %s", i, code, body)
		}
		ids = append(ids, r.ID)
	}
	d.kill()

	d = startDaemon(t, dir, "--config", conf)
	for i, id := range ids {
		want := 200
		if i < 2 {
			want = 404 // evicted
		}
		if code, err := call(t.Context(), c, "GET", d.base+"/v1/jobs/"+id, nil, nil); err != nil || code != want {
			t.Errorf("job %d (%s) after the restart: %d %v, want %d", i, id, code, err, want)
		}
	}
	var doc struct {
		Queues []struct {
			Name  string
			Ready int64
			Bytes *int64
		}
	}
	if code, err := call(t.Context(), c, "GET", d.base+"/v1/stats", nil, &doc); err != nil || code != 200 {
		t.Fatalf("stats: %d %v", code, err)
	}
	// tele is bounded by depth only: a restart does not read its records
	// to count its bytes (null).
	for _, q := range doc.Queues {
		if q.Name == "tele" && (q.Ready != 3 || q.Bytes != nil) {
			t.Errorf("tele after the restart: %d ready, bytes %v; want 3 and null (not counted)", q.Ready, q.Bytes)
		}
	}
	var leased struct{ Jobs []apiJob }
	if code, err := call(t.Context(), c, "POST", d.base+"/v1/queues/tele/lease?max=10", nil, &leased); err != nil || code != 200 {
		t.Fatalf("lease: %d %v", code, err)
	}
	var got []string
	for _, j := range leased.Jobs {
		got = append(got, j.ID)
	}
	if fmt.Sprint(got) != fmt.Sprint(ids[2:]) {
		t.Errorf("leased %v after the restart, want the newest three %v", got, ids[2:])
	}
}
