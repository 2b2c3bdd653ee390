package httpapi

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/edgeq/edgeq/engine/job"
)

// TestClientAcks: Client.Acks answers one error per ack, in order, each
// the *APIError a single ack would get (errors.Is works on it); a refusal
// of the whole request is the call's error.
func TestClientAcks(t *testing.T) {
	ts := mustStartServer(t, Config{})
	c := ts.client(t, "")
	var jobs []*job.Job
	for range 3 {
		j := ts.eng.put(job.Job{Queue: "w", State: job.StateLeased, Attempt: 1, MaxAttempts: 3})
		j.LeaseID = "L" + j.ID.String()
		ts.eng.put(*j)
		jobs = append(jobs, j)
	}
	errs, err := c.Acks(t.Context(), []AckItem{
		{ID: jobs[0].ID.String(), Lease: jobs[0].LeaseID},
		{ID: jobs[1].ID.String(), Lease: "wrong"},
		{ID: "00000000000000ff", Lease: "L"},
		{ID: jobs[2].ID.String(), Lease: jobs[2].LeaseID},
	})
	if err != nil {
		t.Fatalf("Acks: %v", err)
	}
	want := []struct {
		err    error
		status int
	}{{nil, 0}, {job.ErrLeaseLost, http.StatusConflict}, {job.ErrNotFound, http.StatusNotFound}, {nil, 0}}
	if len(errs) != len(want) {
		t.Fatalf("Acks answered %d, want %d", len(errs), len(want))
	}
	for i, w := range want {
		var ae *APIError
		switch {
		case w.err == nil && errs[i] != nil:
			t.Errorf("ack %d = %v, want acked", i, errs[i])
		case w.err != nil && (!errors.Is(errs[i], w.err) || !errors.As(errs[i], &ae) || ae.Status != w.status):
			t.Errorf("ack %d = %#v, want %v with status %d", i, errs[i], w.err, w.status)
		}
	}
	if _, err := ts.eng.Job(t.Context(), jobs[1].ID); err != nil {
		t.Errorf("the job whose ack was refused: %v", err)
	}

	ts.eng.setErr("AckBatch", job.ErrShuttingDown)
	errs, err = c.Acks(t.Context(), []AckItem{{ID: jobs[1].ID.String(), Lease: jobs[1].LeaseID}})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != "shutting_down" || errs != nil {
		t.Errorf("Acks while shutting down = %v, %v; want 503 shutting_down and no answers", errs, err)
	}
	if _, err := c.Acks(t.Context(), nil); !errors.Is(err, job.ErrInvalidArgument) {
		t.Errorf("Acks of none = %v, want ErrInvalidArgument before any request", err)
	}
}

// TestLeaseEmptyBody: a lease whose body is empty, even sent chunked and
// without a Content-Type, is a plain lease, as before leases took acks.
func TestLeaseEmptyBody(t *testing.T) {
	ts := mustStartServer(t, Config{})
	ts.eng.put(job.Job{Queue: "w", State: job.StateReady, MaxAttempts: 3})
	r := ts.do(t, "POST", "/v1/queues/w/lease", io.MultiReader(strings.NewReader("")))
	r.wantStatus(t, 200)
	if !strings.HasPrefix(string(r.body), `{"jobs":[{`) || strings.Contains(string(r.body), `"acks"`) {
		t.Errorf("lease with an empty chunked body = %s, want a plain lease's answer", r.body)
	}
}
