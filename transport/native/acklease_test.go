package native

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/httpapi"
)

// ackLeaser is what both clients offer a worker that acks its last job and
// leases its next in one request.
type ackLeaser interface {
	AckLease(ctx context.Context, queue string, max int, wait, ttr time.Duration, acks []httpapi.AckItem) ([]httpapi.Job, []error, error)
}

// TestAckLease: over either transport, a lease carrying acks answers each
// ack as a single ack would (a lost lease never holds the lease back) and
// the next jobs; with nothing ready, the acks are made and no jobs come.
func TestAckLease(t *testing.T) {
	st := startStack(t, engine.Config{}, "s3cret")
	hc := httpapi.NewClient(st.base, st.token, nil)
	const missing = "00000000000fffff"
	for _, tc := range []struct {
		name string
		c    ackLeaser
	}{{"native", st.client}, {"http", hc}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			q := "al-" + tc.name
			a, b := st.enqueueAndLease(t, q), st.enqueueAndLease(t, q)
			if _, err := st.client.Enqueue(ctx, q, []byte("next"), httpapi.EnqueueOptions{}); err != nil {
				t.Fatal(err)
			}
			jobs, errs, err := tc.c.AckLease(ctx, q, 5, 0, 0, []httpapi.AckItem{
				{ID: a.ID, Lease: a.Lease.ID}, {ID: b.ID, Lease: "wrong"}, {ID: missing, Lease: "l"},
			})
			if err != nil {
				t.Fatalf("AckLease: %v", err)
			}
			if len(errs) != 3 || errs[0] != nil || !errors.Is(errs[1], job.ErrLeaseLost) || !errors.Is(errs[2], job.ErrNotFound) {
				t.Errorf("acks = %v, want acked, lease_lost, not_found", errs)
			}
			var ae *httpapi.APIError
			if !errors.As(errs[1], &ae) || ae.Status != 409 || ae.Code != "lease_lost" {
				t.Errorf("lost lease = %#v, want 409 lease_lost as a single ack answers", errs[1])
			}
			if len(jobs) != 1 || string(jobs[0].Body()) != "next" || jobs[0].Lease == nil {
				t.Fatalf("jobs = %+v, want the next job, leased", jobs)
			}
			jobs, errs, err = tc.c.AckLease(ctx, q, 1, 0, 0, []httpapi.AckItem{
				{ID: b.ID, Lease: b.Lease.ID}, {ID: jobs[0].ID, Lease: jobs[0].Lease.ID},
			})
			if err != nil || len(jobs) != 0 || len(errs) != 2 || errs[0] != nil || errs[1] != nil {
				t.Errorf("AckLease of an empty queue = %v, %v, %v; want both acked and no jobs", jobs, errs, err)
			}
			if err := tc.c.(interface {
				Ack(ctx context.Context, id, lease string) error
			}).Ack(ctx, a.ID, a.Lease.ID); err != nil {
				t.Errorf("ack repeated after AckLease: %v, want nil", err)
			}
		})
	}
}

// TestAckLeaseRefusalsMatchHTTP: a lease whose acks or parameters are not
// valid is refused whole, alike on both transports, and acks nothing.
func TestAckLeaseRefusalsMatchHTTP(t *testing.T) {
	st := startStack(t, engine.Config{}, "")
	j := st.enqueueAndLease(t, "q")
	jsonT := "application/json"
	for _, tc := range []struct {
		name, code, field string
		http              func() *httpapi.APIError
		nat               func() *httpapi.APIError
	}{
		{"bad id", "invalid_argument", "",
			func() *httpapi.APIError {
				return st.httpRefusal(t, "/v1/queues/q/lease", jsonT, `{"acks":[{"id":"xyz","lease":"l"}]}`)
			},
			func() *httpapi.APIError { return st.nativeRefusal(t, opLease, "q", nil, acksData("xyz", "l")) }},
		{"no lease", "invalid_argument", "acks[0].lease",
			func() *httpapi.APIError {
				return st.httpRefusal(t, "/v1/queues/q/lease", jsonT, `{"acks":[{"id":"`+j.ID+`","lease":""}]}`)
			},
			func() *httpapi.APIError { return st.nativeRefusal(t, opLease, "q", nil, acksData(j.ID, "")) }},
		{"bad max", "invalid_argument", "",
			func() *httpapi.APIError {
				return st.httpRefusal(t, "/v1/queues/q/lease?max=101", jsonT, `{"acks":[{"id":"`+j.ID+`","lease":"`+j.Lease.ID+`"}]}`)
			},
			func() *httpapi.APIError {
				return st.nativeRefusal(t, opLease, "q", []param{{"max", "101"}}, acksData(j.ID, j.Lease.ID))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, n := tc.http(), tc.nat()
			if tc.field != "" {
				// The messages name the field; each says where the lease
				// came from in its own words.
				if !strings.HasPrefix(h.Message, tc.field+": ") || !strings.HasPrefix(n.Message, tc.field+": ") {
					t.Errorf("messages %q and %q, want both to name %s", h.Message, n.Message, tc.field)
				}
				h.Message = n.Message
			}
			sameRefusal(t, tc.code, h, n)
		})
	}
	if err := st.client.Ack(t.Context(), j.ID, j.Lease.ID); err != nil {
		t.Errorf("ack after the refused leases: %v, want nil (nothing acked)", err)
	}
}
