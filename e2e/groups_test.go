package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestGroupsOverHTTPAndRestart runs ordered groups through the real binary:
// jobs enqueued with ?group= and batch lines with "group" lease one per
// group at a time in order (group_concurrency 1 from the config), a job
// nacked with a delay keeps its group waiting, /v1/stats counts the
// groups; after SIGKILL the retry and the group's order survive.
func TestGroupsOverHTTPAndRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := t.TempDir()
	conf := filepath.Join(t.TempDir(), "edgeq.yaml")
	if err := os.WriteFile(conf, []byte("queues:\n  plc:\n    group_concurrency: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, data, "--config", conf)
	c := &http.Client{Timeout: 10 * time.Second}

	for _, p := range []string{"1", "2"} {
		if code, err := call(ctx, c, "POST", d.base+"/v1/queues/plc/jobs?group=press-1", []byte(p), nil); err != nil || code != 201 {
			t.Fatalf("enqueue with group: %d %v", code, err)
		}
	}
	batch := `{"payload":3,"group":"press-1"}` + "\n" + `{"payload":10,"group":"press-2"}` + "\n" + `{"payload":20}` + "\n"
	if code, err := postNDJSON(ctx, c, d.base+"/v1/queues/plc/batch", []byte(batch)); err != nil || code != 201 {
		t.Fatalf("batch with groups: %d %v", code, err)
	}
	if code, err := call(ctx, c, "POST", d.base+"/v1/queues/plc/jobs?group=bad%20group", []byte("x"), nil); err != nil || code != 400 {
		t.Errorf("enqueue with group %q: %d %v, want 400", "bad group", code, err)
	}

	type leased struct {
		Jobs []struct {
			apiJob
			Group string `json:"group"`
		}
	}
	lease := func(max int) leased {
		t.Helper()
		var lr leased
		if code, err := call(ctx, c, "POST", d.base+"/v1/queues/plc/lease?max="+strconv.Itoa(max)+"&ttr=1h", nil, &lr); err != nil || code != 200 {
			t.Fatalf("lease: %d %v\n%s", code, err, d.log)
		}
		return lr
	}
	payloads := func(lr leased) []string {
		var ps []string
		for _, j := range lr.Jobs {
			ps = append(ps, j.Group+":"+string(j.Payload))
		}
		slices.Sort(ps)
		return ps
	}
	first := lease(9)
	if got := payloads(first); !slices.Equal(got, []string{":20", "press-1:1", "press-2:10"}) {
		t.Fatalf("first lease = %v, want the head of each group and the job without one", got)
	}
	for _, j := range first.Jobs {
		if j.Group == "press-1" {
			if code, err := call(ctx, c, "POST", d.base+"/v1/jobs/"+j.ID+"/nack?lease="+j.Lease.ID+"&delay=2s", nil, nil); err != nil || code != 200 {
				t.Fatalf("nack: %d %v", code, err)
			}
		}
	}
	if got := payloads(lease(9)); len(got) != 0 {
		t.Fatalf("leased %v while press-1's head waits to retry and press-2's runs, want nothing", got)
	}
	var stats struct {
		Queues []struct {
			Name             string
			Groups           int     `json:"groups"`
			GroupConcurrency int     `json:"group_concurrency"`
			OldestGroup      string  `json:"oldest_group"`
			OldestGroupAgeS  float64 `json:"oldest_group_age_s"`
		}
	}
	if code, err := call(ctx, c, "GET", d.base+"/v1/stats", nil, &stats); err != nil || code != 200 || len(stats.Queues) != 1 {
		t.Fatalf("stats: %d %v %+v", code, err, stats)
	}
	if q := stats.Queues[0]; q.Groups != 2 || q.GroupConcurrency != 1 || q.OldestGroup != "press-1" {
		t.Errorf("stats of plc = %+v, want 2 groups, group_concurrency 1, oldest press-1", q)
	}
	metrics := getText(ctx, t, c, d.base+"/metrics")
	if !strings.Contains(metrics, `edgeq_queue_groups{queue="plc"} 2`) {
		t.Errorf("metrics lack edgeq_queue_groups{queue=\"plc\"} 2")
	}

	d.kill()
	d = startDaemon(t, data, "--config", conf)
	// The leased heads of press-2 and of no group were given back at start;
	// press-1 waits for its retry (2s), then runs 1, 2, 3 in order.
	var order []string
	deadline := time.Now().Add(20 * time.Second)
	for len(order) < 5 && time.Now().Before(deadline) {
		lr := lease(9)
		if len(lr.Jobs) == 0 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for _, j := range lr.Jobs {
			order = append(order, j.Group+":"+string(j.Payload))
			if code, err := call(ctx, c, "POST", d.base+"/v1/jobs/"+j.ID+"/ack?lease="+j.Lease.ID, nil, nil); err != nil || code != 200 {
				t.Fatalf("ack: %d %v", code, err)
			}
		}
	}
	var p1 []string
	for _, o := range order {
		if strings.HasPrefix(o, "press-1:") {
			p1 = append(p1, o)
		}
	}
	if !slices.Equal(p1, []string{"press-1:1", "press-1:2", "press-1:3"}) || !slices.Contains(order, "press-2:10") {
		t.Fatalf("after the restart ran %v, want press-1 in order 1, 2, 3 and press-2's job", order)
	}
}

// getText answers the body of a GET.
func getText(ctx context.Context, t *testing.T, c *http.Client, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
