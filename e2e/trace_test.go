package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	testTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	testTraceState  = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
)

// TestTraceContext (issue 20 item 6), against the real binary: the W3C
// traceparent and tracestate headers of an enqueue are kept with the job,
// handed to pull workers in the lease answer (on a retry too, unchanged),
// to exec handlers in TRACEPARENT and TRACESTATE, and taken from a batch
// line's fields; a malformed traceparent is refused with 400 naming it.
func TestTraceContext(t *testing.T) {
	d, c := apiDaemon(t, `
queues:
  run:
    retain_done: 1h
    handler: {type: exec, command: ["sh", "-c", "cat >/dev/null; printf '%s|%s' \"$TRACEPARENT\" \"$TRACESTATE\""]}
`)
	enqueue := func(queue, parent, state string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), "POST", d.base+"/v1/queues/"+queue+"/jobs", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Traceparent", parent)
		if state != "" {
			req.Header.Set("Tracestate", state)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	type traced struct {
		ID          string `json:"id"`
		Attempt     int    `json:"attempt"`
		TraceParent string `json:"traceparent"`
		TraceState  string `json:"tracestate"`
		Lease       *struct {
			ID string `json:"id"`
		} `json:"lease"`
	}
	lease := func(queue string) traced {
		t.Helper()
		var l struct {
			Jobs []traced `json:"jobs"`
		}
		c.ok("POST", "/v1/queues/"+queue+"/lease", "", 200, &l)
		if len(l.Jobs) != 1 {
			t.Fatalf("lease of %s: %d jobs, want 1", queue, len(l.Jobs))
		}
		return l.Jobs[0]
	}

	if code, _ := enqueue("pull", testTraceParent, testTraceState); code != 201 {
		t.Fatalf("enqueue with a trace context: %d", code)
	}
	j := lease("pull")
	if j.TraceParent != testTraceParent || j.TraceState != testTraceState {
		t.Fatalf("leased job's trace context: %q %q", j.TraceParent, j.TraceState)
	}
	c.ok("POST", fmt.Sprintf("/v1/jobs/%s/nack?lease=%s&delay=0", j.ID, j.Lease.ID), "", 200, nil)
	if r := lease("pull"); r.Attempt != 2 || r.TraceParent != testTraceParent || r.TraceState != testTraceState {
		t.Errorf("retry: attempt %d, trace context %q %q; want attempt 2, the same context", r.Attempt, r.TraceParent, r.TraceState)
	}

	for _, bad := range []string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",    // short
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
	} {
		code, body := enqueue("pull", bad, "")
		if code != 400 || !strings.Contains(body, "invalid_argument") || !strings.Contains(body, "traceparent") {
			t.Errorf("traceparent %q: %d %s, want 400 invalid_argument naming traceparent", bad, code, body)
		}
	}

	c.ok("POST", "/v1/queues/b/batch", fmt.Sprintf(`{"payload":1,"traceparent":%q}`+"\n", testTraceParent), 201, nil)
	if r := lease("b"); r.TraceParent != testTraceParent || r.TraceState != "" {
		t.Errorf("batch line's trace context: %q %q", r.TraceParent, r.TraceState)
	}

	// An exec handler sees it in its environment.
	var res struct {
		ID string `json:"id"`
	}
	code, body := enqueue("run", testTraceParent, testTraceState)
	if err := json.Unmarshal([]byte(body), &res); code != 201 || err != nil {
		t.Fatalf("enqueue to run: %d %s", code, body)
	}
	var got doneJob
	for deadline := time.Now().Add(10 * time.Second); got.State != "done" && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		c.ok("GET", "/v1/jobs/"+res.ID, "", 200, &got)
	}
	if want := testTraceParent + "|" + testTraceState; string(got.ResultB64) != want {
		t.Errorf("exec handler's TRACEPARENT|TRACESTATE = %q, want %q", got.ResultB64, want)
	}
}
