package engine_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
)

// TestAckBatch (issue 16): many acks in one call are answered one by one,
// in order, as single acks would be, and share one commit and one sync.
func TestAckBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.New()
		e := start(t, st, engine.Config{})
		for range 4 {
			enqueue(t, e, job.New{Queue: "q", Payload: []byte("x")})
		}
		jobs, err := e.Lease(t.Context(), engine.LeaseRequest{Queue: "q", Max: 4})
		if err != nil || len(jobs) != 4 {
			t.Fatalf("Lease = %d jobs, %v; want 4", len(jobs), err)
		}
		syncs := st.Syncs()
		acks := []engine.AckRequest{
			{ID: jobs[0].ID, Lease: jobs[0].LeaseID},
			{ID: jobs[1].ID, Lease: "wrong"},
			{ID: jobs[3].ID + 1000, Lease: "x"},
			{ID: jobs[0].ID, Lease: jobs[0].LeaseID}, // repeated in the same call
			{ID: jobs[2].ID, Lease: jobs[2].LeaseID},
		}
		errs, err := e.AckBatch(t.Context(), acks)
		if err != nil {
			t.Fatalf("AckBatch: %v", err)
		}
		want := []error{nil, job.ErrLeaseLost, job.ErrNotFound, nil, nil}
		if len(errs) != len(want) {
			t.Fatalf("AckBatch answered %d errors, want %d", len(errs), len(want))
		}
		for i := range want {
			if (want[i] == nil) != (errs[i] == nil) || !errors.Is(errs[i], want[i]) {
				t.Errorf("ack %d = %v, want %v", i, errs[i], want[i])
			}
		}
		if got := st.Syncs() - syncs; got != 1 {
			t.Errorf("AckBatch synced %d times, want 1", got)
		}
		if s := stats(t, e, "q"); s.Leased != 2 || s.CompletedTotal != 2 {
			t.Errorf("stats after the batch: leased %d, completed %d; want 2 and 2", s.Leased, s.CompletedTotal)
		}
		// Each ack is remembered as a single one is: repeated alone, it answers nil.
		if err := e.Ack(t.Context(), jobs[2].ID, jobs[2].LeaseID, nil); err != nil {
			t.Errorf("Ack repeated after the batch = %v, want nil", err)
		}
		if err := e.Ack(t.Context(), jobs[1].ID, jobs[1].LeaseID, nil); err != nil {
			t.Errorf("Ack of the job the batch refused = %v, want nil", err)
		}
	})
}

// TestAckBatchRefused: an empty or too large batch is refused whole and
// changes nothing; a failed commit fails the whole batch.
func TestAckBatchRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.New()
		e := start(t, st, engine.Config{})
		enqueue(t, e, job.New{Queue: "q"})
		j := lease1(t, e, "q", 0)
		if _, err := e.AckBatch(t.Context(), nil); !errors.Is(err, job.ErrInvalidArgument) {
			t.Errorf("AckBatch of none = %v, want ErrInvalidArgument", err)
		}
		many := make([]engine.AckRequest, engine.MaxBatchJobs+1)
		for i := range many {
			many[i] = engine.AckRequest{ID: j.ID, Lease: j.LeaseID}
		}
		if _, err := e.AckBatch(t.Context(), many); !errors.Is(err, job.ErrTooLarge) {
			t.Errorf("AckBatch of %d = %v, want ErrTooLarge", len(many), err)
		}
		if s := stats(t, e, "q"); s.Leased != 1 {
			t.Fatalf("refused batches changed the queue: leased %d, want 1", s.Leased)
		}
		st.FailNextCommit(errors.New("disk on fire"))
		errs, err := e.AckBatch(t.Context(), many[:2])
		if !errors.Is(err, job.ErrUnavailable) || errs != nil {
			t.Errorf("AckBatch over a failing commit = %v, %v; want ErrUnavailable and no answers", errs, err)
		}
		if err := e.Ack(t.Context(), j.ID, j.LeaseID, nil); err != nil {
			t.Errorf("Ack after the failed batch = %v, want nil", err)
		}
	})
}

