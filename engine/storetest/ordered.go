package storetest

import (
	"testing"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// testOrderedRetryWaiting: a delayed job without a group that keeps its
// ReadySeq (a retry waiting with its place in an ordered queue) has a
// delayed entry that carries the ReadySeq, across a restart too; one
// without (a delayed enqueue) carries none.
func testOrderedRetryWaiting(t *testing.T, h Harness) {
	s := h.Open(t)
	waiting := mkJob(1, "up", job.StateDelayed, func(j *job.Job) { j.ReadySeq = 7 })
	scheduled := mkJob(2, "up", job.StateDelayed)
	create(t, s, waiting, scheduled)
	check := func(s store.Store) {
		view(t, s, func(r store.ReadTx) {
			refs, _, err := r.Due(store.IndexDelayed, store.Ref{}, farFuture, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(refs) != 2 || refs[0].ID != 1 || refs[0].Seq != 7 || refs[0].Group != "" || refs[0].Queue != "up" ||
				refs[1].ID != 2 || refs[1].Seq != 0 || refs[1].Group != "" || refs[1].Queue != "up" {
				t.Errorf("Due(delayed) = %+v, want job 1 of up with seq 7, job 2 with none, neither with a group", refs)
			}
			c, _ := r.Counts(func(string) bool { return true })
			if c["up"].Delayed != 2 || c["up"].Ready != 0 {
				t.Errorf("Counts(up) = %v, want 2 delayed", c["up"])
			}
		})
		if got := readJobView(t, s, 1); got.ReadySeq != 7 {
			t.Errorf("job 1 ReadySeq %d, want 7", got.ReadySeq)
		}
	}
	check(s)
	if h.Reopen != nil {
		check(h.Reopen(t, s))
	}
}
