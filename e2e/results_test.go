package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// doneJob is what GET /v1/jobs/{id} shows of a retained done job.
type doneJob struct {
	State           string          `json:"state"`
	ExpiresAt       time.Time       `json:"expires_at"`
	Result          json.RawMessage `json:"result"`
	ResultB64       []byte          `json:"result_b64"`
	ResultTruncated bool            `json:"result_truncated"`
}

// TestRetainDoneResults (issue 20 item 4), against the real binary: a
// queue with retain_done keeps an acked job in state done with its result,
// from the ack body, from /v1/acks and from an exec handler's stdout;
// a result past max_result is cut and flagged; a malformed ack body is
// refused, names what is wrong and leaves the job leased; stats count
// the retained jobs; a queue without retain_done still deletes.
func TestRetainDoneResults(t *testing.T) {
	_, c := apiDaemon(t, `
queues:
  kept: {retain_done: 1h, max_result: 16}
  run:
    retain_done: 1h
    handler: {type: exec, command: ["sh", "-c", "cat >/dev/null; printf '{\"converted\":true}'"]}
`)
	show := func(id string) doneJob {
		t.Helper()
		var j doneJob
		c.ok("GET", "/v1/jobs/"+id, "", 200, &j)
		return j
	}

	// The ack body's result, as JSON.
	j := c.enqueueAndLease("kept", "")
	ack := fmt.Sprintf("/v1/jobs/%s/ack?lease=%s", j.ID, j.Lease.ID)
	c.refused("POST", ack, `{"result": 1, "result_b64": "AA=="}`, 400, "invalid_argument")
	if a := c.refused("POST", ack, `{"resul": 1}`, 400, "invalid_argument"); !strings.Contains(a.msg, "resul") {
		t.Errorf("unknown ack field: message %q does not name it", a.msg)
	}
	if got := show(j.ID); got.State != "leased" {
		t.Fatalf("after refused acks the job is %s, want leased", got.State)
	}
	c.ok("POST", ack, `{"result": {"size": 42}}`, 200, nil)
	c.ok("POST", ack, `{"result": {"size": 42}}`, 200, nil) // a lost answer, repeated
	got := show(j.ID)
	if got.State != "done" || string(got.Result) != `{"size":42}` || got.ResultTruncated {
		t.Errorf("retained job: %+v (result %s), want done with result {\"size\":42}", got, got.Result)
	}
	if d := time.Until(got.ExpiresAt); d < 59*time.Minute || d > time.Hour {
		t.Errorf("retained until %v (in %v), want in an hour", got.ExpiresAt, d)
	}

	// Binary, longer than max_result: cut and flagged.
	j = c.enqueueAndLease("kept", "")
	c.ok("POST", fmt.Sprintf("/v1/jobs/%s/ack?lease=%s", j.ID, j.Lease.ID), `{"result_b64": "AAECAwQFBgcICQoLDA0ODxAREhM="}`, 200, nil)
	got = show(j.ID)
	if len(got.ResultB64) != 16 || got.ResultB64[15] != 15 || !got.ResultTruncated || got.Result != nil {
		t.Errorf("long binary result: %+v, want its first 16 bytes in result_b64, truncated", got)
	}

	// Through /v1/acks.
	j = c.enqueueAndLease("kept", "")
	c.ok("POST", "/v1/acks", fmt.Sprintf(`{"acks":[{"id":%q,"lease":%q,"result":"ok"}]}`, j.ID, j.Lease.ID), 200, nil)
	if got := show(j.ID); got.State != "done" || string(got.Result) != `"ok"` {
		t.Errorf("acked through /v1/acks: %+v, want done with result \"ok\"", got)
	}

	// An exec handler's stdout.
	var res struct {
		ID string `json:"id"`
	}
	c.ok("POST", "/v1/queues/run/jobs", "in", 201, &res)
	deadline := time.Now().Add(10 * time.Second)
	for got = show(res.ID); got.State != "done" && time.Now().Before(deadline); got = show(res.ID) {
		time.Sleep(20 * time.Millisecond)
	}
	if got.State != "done" || string(got.Result) != `{"converted":true}` {
		t.Errorf("exec job: %+v (result %s), want done with its stdout as result", got, got.Result)
	}

	var st struct {
		Done int `json:"done"`
	}
	c.ok("GET", "/v1/queues/kept", "", 200, &st)
	if st.Done != 3 {
		t.Errorf("queue kept: done %d, want 3", st.Done)
	}

	// Without retain_done nothing is kept.
	j = c.enqueueAndLease("plain", "")
	c.ok("POST", fmt.Sprintf("/v1/jobs/%s/ack?lease=%s", j.ID, j.Lease.ID), `{"result": 1}`, 200, nil)
	c.refused("GET", "/v1/jobs/"+j.ID, "", 404, "not_found")
}
