package engine_test

import (
	"errors"
	"testing"
	"testing/synctest"

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
