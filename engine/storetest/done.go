package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// testRetainedDone: a leased job acked into a retained done job keeps its
// result (binary, and the truncation flag) and its payload, sits in the done
// index by ExpiresAt and in Counts, survives a reopen, and Delete (the
// retention's end) removes every trace of it.
func testRetainedDone(t *testing.T, h Harness) {
	s := h.Open(t)
	small := mkJob(1, "q", job.StateLeased)
	large := mkJob(2, "q", job.StateLeased, func(j *job.Job) { j.Payload = bytes.Repeat([]byte("p"), 2000) })
	other := mkJob(3, "other", job.StateDone, func(j *job.Job) { j.ExpiresAt = sec(10) })
	create(t, s, small, large, other)

	done := func(j *job.Job, result []byte, truncated bool, until time.Time) *job.Job {
		n := j.Clone()
		n.State, n.LeaseID, n.LeaseExpires = job.StateDone, "", time.Time{}
		n.Result, n.ResultTruncated, n.ExpiresAt = result, truncated, until
		return n
	}
	d1 := done(small, append([]byte{0, 0xff}, bytes.Repeat([]byte("r"), 4094)...), true, sec(500))
	d2 := done(large, nil, false, sec(100))
	write(t, s, func(tx store.Txn) {
		for _, u := range [][2]*job.Job{{small, d1}, {large, d2}} {
			prev, err := tx.Job(u[0].ID, false)
			if err != nil {
				t.Fatalf("Job(%d): %v", u[0].ID, err)
			}
			next := u[1].Clone()
			next.Payload = nil
			if err := tx.Update(prev, next); err != nil {
				t.Fatalf("Update(%d, leased → done): %v", u[0].ID, err)
			}
		}
	})
	check := func(s store.Store) {
		t.Helper()
		view(t, s, func(r store.ReadTx) {
			for _, j := range []*job.Job{d1, d2, other} {
				checkJob(t, r, j, true)
			}
			checkIndexes(t, r, d1, d2, other)
			refs, next, err := r.Due(store.IndexDone, store.Ref{}, sec(100), 10)
			if err != nil {
				t.Fatalf("Due(done): %v", err)
			}
			if len(refs) != 2 || refs[0].ID != 3 || refs[1].ID != 2 || !next.Equal(sec(500)) {
				t.Errorf("Due(done, until 100s) = %v next %v, want jobs 3 and 2, next at 500s", refs, next)
			}
		})
	}
	check(s)
	if h.Reopen != nil {
		s = h.Reopen(t, s)
		check(s)
	}

	write(t, s, func(tx store.Txn) {
		for _, id := range []job.ID{1, 2, 3} {
			j, err := tx.Job(id, false)
			if err != nil {
				t.Fatalf("Job(%d): %v", id, err)
			}
			if err := tx.Delete(j); err != nil {
				t.Fatalf("Delete(done %d): %v", id, err)
			}
		}
	})
	view(t, s, func(r store.ReadTx) {
		for _, id := range []job.ID{1, 2, 3} {
			if _, err := r.Job(id, true); !errors.Is(err, job.ErrNotFound) {
				t.Errorf("Job(%d) after Delete: err = %v, want ErrNotFound", id, err)
			}
		}
		checkIndexes(t, r)
	})
}

// testReplace: Create after Delete of the same id in one transaction
// replaces the job whole (key_mode replace): the new payload, small or
// large, reads back, the index entries are the new job's, and nothing of
// the old payload is left (a reopen reads the same).
func testReplace(t *testing.T, h Harness) {
	s := h.Open(t)
	small := mkJob(1, "q", job.StateReady)
	large := mkJob(2, "q", job.StateDelayed, func(j *job.Job) { j.Payload = bytes.Repeat([]byte("L"), 3000) })
	create(t, s, small, large, mkJob(3, "q", job.StateReady))
	toLarge := small.Clone()
	toLarge.Payload = bytes.Repeat([]byte("n"), 2000)
	toLarge.Headers, toLarge.ContentType = map[string]string{"v": "2"}, "application/json"
	toSmall := large.Clone()
	toSmall.Payload = []byte("tiny")
	write(t, s, func(tx store.Txn) {
		for _, u := range [][2]*job.Job{{small, toLarge}, {large, toSmall}} {
			prev, err := tx.Job(u[0].ID, false)
			if err != nil {
				t.Fatalf("Job(%d): %v", u[0].ID, err)
			}
			if err := tx.Delete(prev); err != nil {
				t.Fatalf("Delete(%d): %v", prev.ID, err)
			}
			if err := tx.Create(u[1]); err != nil {
				t.Fatalf("Create(%d) after its Delete: %v", u[1].ID, err)
			}
			checkJob(t, tx, u[1], true)
		}
	})
	check := func(s store.Store) {
		t.Helper()
		view(t, s, func(r store.ReadTx) {
			checkJob(t, r, toLarge, true)
			checkJob(t, r, toSmall, true)
			checkIndexes(t, r, toLarge, toSmall, mkJob(3, "q", job.StateReady))
		})
	}
	check(s)
	if h.Reopen != nil {
		check(h.Reopen(t, s))
	}
}
