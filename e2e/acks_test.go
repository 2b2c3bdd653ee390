package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// acksAnswer is the answer of POST /v1/acks.
type acksAnswer struct {
	Acks []struct {
		ID    string `json:"id"`
		Acked bool   `json:"acked"`
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"acks"`
}

// acksBody is a POST /v1/acks body of id, lease pairs.
func acksBody(pairs ...string) string {
	items := make([]string, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		items = append(items, fmt.Sprintf(`{"id":%q,"lease":%q}`, pairs[i], pairs[i+1]))
	}
	return `{"acks":[` + strings.Join(items, ",") + `]}`
}

// TestAcks (issue 16 target 5): POST /v1/acks acks many jobs in one
// request and answers each in order as a single ack would: acked, or the
// same error code (lease_lost, not_found); a repeat with the same lease is
// acked again. The jobs it refused are untouched.
func TestAcks(t *testing.T) {
	_, c := apiDaemon(t, "")
	a, b, d := c.enqueueAndLease("w", ""), c.enqueueAndLease("w", ""), c.enqueueAndLease("w", "")
	var got acksAnswer
	c.ok("POST", "/v1/acks", acksBody(
		a.ID, a.Lease.ID,
		b.ID, "0000000000000003",
		"00000000000000ff", "0000000000000003",
		a.ID, a.Lease.ID,
		d.ID, d.Lease.ID,
	), 200, &got)
	want := []struct {
		id, code string
	}{{a.ID, ""}, {b.ID, "lease_lost"}, {"00000000000000ff", "not_found"}, {a.ID, ""}, {d.ID, ""}}
	if len(got.Acks) != len(want) {
		t.Fatalf("answered %d acks, want %d: %+v", len(got.Acks), len(want), got)
	}
	for i, w := range want {
		g := got.Acks[i]
		code := ""
		if g.Error != nil {
			code = g.Error.Code
			if g.Error.Message == "" {
				t.Errorf("ack %d: error without a message", i)
			}
		}
		if g.ID != w.id || g.Acked != (w.code == "") || code != w.code {
			t.Errorf("ack %d = %+v (error %q), want id %s acked %v error %q", i, g, code, w.id, w.code == "", w.code)
		}
	}
	c.refused("GET", "/v1/jobs/"+a.ID, "", 404, "not_found")
	c.refused("GET", "/v1/jobs/"+d.ID, "", 404, "not_found")
	var left leasedJob
	c.ok("GET", "/v1/jobs/"+b.ID, "", 200, &left)
	if left.State != "leased" {
		t.Errorf("job refused in the batch: state %q, want still leased", left.State)
	}
	c.ok("POST", fmt.Sprintf("/v1/jobs/%s/ack?lease=%s", b.ID, b.Lease.ID), "", 200, nil)
	var st struct {
		Leased         int `json:"leased"`
		CompletedTotal int `json:"completed_total"`
	}
	c.ok("GET", "/v1/queues/w", "", 200, &st)
	if st.Leased != 0 || st.CompletedTotal != 3 {
		t.Errorf("queue w: %+v, want none leased and 3 completed", st)
	}
}

// TestAcksRefused: a body that is not a valid list of acks is refused whole
// with a code and a message naming what is wrong, and acks nothing.
func TestAcksRefused(t *testing.T) {
	_, c := apiDaemon(t, "")
	j := c.enqueueAndLease("w", "")
	many := make([]string, 0, 2002)
	for range 1001 {
		many = append(many, j.ID, j.Lease.ID)
	}
	huge := `{"acks":[{"id":"` + j.ID + `","lease":"` + strings.Repeat("x", 300<<10) + `"}]}`
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code, names              string
	}{
		{"not JSON", "POST", "/v1/acks", "ack " + j.ID, 400, "invalid_argument", "body"},
		{"no acks", "POST", "/v1/acks", `{"acks":[]}`, 400, "invalid_argument", "acks"},
		{"unknown field", "POST", "/v1/acks", `{"acks":[{"id":"` + j.ID + `","lease":"` + j.Lease.ID + `","x":1}]}`, 400, "invalid_argument", "body"},
		{"bad id", "POST", "/v1/acks", acksBody(j.ID, j.Lease.ID, "nope", j.Lease.ID), 400, "invalid_argument", "acks[1].id"},
		{"no lease", "POST", "/v1/acks", acksBody(j.ID, ""), 400, "invalid_argument", "acks[0].lease"},
		{"too many", "POST", "/v1/acks", acksBody(many...), 400, "invalid_argument", "at most 1000"},
		{"two documents", "POST", "/v1/acks", acksBody(j.ID, j.Lease.ID) + acksBody(j.ID, j.Lease.ID), 400, "invalid_argument", "body"},
		{"query", "POST", "/v1/acks?lease=" + j.Lease.ID, acksBody(j.ID, j.Lease.ID), 400, "invalid_argument", "lease"},
		{"too large", "POST", "/v1/acks", huge, 413, "payload_too_large", "body"},
		{"method", "GET", "/v1/acks", "", 405, "method_not_allowed", "GET"},
	} {
		a := c.refused(tc.method, tc.path, tc.body, tc.status, tc.code)
		if !strings.Contains(a.msg, tc.names) {
			t.Errorf("%s: message %q does not name %q", tc.name, a.msg, tc.names)
		}
	}
	// Not JSON by its Content-Type: refused, as a cross-site form would be.
	a := c.do("POST", "/v1/acks?", acksBody(j.ID, j.Lease.ID))
	if a.status != 400 || a.code != "invalid_argument" || !strings.Contains(a.msg, "Content-Type") {
		t.Errorf("acks as text/plain: %d %s, want 400 invalid_argument naming Content-Type", a.status, a.body)
	}
	var st leasedJob
	c.ok("GET", "/v1/jobs/"+j.ID, "", 200, &st)
	if st.State != "leased" {
		t.Errorf("after refused acks: state %q, want still leased", st.State)
	}
}

// TestAcksNeedTheToken: with a token configured, /v1/acks answers 401
// without it.
func TestAcksNeedTheToken(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, c := apiDaemon(t, fmt.Sprintf("http: {token_file: %s}\n", tok))
	c.refused("POST", "/v1/acks", acksBody("0000000000000001", "0000000000000003"), 401, "unauthorized")
}
