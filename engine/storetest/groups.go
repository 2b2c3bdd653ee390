package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

func inGroup(g string) func(*job.Job) { return func(j *job.Job) { j.Group = g } }

// groupJobs are ready jobs of queue q in groups "a", "ab" (a prefix of
// neither's keys) and "b", with ReadySeq out of ID order within "a", one
// job without a group, and one grouped job of queue "other".
func groupJobs() []*job.Job {
	return []*job.Job{
		mkJob(1, "q", job.StateReady, inGroup("a"), func(j *job.Job) { j.ReadySeq = 30 }),
		mkJob(2, "q", job.StateReady, inGroup("a"), func(j *job.Job) { j.ReadySeq = 10 }),
		mkJob(3, "q", job.StateReady, inGroup("ab")),
		mkJob(4, "q", job.StateReady, inGroup("b")),
		mkJob(5, "q", job.StateReady),
		mkJob(6, "other", job.StateReady, inGroup("a")),
	}
}

func refIDs(refs []store.Ref) []job.ID {
	var ids []job.ID
	for _, r := range refs {
		ids = append(ids, r.ID)
	}
	return ids
}

// testGroupReady: ready jobs with a group are listed by GroupReady, in
// (Group, ReadySeq) order from any position, and not by Ready; Counts
// counts them as ready; the group is stored with the job.
func testGroupReady(t *testing.T, h Harness) {
	s := h.Open(t)
	jobs := groupJobs()
	create(t, s, jobs...)
	view(t, s, func(r store.ReadTx) {
		checkIndexes(t, r, jobs...)
		for _, j := range jobs {
			checkJob(t, r, j, true)
		}
		for _, tc := range []struct {
			from store.Ref
			max  int
			want []job.ID
		}{
			{store.Ref{}, 10, []job.ID{2, 1, 3, 4}},
			{store.Ref{}, 2, []job.ID{2, 1}},
			{store.Ref{Group: "a"}, 10, []job.ID{2, 1, 3, 4}},
			{store.Ref{Group: "a", Seq: 10}, 10, []job.ID{1, 3, 4}},
			{store.Ref{Group: "a", Seq: 30}, 10, []job.ID{3, 4}},
			{store.Ref{Group: "ab", Seq: 3}, 10, []job.ID{4}},
			{store.Ref{Group: "b", Seq: 4}, 10, nil},
			{store.Ref{Group: "c"}, 10, nil},
		} {
			refs, err := r.GroupReady("q", tc.from, tc.max)
			if err != nil {
				t.Fatal(err)
			}
			if got := refIDs(refs); !slices.Equal(got, tc.want) {
				t.Errorf("GroupReady(q, %s/%d, %d) = %v, want %v", tc.from.Group, tc.from.Seq, tc.max, got, tc.want)
			}
		}
		refs, err := r.GroupReady("q", store.Ref{Group: "a"}, 1)
		if err != nil || len(refs) != 1 || refs[0].Group != "a" || refs[0].Seq != 10 || refs[0].Queue != "q" || !refs[0].At.Equal(t0) {
			t.Errorf("GroupReady ref = %+v, %v; want job 2 of q, group a, seq 10, at t0", refs, err)
		}
		c, err := r.Counts(func(string) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		if c["q"].Ready != 5 || c["other"].Ready != 1 {
			t.Errorf("Counts = %v, want 5 ready in q and 1 in other", c)
		}
	})
}

// testGroupLeaseRetry: a grouped job leased leaves the group-ready index
// (in its own Txn too), and back to ready it is listed again; delayed, its
// entry carries its Group and ReadySeq.
func testGroupLeaseRetry(t *testing.T, h Harness) {
	s := h.Open(t)
	jobs := groupJobs()
	create(t, s, jobs...)
	leased := leaseOf(jobs[1], "lease-2", sec(70))
	var waiting *job.Job
	write(t, s, func(tx store.Txn) {
		update(t, tx, jobs[1], leased)
		checkBoth(t, tx, withPayload(leased, jobs[1]))
	})
	view(t, s, func(r store.ReadTx) {
		checkIndexes(t, r, leased, jobs[0], jobs[2], jobs[3], jobs[4], jobs[5])
	})
	write(t, s, func(tx store.Txn) {
		prev := readJob(t, tx, 2)
		waiting = prev.Clone()
		// A retry waiting: delayed, keeping its ReadySeq (its place).
		waiting.State, waiting.RunAt, waiting.LeaseID, waiting.LeaseExpires = job.StateDelayed, sec(90), "", time.Time{}
		update(t, tx, prev, waiting)
	})
	view(t, s, func(r store.ReadTx) {
		checkIndexes(t, r, withPayload(waiting, jobs[1]), jobs[0], jobs[2], jobs[3], jobs[4], jobs[5])
		refs, _, err := r.Due(store.IndexDelayed, store.Ref{}, farFuture, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(refs) != 1 || refs[0].ID != 2 || refs[0].Group != "a" || refs[0].Seq != 10 || refs[0].Queue != "q" {
			t.Errorf("Due(delayed) = %+v, want job 2 of q with group a and seq 10", refs)
		}
		c, _ := r.Counts(func(string) bool { return true })
		if c["q"].Ready != 4 || c["q"].Delayed != 1 || c["q"].Leased != 0 {
			t.Errorf("Counts(q) = %v, want 4 ready, 1 delayed", c["q"])
		}
	})
	back := waiting.Clone()
	back.State = job.StateReady
	write(t, s, func(tx store.Txn) { update(t, tx, waiting, back) })
	view(t, s, func(r store.ReadTx) {
		checkIndexes(t, r, withPayload(back, jobs[1]), jobs[0], jobs[2], jobs[3], jobs[4], jobs[5])
		refs, err := r.GroupReady("q", store.Ref{Group: "a"}, 10)
		if err != nil || !slices.Equal(refIDs(refs), []job.ID{2, 1, 3, 4}) {
			t.Errorf("GroupReady after the retry = %v, %v; want job 2 back at its place, first", refIDs(refs), err)
		}
	})
}

// testGroupReopen: groups and their order survive a restart.
func testGroupReopen(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("the store has no durable backing (Harness.Reopen is nil): nothing survives a restart to check")
	}
	s := h.Open(t)
	jobs := groupJobs()
	create(t, s, jobs...)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	s = h.Reopen(t, s)
	view(t, s, func(r store.ReadTx) {
		checkIndexes(t, r, jobs...)
		for _, j := range jobs {
			checkJob(t, r, j, true)
		}
	})
}
