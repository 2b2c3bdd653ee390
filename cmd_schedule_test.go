package main

import (
	"strings"
	"testing"

	"github.com/edgeq/edgeq/transport/httpapi"
)

// TestScheduleCommands: schedule set stores an API schedule, list shows it
// beside the file's with their next runs, set refuses a bad field with the
// daemon's message naming it (exit 1) and a file schedule (409), delete
// removes it.
func TestScheduleCommands(t *testing.T) {
	cfg := writeFile(t, "edgeq.yaml", "schedules:\n  nightly: {cron: \"0 3 * * *\", timezone: Europe/Berlin, queue: backup}\n")
	addr := startDaemon(t, "--config", cfg)

	out := mustCLI(t, addr, "schedule", "set", "tick", "--cron", "@every 1h", "--queue", "q", "--payload", `{"a":1}`,
		"--header", "origin=cli", "--catch-up", "all", "--overlap", "skip", "--ttr", "30s")
	if !strings.HasPrefix(out, "set schedule tick: next run ") {
		t.Errorf("set printed %q", out)
	}
	var list httpapi.ScheduleList
	decodeJSON(t, mustCLI(t, addr, "schedule", "list", "--json"), &list)
	if len(list.Schedules) != 2 {
		t.Fatalf("list = %+v, want nightly and tick", list)
	}
	n, tick := list.Schedules[0], list.Schedules[1]
	if n.Name != "nightly" || n.Source != "file" || n.Timezone != "Europe/Berlin" || n.NextFireAt == nil || n.LastFireAt != nil {
		t.Errorf("nightly = %+v", n)
	}
	if tick.Name != "tick" || tick.Source != "api" || strings.Join(strings.Fields(string(tick.Payload)), "") != `{"a":1}` || tick.Headers["origin"] != "cli" ||
		tick.CatchUp != "all" || tick.Overlap != "skip" || tick.TTR != "30s" || tick.Timezone != "UTC" {
		t.Errorf("tick = %+v", tick)
	}
	table := mustCLI(t, addr, "schedule", "list")
	if !strings.Contains(table, "SCHEDULE") || !strings.Contains(table, "nightly") || !strings.Contains(table, "@every 1h") {
		t.Errorf("list table:\n%s", table)
	}

	refusals := []struct {
		args []string
		want string
	}{
		{[]string{"tick", "--cron", "61 * * * *", "--queue", "q"}, "cron:"},
		{[]string{"tick", "--cron", "@daily", "--queue", "q", "--timezone", "Mars/Base"}, "timezone:"},
		{[]string{"tick", "--cron", "@daily", "--queue", "q", "--catch-up", "twice"}, "catch_up:"},
		{[]string{"nightly", "--cron", "@daily", "--queue", "q"}, "configuration file"},
	}
	for _, r := range refusals {
		res := callCLI(t, addr, append([]string{"schedule", "set"}, r.args...)...)
		if res.code != 1 || !strings.Contains(res.stderr, r.want) {
			t.Errorf("schedule set %q: exit %d, stderr %q; want 1 naming %s", r.args, res.code, res.stderr, r.want)
		}
	}
	decodeJSON(t, mustCLI(t, addr, "schedule", "list", "--json"), &list)
	if len(list.Schedules) != 2 || list.Schedules[1].Cron != "@every 1h" {
		t.Errorf("refusals changed the schedules: %+v", list)
	}

	if out := mustCLI(t, addr, "schedule", "delete", "tick"); out != "deleted schedule tick\n" {
		t.Errorf("delete printed %q", out)
	}
	if res := callCLI(t, addr, "schedule", "delete", "tick"); res.code != 1 || !strings.Contains(res.stderr, "not found") {
		t.Errorf("second delete: exit %d, stderr %q", res.code, res.stderr)
	}
	if res := callCLI(t, addr, "schedule", "delete", "nightly"); res.code != 1 || !strings.Contains(res.stderr, "configuration file") {
		t.Errorf("delete of the file's schedule: exit %d, stderr %q", res.code, res.stderr)
	}
	var st httpapi.StatsDoc
	decodeJSON(t, mustCLI(t, addr, "stats", "--json"), &st)
	if st.Schedules == nil || st.Schedules.Count != 1 {
		t.Errorf("stats schedules = %+v, want count 1", st.Schedules)
	}
	if out := mustCLI(t, addr, "stats"); !strings.Contains(out, "\nschedules: 1  fired 0  skipped 0  refused 0\n") {
		t.Errorf("stats does not show the schedules:\n%s", out)
	}
}
