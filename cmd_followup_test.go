package main

import (
	"strings"
	"testing"
)

// TestEnqueueOnSuccess (issue 20 item 5): `edgeq enqueue --on-success Q
// [--on-success-payload P]` gives the job a follow-up that `edgeq job
// show` prints, and a bad one is a usage error or the daemon's 400.
func TestEnqueueOnSuccess(t *testing.T) {
	addr := startDaemon(t)
	id := strings.TrimSpace(mustCLI(t, addr, "enqueue", "convert", "raw", "--on-success", "upload", "--on-success-payload", "go"))
	out := mustCLI(t, addr, "job", "show", id)
	if !strings.Contains(out, "on success:") || !strings.Contains(out, "upload (payload: go)") {
		t.Errorf("job show of a job with a follow-up:\n%s\nwant a line \"on success: upload (payload: go)\"", out)
	}
	id = strings.TrimSpace(mustCLI(t, addr, "enqueue", "convert", "raw", "--on-success", "upload"))
	if out := mustCLI(t, addr, "job", "show", id); !strings.Contains(out, "upload (payload: the result)") {
		t.Errorf("job show of a follow-up with the result as payload:\n%s", out)
	}
	var j struct {
		OnSuccess struct {
			Queue string `json:"queue"`
		} `json:"on_success"`
	}
	decodeJSON(t, mustCLI(t, addr, "job", "show", id, "--json"), &j)
	if j.OnSuccess.Queue != "upload" {
		t.Errorf("job show --json: on_success %+v, want queue upload", j.OnSuccess)
	}

	if r := callCLI(t, addr, "enqueue", "convert", "raw", "--on-success", "Bad!"); r.code != 1 || !strings.Contains(r.stderr, "on_success.queue") {
		t.Errorf("enqueue --on-success Bad!: exit %d, stderr %q; want 1 naming on_success.queue", r.code, r.stderr)
	}
	if r := callCLI(t, addr, "enqueue", "convert", "raw", "--on-success-payload", "x"); r.code != exitUsage || !strings.Contains(r.stderr, "--on-success") {
		t.Errorf("enqueue --on-success-payload alone: exit %d, stderr %q; want a usage error naming --on-success", r.code, r.stderr)
	}
}
