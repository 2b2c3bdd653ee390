package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
)

const testTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// leaseAll leases every ready job of q (at most MaxLease).
func leaseAll(t *testing.T, e *engine.Engine, q string) []*job.Job {
	t.Helper()
	jobs, err := e.Lease(t.Context(), engine.LeaseRequest{Queue: q, Max: engine.MaxLease})
	if err != nil {
		t.Fatalf("Lease(%s): %v", q, err)
	}
	return jobs
}

// TestFollowUp: a job's success enqueues its on_success job in the commit
// of its ack: with the given payload, else the result (cut at the queue's
// max_result), the parent's id in the edgeq-parent header and its trace
// context; a repeated ack, a nack and a fail enqueue none; a lease
// rebuilt from the store (after a failed commit) still carries it.
func TestFollowUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.New()
		cfg := engine.Config{Queues: map[string]engine.QueueConfig{"convert": {MaxResult: 20}}}
		e := start(t, st, cfg)

		p := enqueue(t, e, job.New{Queue: "convert", Payload: []byte("raw"), TraceParent: testTrace, TraceState: "a=b",
			Headers: map[string]string{"device": "7"}, OnSuccess: &job.FollowUp{Queue: "upload"}})
		j := lease1(t, e, "convert", 0)
		if j.OnSuccess == nil || j.OnSuccess.Queue != "upload" {
			t.Fatalf("leased job's OnSuccess = %+v, want queue upload", j.OnSuccess)
		}
		if err := e.Ack(t.Context(), j.ID, j.LeaseID, []byte(`{"url":"http://x/1"}`)); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		if err := e.Ack(t.Context(), j.ID, j.LeaseID, []byte(`{"url":"http://x/1"}`)); err != nil {
			t.Fatalf("Ack repeated: %v", err)
		}
		got := leaseAll(t, e, "upload")
		if len(got) != 1 {
			t.Fatalf("upload holds %d jobs after the ack (repeated), want 1", len(got))
		}
		f := got[0]
		if string(f.Payload) != `{"url":"http://x/1"}` || f.ContentType != "application/json" ||
			f.Headers["edgeq-parent"] != p.ID.String() || len(f.Headers) != 1 ||
			f.TraceParent != testTrace || f.TraceState != "a=b" || f.OnSuccess != nil {
			t.Fatalf("follow-up = payload %q, content type %q, headers %v, trace %q %q, on_success %v; want the result as JSON, edgeq-parent %s only, the trace carried",
				f.Payload, f.ContentType, f.Headers, f.TraceParent, f.TraceState, f.OnSuccess, p.ID)
		}
		if s := stats(t, e, "upload"); s.EnqueuedTotal != 1 {
			t.Errorf("upload enqueued_total = %d, want 1", s.EnqueuedTotal)
		}

		// A given payload wins over the result; a long result is cut at
		// max_result; no result gives an empty payload.
		enqueue(t, e, job.New{Queue: "convert", OnSuccess: &job.FollowUp{Queue: "upload", Payload: []byte("given"), HasPayload: true}})
		enqueue(t, e, job.New{Queue: "convert", OnSuccess: &job.FollowUp{Queue: "upload"}})
		enqueue(t, e, job.New{Queue: "convert", OnSuccess: &job.FollowUp{Queue: "upload"}})
		results := [][]byte{[]byte("ignored"), []byte("0123456789abcdefghijXYZ"), nil}
		for i, l := range leaseAll(t, e, "convert") {
			if err := e.Ack(t.Context(), l.ID, l.LeaseID, results[i]); err != nil {
				t.Fatal(err)
			}
		}
		got = leaseAll(t, e, "upload")
		want := []struct{ payload, ct string }{{"given", "application/octet-stream"}, {"0123456789abcdefghij", "application/octet-stream"}, {"", "application/octet-stream"}}
		if len(got) != len(want) {
			t.Fatalf("upload holds %d jobs, want %d", len(got), len(want))
		}
		for i, w := range want {
			if string(got[i].Payload) != w.payload || got[i].ContentType != w.ct {
				t.Errorf("follow-up %d: payload %q (%s), want %q (%s)", i, got[i].Payload, got[i].ContentType, w.payload, w.ct)
			}
		}

		// Nack and fail enqueue nothing.
		enqueue(t, e, job.New{Queue: "convert", MaxAttempts: 1, OnSuccess: &job.FollowUp{Queue: "upload"}})
		enqueue(t, e, job.New{Queue: "convert", OnSuccess: &job.FollowUp{Queue: "upload"}})
		ls := leaseAll(t, e, "convert")
		if _, err := e.Nack(t.Context(), ls[0].ID, ls[0].LeaseID, 0, "no"); err != nil {
			t.Fatal(err)
		}
		if err := e.Fail(t.Context(), ls[1].ID, ls[1].LeaseID, "no"); err != nil {
			t.Fatal(err)
		}
		if s := stats(t, e, "upload"); s.Ready != 0 || s.EnqueuedTotal != 4 {
			t.Errorf("upload after a nack and a fail: ready %d, enqueued %d; want 0, 4", s.Ready, s.EnqueuedTotal)
		}

		// A lease rebuilt from the store keeps its follow-up; so does AckBatch.
		enqueue(t, e, job.New{Queue: "convert", OnSuccess: &job.FollowUp{Queue: "upload"}})
		enqueue(t, e, job.New{Queue: "convert", OnSuccess: &job.FollowUp{Queue: "upload"}})
		ls = leaseAll(t, e, "convert")
		st.FailNextCommit(errors.New("injected"))
		if _, err := e.Enqueue(t.Context(), job.New{Queue: "other"}); err == nil {
			t.Fatal("enqueue during a failing commit succeeded")
		}
		errs, err := e.AckBatch(t.Context(), []engine.AckRequest{{ID: ls[0].ID, Lease: ls[0].LeaseID, Result: []byte("b0")}, {ID: ls[1].ID, Lease: ls[1].LeaseID, Result: []byte("b1")}})
		if err != nil || errs[0] != nil || errs[1] != nil {
			t.Fatalf("AckBatch after a rebuild: %v %v", errs, err)
		}
		got = leaseAll(t, e, "upload")
		if len(got) != 2 || string(got[0].Payload) != "b0" || string(got[1].Payload) != "b1" {
			t.Fatalf("follow-ups of AckBatch: %d jobs, want b0 and b1", len(got))
		}
	})
}

