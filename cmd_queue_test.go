package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/edgeq/edgeq/transport/httpapi"
)

// startDaemon runs `edgeq serve` in-process on a fresh data dir with extra
// serve arguments, and stops it when the test ends.
func startDaemon(t *testing.T, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := newLogWatch()
	done := make(chan int, 1)
	go func() {
		e := env{stdin: strings.NewReader(""), stdout: log, stderr: log, lookupEnv: mapEnv(nil)}
		args := append([]string{"edgeq", "serve", "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--log-format", "json"}, extra...)
		done <- exitCode(run(ctx, args, e), log)
	}()
	var addr string
	select {
	case addr = <-log.addr:
	case code := <-done:
		cancel()
		t.Fatalf("serve exited with %d before listening:\n%s", code, log)
	}
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited with %d:\n%s", code, log)
		}
	})
	return addr
}

// cli runs a client command against the daemon at addr.
func callCLI(t *testing.T, addr string, args ...string) result {
	t.Helper()
	return runCLI(t, env{}, append(args, "--addr", addr)...)
}

// mustCLI runs a client command and fails the test unless it exits 0.
func mustCLI(t *testing.T, addr string, args ...string) string {
	t.Helper()
	r := callCLI(t, addr, args...)
	if r.code != 0 {
		t.Fatalf("edgeq %q: exit %d, stderr %q", args, r.code, r.stderr)
	}
	return r.stdout
}

// decodeJSON parses a command's --json output into v.
func decodeJSON(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
}

func enqueueN(t *testing.T, addr, queue string, payloads ...string) []string {
	t.Helper()
	var ids []string
	for _, p := range payloads {
		ids = append(ids, strings.TrimSpace(mustCLI(t, addr, "enqueue", queue, p)))
	}
	return ids
}

var (
	durationRE = regexp.MustCompile(`^(\d+s|\d+m\d\ds|\d+h\d\dm|\d+d\d+h|-)$`)
	rateRE     = regexp.MustCompile(`^(0|\d+(\.\d+)?)$`)
)

// normalise collapses the runs of spaces of a table to one and replaces
// the given columns (0-based) with "~" after checking that they hold an
// age or a rate.
func normalise(t *testing.T, out string, cols ...int) string {
	t.Helper()
	var b bytes.Buffer
	for i, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		f := strings.Fields(line)
		if i > 0 {
			for _, c := range cols {
				if c < len(f) {
					if !durationRE.MatchString(f[c]) && !rateRE.MatchString(f[c]) {
						t.Errorf("column %d of %q is %q: neither an age nor a rate", c, line, f[c])
					}
					f[c] = "~"
				}
			}
		}
		b.WriteString(strings.Join(f, " ") + "\n")
	}
	return b.String()
}

func TestQueueCommands(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	enqueueN(t, addr, "mail", "a", "b", "c")
	enqueueN(t, addr, "sms", "x")

	got := normalise(t, mustCLI(t, addr, "queue", "list"), 6)
	want := "QUEUE CLASS READY DELAYED LEASED DEAD OLDEST PAUSED\n" +
		"mail normal 3 0 0 0 ~ false\n" +
		"sms normal 1 0 0 0 ~ false\n"
	if got != want {
		t.Errorf("queue list =\n%s\nwant\n%s", got, want)
	}

	if out := mustCLI(t, addr, "queue", "pause", "mail"); out != "paused mail\n" {
		t.Errorf("pause printed %q", out)
	}
	var list httpapi.QueueList
	decodeJSON(t, mustCLI(t, addr, "queue", "list", "--json"), &list)
	if len(list.Queues) != 2 || list.Queues[0].Name != "mail" || !list.Queues[0].Paused || list.Queues[0].Ready != 3 {
		t.Errorf("queue list --json = %+v", list)
	}
	var pr httpapi.PauseResult
	decodeJSON(t, mustCLI(t, addr, "queue", "resume", "mail", "--json"), &pr)
	if pr != (httpapi.PauseResult{Queue: "mail", Paused: false}) {
		t.Errorf("resume --json = %+v", pr)
	}
	if out := mustCLI(t, addr, "queue", "purge", "mail"); out != "purged 3 jobs from mail\n" {
		t.Errorf("purge printed %q", out)
	}
	var del httpapi.DeletedResult
	decodeJSON(t, mustCLI(t, addr, "queue", "purge", "sms", "--json"), &del)
	if del.Deleted != 1 {
		t.Errorf("purge --json = %+v", del)
	}
}

func TestClientCommandUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"queue"},
		{"queue", "pause"},
		{"queue", "pause", "a", "b"},
		{"queue", "purge", "Not A Queue"},
		{"dead", "list", "q", "--limit", "0"},
		{"dead", "list", "q", "--after", "zz"},
		{"dead", "retry", "q", "--limit", "5000"},
		{"job", "show", "nothex"},
		{"job", "cancel"},
		{"governor", "drill", "boiling", "--for", "1s"},
		{"governor", "drill", "high"},
		{"move", "q"},
		{"move", "q", "--to", "q"},
		{"move", "q", "--to", "r", "--state", "leased"},
		{"move", "q", "--to", "r", "--rate", "NaN"},
		{"stats", "--interval", "0s"},
		{"work", "q"},
		{"work", "q", "--concurrency", "0", "--", "true"},
		{"work", "q", "--", "/nonexistent/program"},
		{"bench", "--producers", "0"},
		{"bench", "--batch", "-1"},
	} {
		r := runCLI(t, env{}, append(args, "--addr", "127.0.0.1:1")...)
		if r.code != exitUsage || !strings.HasPrefix(r.stderr, "edgeq: ") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("edgeq %q: code %d stderr %q, want exit 2 and a one-line message", args, r.code, r.stderr)
		}
	}
}

