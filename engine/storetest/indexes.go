package storetest

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

func testExpiryIndex(t *testing.T, h Harness) {
	s := h.Open(t)
	jobs := []*job.Job{
		mkJob(1, "q", job.StateReady, withExpiry(sec(300))),
		mkJob(2, "q", job.StateDelayed, withExpiry(sec(200))),
		mkJob(3, "q", job.StateLeased, withExpiry(sec(100))),
		mkJob(4, "q", job.StateDead, withExpiry(sec(100))),
		mkJob(5, "other", job.StateReady),
		mkJob(6, "other", job.StateDelayed),
		mkJob(7, "other", job.StateReady, withExpiry(sec(200))),
	}
	create(t, s, jobs...)
	view(t, s, func(r store.ReadTx) {
		checkIndexes(t, r, jobs...)
		refs, _, err := r.Due(store.IndexExpiry, store.Ref{}, farFuture, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []job.ID
		for _, ref := range refs {
			got = append(got, ref.ID)
		}
		// By ExpiresAt, then id; leased and dead jobs have no expiry entry.
		if want := []job.ID{2, 7, 1}; !slices.Equal(got, want) {
			t.Errorf("expiry index ids = %v, want %v", got, want)
		}
	})
}

func testFIFOPrefixQueues(t *testing.T, h Harness) {
	s := h.Open(t)
	// Queue "a" is a byte prefix of "ab": their index ranges must not mix.
	var jobs []*job.Job
	for i, q := range []string{"ab", "a", "ab", "a", "a", "ab", "a.b", "a-"} {
		id := job.ID(100 - i) // ids run against ReadySeq: order comes from ReadySeq
		jobs = append(jobs, mkJob(id, q, job.StateReady, func(j *job.Job) { j.ReadySeq = uint64(10 + i) }))
	}
	jobs = append(jobs, mkJob(1, "a", job.StateDead), mkJob(2, "ab", job.StateDead), mkJob(3, "a", job.StateDead))
	// Create in an order unlike ReadySeq's.
	create(t, s, jobs[5], jobs[0], jobs[3], jobs[1], jobs[4], jobs[2], jobs[6], jobs[7], jobs[8], jobs[9], jobs[10])
	view(t, s, func(r store.ReadTx) {
		checkIndexes(t, r, jobs...)
		for q, want := range map[string][]uint64{"a": {11, 13, 14}, "ab": {10, 12, 15}, "a.b": {16}, "a-": {17}} {
			refs, err := r.Ready(q, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, ref := range refs {
				got = append(got, ref.Seq)
			}
			if !slices.Equal(got, want) {
				t.Errorf("Ready(%q) seqs = %v, want %v", q, got, want)
			}
		}
		for q, want := range map[string][]job.ID{"a": {1, 3}, "ab": {2}} {
			if got, err := r.Dead(q, 0, 100); err != nil || !slices.Equal(got, want) {
				t.Errorf("Dead(%q) = %v, %v; want %v", q, got, err, want)
			}
		}
	})
}

func testReadyAfter(t *testing.T, h Harness) {
	s := h.Open(t)
	var jobs []*job.Job
	for i, seq := range []uint64{10, 20, 30, 40} {
		jobs = append(jobs, mkJob(job.ID(i+1), "q", job.StateReady, func(j *job.Job) { j.ReadySeq = seq }))
	}
	create(t, s, jobs...)
	tests := []struct {
		after uint64
		max   int
		want  []uint64
	}{
		{0, 100, []uint64{10, 20, 30, 40}},
		{0, 2, []uint64{10, 20}},
		{20, 100, []uint64{30, 40}},
		{15, 100, []uint64{20, 30, 40}},
		{19, 1, []uint64{20}},
		{40, 100, nil},
		{math.MaxUint64, 100, nil},
	}
	view(t, s, func(r store.ReadTx) {
		for _, tc := range tests {
			refs, err := r.Ready("q", tc.after, tc.max)
			if err != nil {
				t.Fatalf("Ready(q, %d, %d): %v", tc.after, tc.max, err)
			}
			var got []uint64
			for _, ref := range refs {
				got = append(got, ref.Seq)
				want := jobs[ref.Seq/10-1]
				if ref.ID != want.ID || ref.Queue != "q" || !ref.At.Equal(want.RunAt) {
					t.Errorf("Ready ref %+v, want id %d queue q at %v", ref, want.ID, want.RunAt)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Ready(q, after %d, max %d) = %v, want %v", tc.after, tc.max, got, tc.want)
			}
		}
	})
}

func testDue(t *testing.T, h Harness) {
	for _, kind := range []store.TimedIndex{store.IndexDelayed, store.IndexExpiry} {
		t.Run(map[store.TimedIndex]string{store.IndexDelayed: "delayed", store.IndexExpiry: "expiry"}[kind], func(t *testing.T) {
			s := h.Open(t)
			// (time, id): (1s, 3) (1s, 5) (2s, 1) (5s, 2), in two queues.
			at := map[job.ID]int{5: 1, 3: 1, 1: 2, 2: 5}
			var jobs []*job.Job
			for _, id := range []job.ID{5, 3, 1, 2} {
				q := "q"
				if id%2 == 0 {
					q = "other"
				}
				when := sec(at[id])
				if kind == store.IndexDelayed {
					jobs = append(jobs, mkJob(id, q, job.StateDelayed, func(j *job.Job) { j.RunAt = when }))
				} else {
					jobs = append(jobs, mkJob(id, q, job.StateReady, withExpiry(when)))
				}
			}
			create(t, s, jobs...)
			ref := func(id job.ID) store.Ref {
				q := "q"
				if id%2 == 0 {
					q = "other"
				}
				return store.Ref{ID: id, Queue: q, At: sec(at[id])}
			}
			tests := []struct {
				name     string
				from     store.Ref
				until    time.Time
				max      int
				want     []job.ID
				wantNext time.Time
			}{
				{"all", store.Ref{}, farFuture, 10, []job.ID{3, 5, 1, 2}, time.Time{}},
				{"until is inclusive", store.Ref{}, sec(2), 10, []job.ID{3, 5, 1}, sec(5)},
				{"nothing due", store.Ref{}, sec(0), 10, nil, sec(1)},
				{"max", store.Ref{}, farFuture, 2, []job.ID{3, 5}, sec(2)},
				{"max within the same time", store.Ref{}, farFuture, 1, []job.ID{3}, sec(1)},
				{"from is exclusive", ref(3), farFuture, 10, []job.ID{5, 1, 2}, time.Time{}},
				{"from at the same time", ref(5), farFuture, 10, []job.ID{1, 2}, time.Time{}},
				{"from and until", ref(5), sec(4), 10, []job.ID{1}, sec(5)},
				{"from the last", ref(2), farFuture, 10, nil, time.Time{}},
				{"from an absent entry", store.Ref{ID: 4, At: sec(1)}, farFuture, 10, []job.ID{5, 1, 2}, time.Time{}},
			}
			view(t, s, func(r store.ReadTx) {
				for _, tc := range tests {
					refs, next, err := r.Due(kind, tc.from, tc.until, tc.max)
					if err != nil {
						t.Fatalf("%s: Due: %v", tc.name, err)
					}
					var got []job.ID
					for _, rf := range refs {
						got = append(got, rf.ID)
						if w := ref(rf.ID); rf.Queue != w.Queue || !rf.At.Equal(w.At) {
							t.Errorf("%s: ref %+v, want queue %s at %v", tc.name, rf, w.Queue, w.At)
						}
					}
					if !slices.Equal(got, tc.want) {
						t.Errorf("%s: ids = %v, want %v", tc.name, got, tc.want)
					}
					if !next.Equal(tc.wantNext) {
						t.Errorf("%s: next = %v, want %v", tc.name, next, tc.wantNext)
					}
				}
			})
		})
	}
}

func testDeadPagination(t *testing.T, h Harness) {
	s := h.Open(t)
	var jobs []*job.Job
	for _, id := range []job.ID{9, 3, 5, 1, 7} {
		jobs = append(jobs, mkJob(id, "q", job.StateDead))
	}
	jobs = append(jobs, mkJob(4, "other", job.StateDead))
	create(t, s, jobs...)
	view(t, s, func(r store.ReadTx) {
		var got []job.ID
		var after job.ID
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatalf("Dead pagination does not end: %v", got)
			}
			ids, err := r.Dead("q", after, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) > 2 {
				t.Fatalf("Dead(q, %d, 2) = %v: more than max", after, ids)
			}
			if len(ids) == 0 {
				break
			}
			got = append(got, ids...)
			after = ids[len(ids)-1]
		}
		if want := []job.ID{1, 3, 5, 7, 9}; !slices.Equal(got, want) {
			t.Errorf("Dead pages = %v, want %v", got, want)
		}
		if ids, err := r.Dead("q", 4, 100); err != nil || !slices.Equal(ids, []job.ID{5, 7, 9}) {
			t.Errorf("Dead(q, after 4) = %v, %v; want [5 7 9]", ids, err)
		}
	})
}

func testLeasedPagination(t *testing.T, h Harness) {
	s := h.Open(t)
	var jobs []*job.Job
	for _, id := range []job.ID{8, 2, 6, 4} {
		q := "q"
		if id > 5 {
			q = "other"
		}
		jobs = append(jobs, mkJob(id, q, job.StateLeased))
	}
	create(t, s, jobs...)
	view(t, s, func(r store.ReadTx) {
		checkIndexes(t, r, jobs...)
		refs, err := r.Leased(2, 2)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			timedRef(store.Ref{ID: 4, Queue: "q", At: sec(64)}),
			timedRef(store.Ref{ID: 6, Queue: "other", At: sec(66)}),
		}
		var got []string
		for _, ref := range refs {
			got = append(got, timedRef(ref))
		}
		if !slices.Equal(got, want) {
			t.Errorf("Leased(2, 2) = %v, want %v", got, want)
		}
	})
}
