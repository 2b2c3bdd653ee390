package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

type scheduleDoc struct {
	Name       string            `json:"name"`
	Source     string            `json:"source"`
	Cron       string            `json:"cron"`
	Queue      string            `json:"queue"`
	CatchUp    string            `json:"catch_up"`
	LastFireAt *time.Time        `json:"last_fire_at"`
	NextFireAt *time.Time        `json:"next_fire_at"`
	Runs       map[string]uint64 `json:"runs"`
}

// TestScheduleAPI: /v1/schedules on the real binary: the file's schedules
// are listed and read-only (409), a bad field is refused with 400 naming it
// and changes nothing, PUT creates (201) then replaces (200), DELETE
// removes (then 404), and stats and metrics count the schedules.
func TestScheduleAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped in -short")
	}
	_, c := apiDaemon(t, "strict_queues: true\nqueues: {q: {}}\nschedules:\n  nightly: {cron: \"0 3 * * *\", queue: q}\n")
	var list struct{ Schedules []scheduleDoc }
	c.ok("GET", "/v1/schedules", "", 200, &list)
	if len(list.Schedules) != 1 || list.Schedules[0].Source != "file" || list.Schedules[0].NextFireAt == nil || list.Schedules[0].LastFireAt != nil {
		t.Fatalf("schedules = %+v", list)
	}
	c.refused("PUT", "/v1/schedules/nightly", `{"cron":"@daily","queue":"q"}`, 409, "conflict")
	c.refused("DELETE", "/v1/schedules/nightly", "", 409, "conflict")
	for _, b := range []struct{ body, field string }{
		{`{"cron":"61 * * * *","queue":"q"}`, "cron"},
		{`{"cron":"@every 30s","timezone":"Nowhere/Town","queue":"q"}`, "timezone"},
		{`{"cron":"@every 30s","queue":"nope"}`, "queue"},
		{`{"cron":"@every 30s","queue":"q","catch_up":"maybe"}`, "catch_up"},
		{`{"cron":"@every 30s","queue":"q","overlap":"stack"}`, "overlap"},
		{`{"cron":"@every 30s","queue":"q","crontab":"x"}`, "body"},
	} {
		a := c.refused("PUT", "/v1/schedules/tick", b.body, 400, "invalid_argument")
		if !strings.HasPrefix(a.msg, b.field+":") {
			t.Errorf("PUT %s: message %q does not start with %s:", b.body, a.msg, b.field)
		}
	}
	c.refused("GET", "/v1/schedules/tick", "", 404, "not_found")
	var doc scheduleDoc
	c.ok("PUT", "/v1/schedules/tick", `{"cron":"@every 1s","queue":"q","payload":{"n":1},"catch_up":"skip"}`, 201, &doc)
	if doc.Source != "api" || doc.CatchUp != "skip" || doc.NextFireAt == nil {
		t.Errorf("PUT answered %+v", doc)
	}
	c.ok("PUT", "/v1/schedules/tick", `{"cron":"@every 1s","queue":"q","catch_up":"once","overlap":"skip"}`, 200, &doc)
	deadline := time.Now().Add(10 * time.Second)
	for doc.LastFireAt == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		c.ok("GET", "/v1/schedules/tick", "", 200, &doc)
	}
	if doc.LastFireAt == nil || doc.Runs["fired"] == 0 {
		t.Fatalf("tick never ran: %+v", doc)
	}
	var stats struct {
		Schedules struct {
			Count int               `json:"count"`
			Runs  map[string]uint64 `json:"runs"`
		} `json:"schedules"`
	}
	c.ok("GET", "/v1/stats", "", 200, &stats)
	if stats.Schedules.Count != 2 || stats.Schedules.Runs["fired"] == 0 {
		t.Errorf("stats schedules = %+v", stats.Schedules)
	}
	m := c.do("GET", "/metrics", "")
	if !strings.Contains(string(m.body), `edgeq_schedule_fires_total{result="fired",schedule="tick"}`) || !strings.Contains(string(m.body), "edgeq_schedules 2") {
		t.Errorf("metrics lack the schedules' series")
	}
	c.ok("DELETE", "/v1/schedules/tick", "", 200, nil)
	c.refused("DELETE", "/v1/schedules/tick", "", 404, "not_found")
	c.ok("GET", "/v1/schedules", "", 200, &list)
	if len(list.Schedules) != 1 {
		t.Errorf("after delete: %+v", list)
	}
}