// TestAckLease: a worker acks the jobs it finished and leases its next in
// one op: each ack answered as Ack would answer it, a refused ack never
// holding the lease back, and one sync for all of it (the lease's attempt
// durable before the answer, as Lease's).
func TestAckLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.New()
		e := start(t, st, engine.Config{})
		for range 3 {
			enqueue(t, e, job.New{Queue: "q", Payload: []byte("x")})
		}
		first := lease1(t, e, "q", 0)
		syncs := st.Syncs()
		errs, jobs, err := e.AckLease(t.Context(), []engine.AckRequest{
			{ID: first.ID, Lease: first.LeaseID},
			{ID: first.ID + 1000, Lease: "x"},
		}, engine.LeaseRequest{Queue: "q", Max: 1})
		if err != nil {
			t.Fatalf("AckLease: %v", err)
		}
		if len(errs) != 2 || errs[0] != nil || !errors.Is(errs[1], job.ErrNotFound) {
			t.Errorf("acks = %v, want nil and ErrNotFound", errs)
		}
		if len(jobs) != 1 || jobs[0].ID == first.ID || jobs[0].Attempt != 1 || jobs[0].LeaseID == "" {
			t.Fatalf("leased %+v, want the next job, attempt 1", jobs)
		}
		if got := st.Syncs() - syncs; got != 1 {
			t.Errorf("AckLease synced %d times, want 1", got)
		}
		if s := stats(t, e, "q"); s.Leased != 1 || s.CompletedTotal != 1 || s.Ready != 1 {
			t.Errorf("stats: leased %d, completed %d, ready %d; want 1, 1, 1", s.Leased, s.CompletedTotal, s.Ready)
		}
		// The ack is remembered as a single one is.
		if err := e.Ack(t.Context(), first.ID, first.LeaseID, nil); err != nil {
			t.Errorf("Ack repeated after AckLease = %v, want nil", err)
		}

		// A lost lease is answered, and the next job leased all the same.
		errs, jobs, err = e.AckLease(t.Context(), []engine.AckRequest{{ID: jobs[0].ID, Lease: "wrong"}},
			engine.LeaseRequest{Queue: "q", Max: 5})
		if err != nil || len(errs) != 1 || !errors.Is(errs[0], job.ErrLeaseLost) || len(jobs) != 1 {
			t.Fatalf("AckLease with a lost lease = %v, %d jobs, %v; want ErrLeaseLost and 1 job", errs, len(jobs), err)
		}

		// Nothing ready: the acks are done, and the wait is a long poll
		// that a new job ends.
		var got []*job.Job
		var leaseErr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, got, leaseErr = e.AckLease(t.Context(), []engine.AckRequest{{ID: jobs[0].ID, Lease: jobs[0].LeaseID}},
				engine.LeaseRequest{Queue: "q", Max: 1, Wait: time.Minute})
		}()
		synctest.Wait()
		if s := stats(t, e, "q"); s.Leased != 1 || s.CompletedTotal != 2 {
			t.Errorf("while waiting: leased %d, completed %d; want 1 and 2", s.Leased, s.CompletedTotal)
		}
		enqueue(t, e, job.New{Queue: "q", Payload: []byte("late")})
		<-done
		if leaseErr != nil || len(got) != 1 || string(got[0].Payload) != "late" {
			t.Errorf("long poll = %v, %v; want the late job", got, leaseErr)
		}
	})
}

// TestAckLeaseRefused: a bad lease request or too many acks is refused
// whole and changes nothing; a failed commit fails the whole call.
func TestAckLeaseRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.New()
		e := start(t, st, engine.Config{})
		enqueue(t, e, job.New{Queue: "q"})
		enqueue(t, e, job.New{Queue: "q"})
		j := lease1(t, e, "q", 0)
		acks := []engine.AckRequest{{ID: j.ID, Lease: j.LeaseID}}
		many := make([]engine.AckRequest, engine.MaxBatchJobs+1)
		for i := range many {
			many[i] = acks[0]
		}
		for _, tc := range []struct {
			name string
			acks []engine.AckRequest
			r    engine.LeaseRequest
			want error
		}{
			{"max 0", acks, engine.LeaseRequest{Queue: "q"}, job.ErrInvalidArgument},
			{"long wait", acks, engine.LeaseRequest{Queue: "q", Max: 1, Wait: time.Hour}, job.ErrInvalidArgument},
			{"bad queue", acks, engine.LeaseRequest{Queue: "a b", Max: 1}, job.ErrInvalidQueue},
			{"too many acks", many, engine.LeaseRequest{Queue: "q", Max: 1}, job.ErrTooLarge},
		} {
			if _, _, err := e.AckLease(t.Context(), tc.acks, tc.r); !errors.Is(err, tc.want) {
				t.Errorf("%s: AckLease = %v, want %v", tc.name, err, tc.want)
			}
		}
		if s := stats(t, e, "q"); s.Leased != 1 || s.Ready != 1 {
			t.Fatalf("refused calls changed the queue: leased %d, ready %d; want 1 and 1", s.Leased, s.Ready)
		}
		synctest.Wait()
		st.FailNextCommit(errors.New("disk on fire"))
		errs, jobs, err := e.AckLease(t.Context(), acks, engine.LeaseRequest{Queue: "q", Max: 1})
		if !errors.Is(err, job.ErrUnavailable) || errs != nil || jobs != nil {
			t.Errorf("AckLease over a failing commit = %v, %v, %v; want ErrUnavailable only", errs, jobs, err)
		}
		if err := e.Ack(t.Context(), j.ID, j.LeaseID, nil); err != nil {
			t.Errorf("Ack after the failed call = %v, want nil", err)
		}
	})
}
