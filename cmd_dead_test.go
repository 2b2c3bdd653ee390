package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/transport/httpapi"
)

// killJobs leases n jobs of queue through the client and fails them.
func killJobs(t *testing.T, addr, queue string, n int) {
	t.Helper()
	cl := httpapi.NewClient("http://"+addr, "", nil)
	defer cl.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	jobs, err := cl.Lease(ctx, queue, n, time.Second, 0)
	if err != nil || len(jobs) != n {
		t.Fatalf("lease %d: %d jobs, %v", n, len(jobs), err)
	}
	for _, j := range jobs {
		if err := cl.Fail(ctx, j.ID, j.Lease.ID, "bad input\nline two"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeadCommands(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	ids := enqueueN(t, addr, "mail", "a", "b", "c")
	if out := mustCLI(t, addr, "dead", "list", "mail"); out != "no dead jobs in mail\n" {
		t.Errorf("empty dead list printed %q", out)
	}
	killJobs(t, addr, "mail", 3)

	r := callCLI(t, addr, "dead", "list", "mail", "--limit", "2")
	if r.code != 0 {
		t.Fatalf("dead list: %+v", r)
	}
	got := normalise(t, r.stdout)
	// CREATED is a timestamp: check its shape, then drop it.
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(got, "\n"), "\n") {
		f := strings.Fields(line)
		if f[0] != "ID" {
			if _, err := time.Parse(time.RFC3339, f[2]); err != nil {
				t.Errorf("CREATED of %q: %v", line, err)
			}
			f[2] = "~"
		}
		b.WriteString(strings.Join(f, " ") + "\n")
	}
	want := "ID ATTEMPTS CREATED LAST ERROR\n" +
		ids[0] + " 1/5 ~ bad input line two\n" +
		ids[1] + " 1/5 ~ bad input line two\n"
	if b.String() != want {
		t.Errorf("dead list =\n%s\nwant\n%s", b.String(), want)
	}
	if wantMore := "more: edgeq dead list mail --limit 2 --after " + ids[1] + "\n"; r.stderr != wantMore {
		t.Errorf("dead list stderr = %q, want %q", r.stderr, wantMore)
	}

	var list httpapi.JobList
	decodeJSON(t, mustCLI(t, addr, "dead", "list", "mail", "--after", ids[1], "--json"), &list)
	if len(list.Jobs) != 1 || list.Jobs[0].ID != ids[2] || list.Jobs[0].State != "dead" || list.Next != "" {
		t.Errorf("dead list --after --json = %+v", list)
	}

	if out := mustCLI(t, addr, "dead", "retry", "mail", "--limit", "1"); out != "moved 1 dead jobs of mail back to ready\n" {
		t.Errorf("dead retry printed %q", out)
	}
	var del httpapi.DeletedResult
	decodeJSON(t, mustCLI(t, addr, "dead", "purge", "mail", "--json"), &del)
	if del.Deleted != 2 {
		t.Errorf("dead purge deleted %d, want 2", del.Deleted)
	}
	var doc httpapi.QueueList
	decodeJSON(t, mustCLI(t, addr, "queue", "list", "--json"), &doc)
	if q := doc.Queues[0]; q.Ready != 1 || q.Dead != 0 {
		t.Errorf("after retry and purge: %+v", q)
	}
}

func TestJobCommands(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	r := runCLI(t, env{}, "enqueue", "--addr", addr, "mail", `{"to":"ann"}`, "--content-type", "application/json", "--header", "trace=abc", "--key", "k1")
	if r.code != 0 {
		t.Fatalf("enqueue: %+v", r)
	}
	id := strings.TrimSpace(r.stdout)

	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(mustCLI(t, addr, "job", "show", id), "\n"), "\n") {
		f := strings.Fields(line)
		if f[0] == "created:" || (f[0] == "run" && f[1] == "at:") {
			f = append(f[:len(f)-1], "~")
		}
		b.WriteString(strings.Join(f, " ") + "\n")
	}
	want := "id: " + id + "\nqueue: mail\nstate: ready\nattempts: 0/5\ncreated: ~\nrun at: ~\nkey: k1\n" +
		"header trace: abc\ncontent type: application/json\npayload: {\"to\":\"ann\"}\n"
	if b.String() != want {
		t.Errorf("job show =\n%s\nwant\n%s", b.String(), want)
	}
	var j httpapi.Job
	decodeJSON(t, mustCLI(t, addr, "job", "show", id, "--json"), &j)
	var payload bytes.Buffer
	_ = json.Compact(&payload, j.Payload)
	if j.ID != id || payload.String() != `{"to":"ann"}` || j.Headers["trace"] != "abc" {
		t.Errorf("job show --json = %+v", j)
	}
	if out := mustCLI(t, addr, "job", "cancel", id); out != "cancelled "+id+"\n" {
		t.Errorf("cancel printed %q", out)
	}
	r = callCLI(t, addr, "job", "show", id)
	if r.code != exitFailure || !strings.Contains(r.stderr, "not_found") || strings.Count(r.stderr, "\n") != 1 || strings.Count(r.stderr, id) != 1 {
		t.Errorf("show a cancelled job: %+v, want exit 1 and not_found, naming the job once", r)
	}
	r = callCLI(t, addr, "job", "cancel", id)
	if r.code != exitFailure || !strings.Contains(r.stderr, "not_found") || strings.Count(r.stderr, id) != 1 {
		t.Errorf("cancel a cancelled job: %+v, want exit 1 and not_found, naming the job once", r)
	}
}