// TestScheduleSurvivesSIGKILL: a schedule made through the API runs every
// second; the real binary is killed with SIGKILL and restarted after
// missing runs. With catch_up all, the runs enqueued across both lives are
// every second from the first to the last, none twice: the run and its
// stored time are one commit, so the kill can neither repeat nor lose one.
func TestScheduleSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary; skipped in -short")
	}
	dir := t.TempDir()
	d := startDaemon(t, dir)
	c := &apiClient{t: t, hc: &http.Client{Timeout: 10 * time.Second}, base: d.base}
	c.ok("PUT", "/v1/schedules/tick", `{"cron":"@every 1s","queue":"ticks","catch_up":"all"}`, 201, nil)
	c.ok("PUT", "/v1/schedules/once", `{"cron":"@every 1s","queue":"once","catch_up":"once"}`, 201, nil)
	time.Sleep(2500 * time.Millisecond)
	d.kill()
	time.Sleep(2500 * time.Millisecond) // off across two or three runs
	d = startDaemon(t, dir)
	c.base = d.base
	time.Sleep(1500 * time.Millisecond)

	runs := func(queue string) []time.Time {
		var out []time.Time
		for range 10 {
			var res struct {
				Jobs []struct {
					ID      string              `json:"id"`
					Headers map[string]string   `json:"headers"`
					Lease   struct{ ID string } `json:"lease"`
				} `json:"jobs"`
			}
			c.ok("POST", "/v1/queues/"+queue+"/lease?max=100", "", 200, &res)
			for _, j := range res.Jobs {
				at, err := time.Parse(time.RFC3339, j.Headers["edgeq-run-at"])
				if err != nil || j.Headers["edgeq-schedule"] == "" {
					t.Fatalf("run %s: headers %v", j.ID, j.Headers)
				}
				out = append(out, at)
				c.ok("POST", fmt.Sprintf("/v1/jobs/%s/ack?lease=%s", j.ID, j.Lease.ID), "", 200, nil)
			}
			if len(res.Jobs) == 0 {
				break
			}
		}
		slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
		return out
	}
	all := runs("ticks")
	if len(all) < 5 {
		t.Fatalf("catch_up all: %d runs in about 6.5s, want at least 5:\n%s", len(all), d.log)
	}
	for i := 1; i < len(all); i++ {
		if gap := all[i].Sub(all[i-1]); gap != time.Second {
			t.Errorf("catch_up all: run %s follows %s (%s): a run was repeated or forgotten", all[i], all[i-1], gap)
		}
	}
	once := runs("once")
	for i := 1; i < len(once); i++ {
		if !once[i].After(once[i-1]) {
			t.Errorf("catch_up once: run %s repeated", once[i])
		}
	}
	if len(once) >= len(all) {
		t.Errorf("catch_up once ran %d times, catch_up all %d: once ran the missed runs one by one", len(once), len(all))
	}
}

// TestScheduleReload: SIGHUP applies the file's schedules: a new one is
// listed and runs, a removed one is gone.
func TestScheduleReload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped in -short")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "edgeq.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("schedules:\n  old: {cron: \"@daily\", queue: q}\n")
	d := startDaemon(t, filepath.Join(dir, "data"), "--config", conf)
	c := &apiClient{t: t, hc: &http.Client{Timeout: 10 * time.Second}, base: d.base}
	names := func() []string {
		var list struct{ Schedules []scheduleDoc }
		c.ok("GET", "/v1/schedules", "", 200, &list)
		var out []string
		for _, s := range list.Schedules {
			out = append(out, s.Name)
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{"old"}) {
		t.Fatalf("schedules = %q", got)
	}
	write("schedules:\n  new: {cron: \"@every 1s\", queue: q}\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(names(), []string{"new"}) {
		if time.Now().After(deadline) {
			t.Fatalf("schedules %q 10s after SIGHUP:\n%s", names(), d.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var doc scheduleDoc
	for doc.LastFireAt == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		c.ok("GET", "/v1/schedules/new", "", 200, &doc)
	}
	if doc.LastFireAt == nil || doc.Source != "file" {
		t.Errorf("the reloaded schedule did not run: %+v", doc)
	}
	if strings.Contains(d.log.String(), "key=schedules") {
		t.Errorf("the reload said schedules need a restart:\n%s", d.log)
	}
}
