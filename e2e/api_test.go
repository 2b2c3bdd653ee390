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

// apiDaemon starts the real binary with config (YAML, "" for none) and
// answers a client for it that never follows redirects: an API answer is
// checked as the daemon sent it.
func apiDaemon(t *testing.T, config string) (*daemon, *apiClient) {
	t.Helper()
	dir := t.TempDir()
	var args []string
	if config != "" {
		conf := filepath.Join(dir, "edgeq.yaml")
		if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", conf)
	}
	d := startDaemon(t, filepath.Join(dir, "data"), args...)
	hc := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(hc.CloseIdleConnections)
	return d, &apiClient{t: t, hc: hc, base: d.base}
}

type apiClient struct {
	t    *testing.T
	hc   *http.Client
	base string
	hdr  []string // header name and value pairs sent with every request
}

// apiAnswer is one answer: status, headers, body, and the error document
// when the body is one.
type apiAnswer struct {
	status int
	header http.Header
	body   []byte
	code   string
	msg    string
}

func (c *apiClient) do(method, path, body string) apiAnswer {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if p, _, _ := strings.Cut(path, "?"); strings.HasSuffix(p, "/batch") {
		req.Header.Set("Content-Type", "application/x-ndjson") // as the batch endpoint wants
	}
	if p, _, _ := strings.Cut(path, "?"); path == "/v1/acks" || strings.HasPrefix(path, "/v1/schedules/") || ((strings.HasSuffix(p, "/ack") || strings.HasSuffix(p, "/lease")) && body != "") {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(c.hdr); i += 2 {
		req.Header.Set(c.hdr[i], c.hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	a := apiAnswer{status: resp.StatusCode, header: resp.Header, body: b}
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil {
		a.code, a.msg = e.Error.Code, e.Error.Message
	}
	return a
}

// ok does a request that must answer want and decodes its body into out
// (when not nil).
func (c *apiClient) ok(method, path, body string, want int, out any) {
	c.t.Helper()
	a := c.do(method, path, body)
	if a.status != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, a.status, a.body, want)
	}
	if out != nil {
		if err := json.Unmarshal(a.body, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, a.body, err)
		}
	}
}

// refused does a request that must be refused with status and code.
func (c *apiClient) refused(method, path, body string, status int, code string) apiAnswer {
	c.t.Helper()
	a := c.do(method, path, body)
	if a.status != status || a.code != code {
		c.t.Errorf("%s %s: %d %s, want %d %s", method, path, a.status, a.body, status, code)
	}
	return a
}

type leasedJob struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Lease *struct {
		ID        string    `json:"id"`
		ExpiresAt time.Time `json:"expires_at"`
	} `json:"lease"`
}

// enqueueAndLease enqueues one job to queue and leases it with the lease
// query (such as "ttr=5m").
func (c *apiClient) enqueueAndLease(queue, query string) leasedJob {
	c.t.Helper()
	c.ok("POST", "/v1/queues/"+queue+"/jobs", "x", 201, nil)
	var l struct {
		Jobs []leasedJob `json:"jobs"`
	}
	c.ok("POST", "/v1/queues/"+queue+"/lease?"+query, "", 200, &l)
	if len(l.Jobs) != 1 || l.Jobs[0].Lease == nil {
		c.t.Fatalf("lease of %s: %+v, want one leased job", queue, l.Jobs)
	}
	return l.Jobs[0]
}