func TestClientCommandNoDaemon(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"stats"}, {"queue", "list"}, {"job", "show", "0000000000000001"}, {"governor", "status"}} {
		r := runCLI(t, env{}, append(args, "--addr", "127.0.0.1:1")...)
		if r.code != exitFailure || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("edgeq %q: code %d stderr %q, want exit 1 and one line", args, r.code, r.stderr)
		}
	}
}

// TestUsageNamesArguments checks that a command given the wrong arguments
// names the ones it wants as its usage does, required ones bare.
func TestUsageNamesArguments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"queue", "pause"}, "queue pause: want QUEUE, got no arguments"},
		{[]string{"dead", "list", "a", "b"}, "dead list: want QUEUE, got 2 arguments"},
		{[]string{"move", "--to", "b"}, "move: want QUEUE, got no arguments"},
		{[]string{"job", "show"}, "job show: want ID, got no arguments"},
		{[]string{"governor", "drill", "--for", "1s"}, "governor drill: want LEVEL, got no arguments"},
		{[]string{"queue", "list", "extra"}, "queue list: takes no arguments, got 1"},
		{[]string{"stats", "a", "b"}, "stats: takes no arguments, got 2"},
	}
	for _, tt := range tests {
		r := runCLI(t, env{}, append(tt.args, "--addr", "127.0.0.1:1")...)
		if want := "edgeq: " + tt.want + "\n"; r.code != exitUsage || r.stderr != want {
			t.Errorf("edgeq %q: code %d stderr %q, want exit 2 and %q", tt.args, r.code, r.stderr, want)
		}
	}
}

// TestUnauthorizedHint runs client commands without the daemon's token,
// or with a wrong one: each says how to give it.
func TestUnauthorizedHint(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t, "--token-file", writeFile(t, "token", "s3cret\n"))
	const hint = "pass --token or set EDGEQ_TOKEN"
	for _, args := range [][]string{
		{"queue", "list"},
		{"enqueue", "mail", "x"},
		{"stats"},
		{"move", "a", "--to", "b"},
		{"work", "mail", "--addr", addr, "--", "true"},
		{"bench", "--count", "1", "--producers", "1"},
		{"queue", "list", "--token", "wrong"},
	} {
		r := callCLI(t, addr, args...)
		if r.code != exitFailure || !strings.Contains(r.stderr, hint) || strings.Contains(r.stderr, "Authorization") {
			t.Errorf("edgeq %q: code %d stderr %q, want exit 1 and %q", args, r.code, r.stderr, hint)
		}
	}
	if out := runCLI(t, env{lookupEnv: mapEnv(map[string]string{"EDGEQ_TOKEN": "s3cret"})}, "queue", "list", "--addr", addr); out.code != 0 {
		t.Errorf("queue list with EDGEQ_TOKEN: %+v", out)
	}
}

// TestForbiddenNamesRole (issue 21): a client command whose token lacks
// the role exits 1 with the daemon's message naming the role, and the
// command with an admin token works.
func TestForbiddenNamesRole(t *testing.T) {
	t.Parallel()
	conf := writeFile(t, "edgeq.yaml", "http:\n  tokens:\n"+
		"    - {name: grafana, file: "+writeFile(t, "read.token", "reader\n")+", roles: [read]}\n"+
		"    - {name: ops, file: "+writeFile(t, "admin.token", "opsadmin\n")+", roles: [admin]}\n")
	addr := startDaemon(t, "--config", conf)
	mustCLI(t, addr, "enqueue", "mail", "x", "--token", "opsadmin")
	r := callCLI(t, addr, "queue", "pause", "mail", "--token", "reader")
	if r.code != exitFailure || !strings.Contains(r.stderr, `token "grafana" lacks the role admin`) || strings.Contains(r.stderr, "reader") {
		t.Errorf("queue pause with a read token: code %d stderr %q, want exit 1 naming the token and the role admin", r.code, r.stderr)
	}
	mustCLI(t, addr, "queue", "list", "--token", "reader")
	mustCLI(t, addr, "queue", "pause", "mail", "--token", "opsadmin")
}

// TestQueuePauseUnknown (issue 13 item 13): pausing a queue that does not
// exist fails naming it and creates nothing.
func TestQueuePauseUnknown(t *testing.T) {
	addr := startDaemon(t)
	r := callCLI(t, addr, "queue", "pause", "nosuchq")
	if r.code != 1 || !strings.Contains(r.stderr, "nosuchq") || !strings.Contains(r.stderr, "does not exist") {
		t.Fatalf("queue pause nosuchq: exit %d, stdout %q, stderr %q; want 1 naming the queue", r.code, r.stdout, r.stderr)
	}
	if out := mustCLI(t, addr, "queue", "list", "--json"); strings.Contains(out, "nosuchq") {
		t.Errorf("queue list after the refused pause: %s", out)
	}
}
