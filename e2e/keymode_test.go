package e2e

import (
	"strings"
	"testing"
)

// TestKeyModesHTTP (issue 20 item 3), against the real binary: key_mode
// per queue (the config) and per job (query, batch field); the answer says
// which happened; a bad key_mode is refused naming it and stores nothing.
func TestKeyModesHTTP(t *testing.T) {
	_, c := apiDaemon(t, "queues: {setpoint: {key_mode: replace}}\n")
	type answer struct {
		ID        string `json:"id"`
		State     string `json:"state"`
		Duplicate bool   `json:"duplicate"`
		Replaced  bool   `json:"replaced"`
	}
	var first, a answer
	c.ok("POST", "/v1/queues/setpoint/jobs?key=dev1", "20", 201, &first)
	c.ok("POST", "/v1/queues/setpoint/jobs?key=dev1", "21", 200, &a)
	if !a.Replaced || a.Duplicate || a.ID != first.ID || a.State != "ready" {
		t.Errorf("second set-point: %+v, want %s replaced", a, first.ID)
	}
	var l struct {
		Jobs []struct {
			ID         string `json:"id"`
			PayloadB64 []byte `json:"payload_b64"`
		} `json:"jobs"`
	}
	c.ok("POST", "/v1/queues/setpoint/lease?max=10", "", 200, &l)
	if len(l.Jobs) != 1 || l.Jobs[0].ID != first.ID || string(l.Jobs[0].PayloadB64) != "21" {
		t.Fatalf("lease: %+v, want one job %s with the newest payload 21", l.Jobs, first.ID)
	}
	a = answer{}
	c.ok("POST", "/v1/queues/setpoint/jobs?key=dev1", "22", 201, &a) // behind the leased one
	if a.Replaced || a.Duplicate || a.ID == first.ID {
		t.Errorf("set-point while the last is leased: %+v, want a new job", a)
	}

	// Per job, on a window queue: active.
	c.ok("POST", "/v1/queues/w/jobs?key=k&key_mode=active", "x", 201, &first)
	a = answer{}
	c.ok("POST", "/v1/queues/w/jobs?key=k&key_mode=active", "x", 200, &a)
	if !a.Duplicate || a.ID != first.ID {
		t.Errorf("active key of a waiting job: %+v, want a duplicate of %s", a, first.ID)
	}
	if r := c.refused("POST", "/v1/queues/w/jobs?key=k&key_mode=newest", "x", 400, "invalid_argument"); !strings.Contains(r.msg, "key_mode") {
		t.Errorf("bad key_mode: message %q does not name key_mode", r.msg)
	}
	c.refused("POST", "/v1/queues/w/jobs?key_mode=active", "x", 400, "invalid_argument") // no key

	// A batch line's field.
	var br struct {
		Jobs []answer `json:"jobs"`
	}
	c.ok("POST", "/v1/queues/b/batch", `{"payload":1,"key":"s","key_mode":"replace"}`+"\n", 201, &br)
	first, br.Jobs = br.Jobs[0], nil
	c.ok("POST", "/v1/queues/b/batch", `{"payload":2,"key":"s","key_mode":"replace"}`+"\n", 201, &br)
	if len(br.Jobs) != 1 || !br.Jobs[0].Replaced || br.Jobs[0].ID != first.ID {
		t.Errorf("batch replace: %+v, want %s replaced", br.Jobs, first.ID)
	}
	c.refused("POST", "/v1/queues/b/batch", `{"payload":3,"key":"s","key_mode":"x"}`+"\n", 400, "invalid_argument")

	var st struct {
		Ready int `json:"ready"`
	}
	c.ok("GET", "/v1/queues/w", "", 200, &st)
	if st.Ready != 1 {
		t.Errorf("queue w holds %d ready jobs, want 1 (refusals store nothing)", st.Ready)
	}
}