// TestMalformedPathsAnswerJSON (issue 13 item 5): a path that net/http
// would clean (an empty, "." or ".." segment) is not redirected: every
// answer under /v1/ is a JSON error, 400 invalid_queue for a bad or empty
// queue segment, 404 not_found for no route, 405 method_not_allowed (with
// Allow) for a wrong method. Nothing is created on the way.
func TestMalformedPathsAnswerJSON(t *testing.T) {
	_, c := apiDaemon(t, "")
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
		allow        string
	}{
		{"POST", "/v1/queues//jobs", 400, "invalid_queue", ""},
		{"POST", "/v1/queues//lease", 400, "invalid_queue", ""},
		{"GET", "/v1/queues//dead", 400, "invalid_queue", ""},
		{"GET", "/v1/queues/", 400, "invalid_queue", ""},
		{"POST", "/v1/queues/%2e%2e/jobs", 400, "invalid_queue", ""},
		{"POST", "/v1/queues/./pause", 400, "invalid_queue", ""},
		{"POST", "/v1/queues/Bad/jobs", 400, "invalid_queue", ""},
		{"POST", "/v1/jobs//ack?lease=L", 400, "invalid_argument", ""},
		{"PUT", "/v1/queues//jobs", 405, "method_not_allowed", "DELETE, POST"},
		{"DELETE", "/v1/stats", 405, "method_not_allowed", "GET, HEAD"},
		{"GET", "/v1//stats", 404, "not_found", ""},
		{"GET", "/v1/queues/a/../b", 404, "not_found", ""},
		{"POST", "/v1/queues/a/b/jobs", 404, "not_found", ""},
		{"GET", "/v1/nope", 404, "not_found", ""},
		{"GET", "/v1/", 404, "not_found", ""},
	} {
		name := tc.method + " " + tc.path
		a := c.do(tc.method, tc.path, "x")
		if a.status != tc.status || a.code != tc.code || a.msg == "" {
			t.Errorf("%s: %d %q, want %d with a JSON error %s", name, a.status, a.body, tc.status, tc.code)
		}
		if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q, want JSON", name, ct)
		}
		if loc := a.header.Get("Location"); loc != "" {
			t.Errorf("%s: redirected to %q", name, loc)
		}
		if got := a.header.Get("Allow"); got != tc.allow {
			t.Errorf("%s: Allow %q, want %q", name, got, tc.allow)
		}
	}
	var qs struct {
		Queues []struct {
			Name string `json:"name"`
		} `json:"queues"`
	}
	c.ok("GET", "/v1/queues", "", 200, &qs)
	if len(qs.Queues) != 0 {
		t.Errorf("malformed requests created queues: %+v", qs.Queues)
	}
}

// TestAckAndFailRepeatWithTheSameLease (issue 13 item 6): a worker whose
// answer was lost repeats it; the same lease answers 200 again and the job
// is not touched, another lease id gets 409 lease_lost.
func TestAckAndFailRepeatWithTheSameLease(t *testing.T) {
	_, c := apiDaemon(t, "")
	j := c.enqueueAndLease("w", "")
	ack := fmt.Sprintf("/v1/jobs/%s/ack?lease=%s", j.ID, j.Lease.ID)
	c.ok("POST", ack, "", 200, nil)
	c.ok("POST", ack, "", 200, nil)
	c.refused("POST", fmt.Sprintf("/v1/jobs/%s/ack?lease=%s", j.ID, "0000000000000003"), "", 409, "lease_lost")
	c.refused("POST", fmt.Sprintf("/v1/jobs/%s/fail?lease=%s", j.ID, j.Lease.ID), "", 409, "lease_lost")
	c.refused("GET", "/v1/jobs/"+j.ID, "", 404, "not_found")

	f := c.enqueueAndLease("w", "")
	fail := fmt.Sprintf("/v1/jobs/%s/fail?lease=%s&error=bad", f.ID, f.Lease.ID)
	c.ok("POST", fail, "", 200, nil)
	c.ok("POST", fail, "", 200, nil)
	c.refused("POST", fmt.Sprintf("/v1/jobs/%s/ack?lease=%s", f.ID, f.Lease.ID), "", 409, "lease_lost")
	var dead struct {
		State     string `json:"state"`
		Attempt   int    `json:"attempt"`
		LastError string `json:"last_error"`
	}
	c.ok("GET", "/v1/jobs/"+f.ID, "", 200, &dead)
	if dead.State != "dead" || dead.Attempt != 1 || dead.LastError != "bad" {
		t.Errorf("after two fails: %+v, want dead after attempt 1 with last_error bad", dead)
	}
	var st struct {
		CompletedTotal int `json:"completed_total"`
		DeadTotal      int `json:"dead_total"`
	}
	c.ok("GET", "/v1/queues/w", "", 200, &st)
	if st.CompletedTotal != 1 || st.DeadTotal != 1 {
		t.Errorf("queue w: %+v, want one completed and one dead", st)
	}
}

// TestNackDelay (issue 13 item 7): a nack without delay waits for the
// queue's backoff (an hour here); delay=0 and delay=0s mean now.
func TestNackDelay(t *testing.T) {
	_, c := apiDaemon(t, "queues:\n  w: {backoff: {initial: 1h, max: 2h}}\n")
	for _, tc := range []struct{ query, state string }{
		{"", "delayed"},
		{"&delay=0", "ready"},
		{"&delay=0s", "ready"},
		{"&delay=1m", "delayed"},
	} {
		j := c.enqueueAndLease("w", "")
		var res struct {
			State string `json:"state"`
		}
		c.ok("POST", fmt.Sprintf("/v1/jobs/%s/nack?lease=%s%s", j.ID, j.Lease.ID, tc.query), "", 200, &res)
		if res.State != tc.state {
			t.Errorf("nack%s: state %q, want %q", tc.query, res.State, tc.state)
		}
		if tc.state == "ready" {
			var l struct {
				Jobs []leasedJob `json:"jobs"`
			}
			c.ok("POST", "/v1/queues/w/lease", "", 200, &l)
			if len(l.Jobs) != 1 || l.Jobs[0].ID != j.ID {
				t.Errorf("lease after nack%s: %+v, want job %s again at once", tc.query, l.Jobs, j.ID)
				continue
			}
			c.ok("POST", fmt.Sprintf("/v1/jobs/%s/ack?lease=%s", j.ID, l.Jobs[0].Lease.ID), "", 200, nil)
		}
	}
}

