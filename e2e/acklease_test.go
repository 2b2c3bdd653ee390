package e2e

import (
	"strings"
	"testing"
)

// ackLeaseAnswer is the answer of POST /v1/queues/{q}/lease with acks.
type ackLeaseAnswer struct {
	Jobs []leasedJob `json:"jobs"`
	acksAnswer
}

// TestLeaseWithAcks (issue 16 target 5): a worker acks the job it finished
// and leases its next in one request; each ack is answered as a single ack
// would be (a lost lease never holds the lease back) and the jobs follow.
func TestLeaseWithAcks(t *testing.T) {
	_, c := apiDaemon(t, "")
	a, b := c.enqueueAndLease("w", ""), c.enqueueAndLease("w", "")
	c.ok("POST", "/v1/queues/w/jobs", "next", 201, nil)

	var got ackLeaseAnswer
	c.ok("POST", "/v1/queues/w/lease?max=5", acksBody(a.ID, a.Lease.ID, b.ID, "0000000000000003", "00000000000000ff", "l"), 200, &got)
	want := []struct{ id, code string }{{a.ID, ""}, {b.ID, "lease_lost"}, {"00000000000000ff", "not_found"}}
	if len(got.Acks) != len(want) {
		t.Fatalf("answered %d acks, want %d: %+v", len(got.Acks), len(want), got)
	}
	for i, w := range want {
		g, code := got.Acks[i], ""
		if g.Error != nil {
			code = g.Error.Code
		}
		if g.ID != w.id || g.Acked != (w.code == "") || code != w.code {
			t.Errorf("ack %d = %+v (error %q), want id %s acked %v error %q", i, g, code, w.id, w.code == "", w.code)
		}
	}
	if len(got.Jobs) != 1 || got.Jobs[0].State != "leased" || got.Jobs[0].Lease == nil || got.Jobs[0].ID == a.ID || got.Jobs[0].ID == b.ID {
		t.Fatalf("jobs = %+v, want the next job, leased", got.Jobs)
	}
	c.refused("GET", "/v1/jobs/"+a.ID, "", 404, "not_found")

	next := got.Jobs[0]

	// A refused request acks nothing: the lease request or the body is
	// wrong, named.
	for _, tc := range []struct {
		name, path, body string
		status           int
		code, names      string
	}{
		{"bad max", "/v1/queues/w/lease?max=101", acksBody(next.ID, next.Lease.ID), 400, "invalid_argument", "max"},
		{"not JSON", "/v1/queues/w/lease", "ack " + next.ID, 400, "invalid_argument", "body"},
		{"bad id", "/v1/queues/w/lease", acksBody(next.ID, next.Lease.ID, "nope", "l"), 400, "invalid_argument", "acks[1].id"},
		{"no lease", "/v1/queues/w/lease", acksBody(next.ID, ""), 400, "invalid_argument", "acks[0].lease"},
		{"bad queue", "/v1/queues/a%20b/lease", acksBody(next.ID, next.Lease.ID), 400, "invalid_queue", ""},
	} {
		a := c.refused("POST", tc.path, tc.body, tc.status, tc.code)
		if !strings.Contains(a.msg, tc.names) {
			t.Errorf("%s: message %q does not name %q", tc.name, a.msg, tc.names)
		}
	}
	var st leasedJob
	c.ok("GET", "/v1/jobs/"+next.ID, "", 200, &st)
	if st.State != "leased" {
		t.Fatalf("after refused requests: state %q, want still leased", st.State)
	}

	// Nothing ready: the acks are answered, and no jobs.
	got = ackLeaseAnswer{}
	c.ok("POST", "/v1/queues/w/lease", acksBody(next.ID, next.Lease.ID, b.ID, b.Lease.ID), 200, &got)
	if len(got.Jobs) != 0 || len(got.Acks) != 2 || !got.Acks[0].Acked || !got.Acks[1].Acked {
		t.Errorf("lease with acks of an empty queue = %+v, want both acked and no jobs", got)
	}
	// Without a body (or with no acks) the answer is a plain lease's.
	for _, body := range []string{"", `{"acks":[]}`} {
		a := c.do("POST", "/v1/queues/w/lease", body)
		if a.status != 200 || string(a.body) != `{"jobs":[]}`+"\n" {
			t.Errorf("lease with body %q: %d %s, want 200 {\"jobs\":[]}", body, a.status, a.body)
		}
	}
}
