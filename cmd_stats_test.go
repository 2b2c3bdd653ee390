package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/transport/httpapi"
)

func TestStats(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	enqueueN(t, addr, "mail", "a", "b")
	mustCLI(t, addr, "queue", "pause", "mail")

	out := mustCLI(t, addr, "stats")
	lines := strings.SplitN(out, "\n", 4)
	if !strings.HasPrefix(lines[0], "governor: ") || !strings.HasPrefix(lines[1], "uptime: ") {
		t.Errorf("stats head =\n%s", out)
	}
	got := normalise(t, lines[3], 8, 9, 10, 11)
	want := "QUEUE CLASS READY DELAYED LEASED RUNNING DEAD BYTES OLDEST IN/S OUT/S DRAIN FLAGS\n" +
		"mail normal 2 0 0 0 0 2B ~ ~ ~ ~ paused\n"
	if got != want {
		t.Errorf("stats table =\n%s\nwant\n%s", got, want)
	}

	var doc httpapi.StatsDoc
	decodeJSON(t, mustCLI(t, addr, "stats", "--json"), &doc)
	if len(doc.Queues) != 1 || doc.Queues[0].Ready != 2 || doc.Queues[0].Bytes == nil || *doc.Queues[0].Bytes != 2 || !doc.Queues[0].Paused || doc.UptimeS <= 0 {
		t.Errorf("stats --json = %+v", doc)
	}
}

func TestStatsWatch(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	enqueueN(t, addr, "mail", "a")
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	var stdout, stderr strings.Builder
	e := env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, lookupEnv: mapEnv(nil)}
	code := exitCode(run(ctx, []string{"edgeq", "stats", "--watch", "--interval", "100ms", "--addr", addr}, e), &stderr)
	if code != 0 {
		t.Fatalf("stats --watch: exit %d, stderr %q", code, stderr.String())
	}
	if n := strings.Count(stdout.String(), ansiHomeClear); n < 2 {
		t.Errorf("stats --watch redrew %d times in 1s at 100ms, want at least 2:\n%q", n, stdout.String())
	}
	if !strings.Contains(stdout.String(), "mail") {
		t.Errorf("stats --watch lacks the queue:\n%s", stdout.String())
	}
}

func TestFormatters(t *testing.T) {
	t.Parallel()
	for in, want := range map[float64]string{0: "0s", 0.4: "0s", 42: "42s", 185: "3m05s", 7800: "2h10m", 3*86400 + 4*3600: "3d4h", -1: "-"} {
		if got := fmtSeconds(in); got != want {
			t.Errorf("fmtSeconds(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{0: "0", 0.05: "0.05", 12.34: "12.3", 1234.5: "1234"} {
		if got := fmtRate(in); got != want {
			t.Errorf("fmtRate(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[uint64]string{512: "512B", 1536: "1.5KiB", 3 << 30: "3.0GiB"} {
		if got := fmtBytes(in); got != want {
			t.Errorf("fmtBytes(%v) = %q, want %q", in, got, want)
		}
	}
	if got := queueFlags(httpapi.QueueStats{Paused: true, Shed: true, Breaker: "open", Alerting: true}); got != "paused,shed,breaker-open,alert" {
		t.Errorf("queueFlags = %q", got)
	}
	if got := queueFlags(httpapi.QueueStats{Breaker: "closed"}); got != "-" {
		t.Errorf("queueFlags of a quiet queue = %q", got)
	}
	if got := governorLine(nil); got != "governor: none" {
		t.Errorf("governorLine(nil) = %q", got)
	}
}

// TestStatsGroups: jobs enqueued with --group into a queue with
// group_concurrency show in edgeq stats' group table; a bad group is
// refused, naming it.
func TestStatsGroups(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, "edgeq.yaml", "queues:\n  plc:\n    group_concurrency: 2\n")
	addr := startDaemon(t, "--config", cfg)
	for _, g := range []string{"press-1", "press-1", "press-2"} {
		mustCLI(t, addr, "enqueue", "plc", "x", "--group", g)
	}
	mustCLI(t, addr, "enqueue", "mail", "y")
	id := strings.TrimSpace(mustCLI(t, addr, "enqueue", "plc", "w", "--group", "press-3"))
	if out := mustCLI(t, addr, "job", "show", id); !strings.Contains(out, "group:") || !strings.Contains(out, "press-3") {
		t.Errorf("job show lacks the group:\n%s", out)
	}
	mustCLI(t, addr, "job", "cancel", id)
	r := callCLI(t, addr, "enqueue", "plc", "z", "--group", "bad group")
	if r.code == 0 || !strings.Contains(r.stderr, `group "bad group"`) {
		t.Errorf("enqueue --group %q: exit %d, stderr %q; want a refusal naming it", "bad group", r.code, r.stderr)
	}
	out := mustCLI(t, addr, "stats")
	i := strings.Index(out, "QUEUE  GROUPS")
	if i < 0 {
		t.Fatalf("stats has no group table:\n%s", out)
	}
	got := normalise(t, out[i:], 3)
	want := "QUEUE GROUPS OLDEST GROUP AGE PER GROUP\n" +
		"plc 2 press-1 ~ 2\n"
	if got != want {
		t.Errorf("group table =\n%s\nwant\n%s", got, want)
	}
}