// TestEnqueueDelayAndRunAt (issue 13 item 8): delay and run_at together
// are refused, naming both, on the query and in a batch line; nothing is
// stored.
func TestEnqueueDelayAndRunAt(t *testing.T) {
	_, c := apiDaemon(t, "")
	c.ok("POST", "/v1/queues/q/jobs", "first", 201, nil)
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct{ path, body string }{
		{"/v1/queues/q/jobs?delay=1s&run_at=" + at, "x"},
		{"/v1/queues/q/jobs?run_at=" + at + "&delay=0s", "x"},
		{"/v1/queues/q/batch", `{"payload":1}` + "\n" + `{"payload":2,"delay":"1s","run_at":"` + at + `"}`},
	} {
		a := c.refused("POST", tc.path, tc.body, 400, "invalid_argument")
		if !strings.Contains(a.msg, "delay") || !strings.Contains(a.msg, "run_at") {
			t.Errorf("POST %s: message %q does not name delay and run_at", tc.path, a.msg)
		}
	}
	var st struct {
		Ready         int `json:"ready"`
		Delayed       int `json:"delayed"`
		EnqueuedTotal int `json:"enqueued_total"`
	}
	c.ok("GET", "/v1/queues/q", "", 200, &st)
	if st.Ready != 1 || st.Delayed != 0 || st.EnqueuedTotal != 1 {
		t.Errorf("queue q after the refusals: %+v, want only the first job", st)
	}
}

// TestExtendKeepsTheLeaseTTR (issue 13 item 9): extend without ttr renews
// the lease by its own TTR (the one it was leased with, then the last one
// extend set), not by the queue's 60s default.
func TestExtendKeepsTheLeaseTTR(t *testing.T) {
	_, c := apiDaemon(t, "")
	j := c.enqueueAndLease("w", "ttr=5m")
	extend := func(query string, want time.Duration) {
		t.Helper()
		before := time.Now()
		var res struct {
			ExpiresAt time.Time `json:"expires_at"`
		}
		c.ok("POST", fmt.Sprintf("/v1/jobs/%s/extend?lease=%s%s", j.ID, j.Lease.ID, query), "", 200, &res)
		after := time.Now()
		// The daemon runs on this host's clock: its now is between before
		// and after, give or take a second of rounding in the answer.
		if res.ExpiresAt.Before(before.Add(want-time.Second)) || res.ExpiresAt.After(after.Add(want+time.Second)) {
			t.Errorf("extend%s: expires_at %s, want about %s from now", query, res.ExpiresAt.Sub(before).Round(time.Second), want)
		}
	}
	extend("", 5*time.Minute)
	extend("&ttr=2m", 2*time.Minute)
	extend("", 2*time.Minute)
}

// TestErrorsNameTheJobOnce (issue 13 item 10): an error about a job names
// its id once.
func TestErrorsNameTheJobOnce(t *testing.T) {
	_, c := apiDaemon(t, "")
	j := c.enqueueAndLease("w", "")
	c.ok("POST", fmt.Sprintf("/v1/jobs/%s/ack?lease=%s", j.ID, j.Lease.ID), "", 200, nil)
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/v1/jobs/" + j.ID, 404, "not_found"},
		{"DELETE", "/v1/jobs/" + j.ID, 404, "not_found"},
		{"POST", "/v1/jobs/00000000000000ff/ack?lease=L", 404, "not_found"},
		{"POST", "/v1/jobs/00000000000000ff/extend?lease=L", 404, "not_found"},
	} {
		a := c.refused(tc.method, tc.path, "", tc.status, tc.code)
		id := strings.Split(tc.path, "/")[3]
		if n := strings.Count(a.msg, id); n != 1 {
			t.Errorf("%s %s: message %q names the job %d times, want once", tc.method, tc.path, a.msg, n)
		}
	}
}