// TestFollowUpOfHandler: an in-process handler's success enqueues the
// follow-up with its result.
func TestFollowUpOfHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := engine.HandlerFunc(func(ctx context.Context, j *job.Job) engine.Outcome {
			return engine.Outcome{Verdict: engine.Ack, Result: "converted " + string(j.Payload)}
		})
		e := start(t, memstore.New(), engine.Config{Queues: map[string]engine.QueueConfig{"convert": {Handler: h}}})
		p := enqueue(t, e, job.New{Queue: "convert", Payload: []byte("a"), OnSuccess: &job.FollowUp{Queue: "upload"}})
		synctest.Wait()
		got := leaseAll(t, e, "upload")
		if len(got) != 1 || string(got[0].Payload) != "converted a" || got[0].Headers["edgeq-parent"] != p.ID.String() {
			t.Fatalf("upload after the handler's success: %d jobs, want one with payload \"converted a\"", len(got))
		}
	})
}

// TestFollowUpRefused: a follow-up that its queue has no room for is kept
// dead in that queue, naming the bound, and the ack still succeeds; a bad
// on_success is refused at enqueue, naming the field, and stores nothing.
func TestFollowUpRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{
			MaxPayload:   1 << 20,
			StrictQueues: true,
			Queues:       map[string]engine.QueueConfig{"convert": {}, "upload": {MaxDepth: 1}},
		})
		enqueue(t, e, job.New{Queue: "upload"})
		p := enqueue(t, e, job.New{Queue: "convert", OnSuccess: &job.FollowUp{Queue: "upload"}})
		j := lease1(t, e, "convert", 0)
		if err := e.Ack(t.Context(), j.ID, j.LeaseID, []byte("r")); err != nil {
			t.Fatalf("Ack with its follow-up's queue full: %v", err)
		}
		s := stats(t, e, "upload")
		if s.Ready != 1 || s.Dead != 1 {
			t.Fatalf("upload: ready %d, dead %d; want 1, 1", s.Ready, s.Dead)
		}
		dead, _, err := e.DeadList(t.Context(), "upload", 0, 10)
		if err != nil || len(dead) != 1 {
			t.Fatalf("DeadList: %d, %v", len(dead), err)
		}
		if d := dead[0]; string(d.Payload) != "r" || d.Headers["edgeq-parent"] != p.ID.String() ||
			!strings.Contains(d.LastError, "max_depth") || !strings.Contains(d.LastError, p.ID.String()) {
			t.Errorf("dead follow-up: payload %q, headers %v, last_error %q; want the result, the parent, the bound named", d.Payload, d.Headers, d.LastError)
		}

		for name, tc := range map[string]struct {
			f    *job.FollowUp
			want string
		}{
			"bad queue name":  {&job.FollowUp{Queue: "Upload!"}, "on_success.queue"},
			"unknown queue":   {&job.FollowUp{Queue: "nowhere"}, "on_success.queue"},
			"no queue":        {&job.FollowUp{}, "on_success.queue"},
			"payload too big": {&job.FollowUp{Queue: "upload", Payload: make([]byte, engine.MaxFollowUpPayload+1), HasPayload: true}, "on_success.payload"},
		} {
			_, err := e.Enqueue(t.Context(), job.New{Queue: "convert", OnSuccess: tc.f})
			if !errors.Is(err, job.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: Enqueue = %v, want ErrInvalidArgument naming %s", name, err, tc.want)
			}
		}
		if s := stats(t, e, "convert"); s.Ready != 0 || s.EnqueuedTotal != 1 {
			t.Errorf("convert after refusals: ready %d, enqueued %d; want 0, 1", s.Ready, s.EnqueuedTotal)
		}
	})
}

// TestFollowUpReplaced: key_mode replace gives the waiting job the new
// enqueue's on_success with its payload, none included.
func TestFollowUpReplaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{})
		r := enqueue(t, e, job.New{Queue: "q", Key: "k", KeyMode: job.KeyReplace, OnSuccess: &job.FollowUp{Queue: "a"}})
		for _, f := range []*job.FollowUp{{Queue: "b"}, nil} {
			enqueue(t, e, job.New{Queue: "q", Key: "k", KeyMode: job.KeyReplace, OnSuccess: f})
			j, err := e.Job(t.Context(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if (j.OnSuccess == nil) != (f == nil) || f != nil && j.OnSuccess.Queue != f.Queue {
				t.Errorf("after a replace with on_success %+v, the job has %+v", f, j.OnSuccess)
			}
		}
	})
}
