package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

func testDedupe(t *testing.T, h Harness) {
	s := h.Open(t)
	long := strings.Repeat("k", 300)
	write(t, s, func(tx store.Txn) {
		for _, d := range []struct {
			q, key string
			id     job.ID
		}{{"q", "k1", 7}, {"q", "", 8}, {"other", "k2", 9}, {"q", long + "a", 10}, {"q", long + "b", 11}} {
			if err := tx.PutDedupe(d.q, d.key, d.id, time.Hour); err != nil {
				t.Fatalf("PutDedupe: %v", err)
			}
		}
		if err := tx.PutDedupe("q", "short", 12, time.Second); err != nil {
			t.Fatalf("PutDedupe: %v", err)
		}
	})
	tests := []struct {
		q, key string
		wantID job.ID
		wantOK bool
	}{
		{"q", "k1", 7, true},
		{"q", "", 8, true},
		{"other", "k2", 9, true},
		{"q", long + "a", 10, true},
		{"q", long + "b", 11, true},
		{"q", "short", 12, true},
		{"q", "k2", 0, false},     // another queue's key
		{"other", "k1", 0, false}, // another queue's key
		{"q", "k", 0, false},
		{"q", long, 0, false},
	}
	view(t, s, func(r store.ReadTx) {
		for _, tc := range tests {
			id, ok, err := r.Dedupe(tc.q, tc.key)
			if err != nil {
				t.Fatalf("Dedupe(%s, %.20q): %v", tc.q, tc.key, err)
			}
			if id != tc.wantID || ok != tc.wantOK {
				t.Errorf("Dedupe(%s, %.20q) = %d, %v; want %d, %v", tc.q, tc.key, id, ok, tc.wantID, tc.wantOK)
			}
		}
	})
	// The one-second key expires; the hour-long ones stay. TTLs may be kept
	// in whole seconds, so allow up to two more.
	deadline := time.Now().Add(3 * time.Second)
	for {
		var ok bool
		view(t, s, func(r store.ReadTx) {
			var err error
			if _, ok, err = r.Dedupe("q", "short"); err != nil {
				t.Fatal(err)
			}
		})
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Dedupe(q, short) with a 1s TTL is still present after 3s")
		}
		time.Sleep(100 * time.Millisecond) // waiting for the TTL, not for a goroutine
	}
	view(t, s, func(r store.ReadTx) {
		if id, ok, err := r.Dedupe("q", "k1"); err != nil || !ok || id != 7 {
			t.Errorf("Dedupe(q, k1) after the short TTL = %d, %v, %v; want 7, true", id, ok, err)
		}
	})
}

func testSeq(t *testing.T, h Harness) {
	s := h.Open(t)
	seq := func(r store.ReadTx) uint64 {
		t.Helper()
		n, err := r.Seq()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	view(t, s, func(r store.ReadTx) {
		if got := seq(r); got != 0 {
			t.Errorf("Seq of a new store = %d, want 0", got)
		}
	})
	tx := s.Begin()
	if err := tx.SetSeq(42); err != nil {
		t.Fatal(err)
	}
	if got := seq(tx); got != 42 {
		t.Errorf("Seq in the Txn after SetSeq(42) = %d, want 42", got)
	}
	view(t, s, func(r store.ReadTx) {
		if got := seq(r); got != 0 {
			t.Errorf("Seq before Commit = %d, want 0", got)
		}
	})
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	write(t, s, func(tx store.Txn) {
		if err := tx.SetSeq(math.MaxUint64 - 1); err != nil {
			t.Fatal(err)
		}
	})
	view(t, s, func(r store.ReadTx) {
		if got := seq(r); got != math.MaxUint64-1 {
			t.Errorf("Seq after Commit = %d, want %d", got, uint64(math.MaxUint64-1))
		}
	})
}

func testReadYourWrites(t *testing.T, h Harness) {
	s := h.Open(t)
	committed := mkJob(1, "q", job.StateReady)
	create(t, s, committed)

	tx := s.Begin()
	defer tx.Discard()
	ready := mkJob(2, "q", job.StateReady)
	delayed := mkJob(3, "q", job.StateDelayed, withExpiry(sec(500)))
	for _, j := range []*job.Job{ready, delayed} {
		if err := tx.Create(j); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Delete(committed); err != nil {
		t.Fatal(err)
	}
	checkJob(t, tx, ready, true)
	checkJob(t, tx, delayed, false)
	if _, err := tx.Job(1, false); !errors.Is(err, job.ErrNotFound) {
		t.Errorf("Job deleted in the Txn: err = %v, want ErrNotFound", err)
	}
	// Index reads inside a Txn see committed data only (store.Txn).
	checkTxnIndexes := func(want ...*job.Job) {
		t.Helper()
		got := read(t, tx, "q")
		m := model(want...)
		if d := snapshotDiff(got, m); d != "" {
			t.Errorf("indexes inside the Txn (got != want: committed data only):\n%s", d)
		}
	}
	checkTxnIndexes(committed)

	// Pending writes over pending writes.
	leased := ready.Clone()
	leased.State, leased.LeaseID, leased.LeaseExpires = job.StateLeased, "l", sec(60)
	if err := tx.Update(ready, leased); err != nil {
		t.Fatal(err)
	}
	checkTxnIndexes(committed)
	checkJob(t, tx, leased, true)

	// Nothing is visible outside before Commit.
	view(t, s, func(r store.ReadTx) {
		if _, err := r.Job(2, false); !errors.Is(err, job.ErrNotFound) {
			t.Errorf("View sees an uncommitted job: err = %v", err)
		}
		checkIndexes(t, r, committed)
	})
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	view(t, s, func(r store.ReadTx) {
		checkJob(t, r, leased, true)
		checkIndexes(t, r, leased, delayed)
	})
}

func testDiscard(t *testing.T, h Harness) {
	s := h.Open(t)
	kept := mkJob(1, "q", job.StateReady)
	create(t, s, kept)
	tx := s.Begin()
	if err := tx.Create(mkJob(2, "q", job.StateReady)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Delete(kept); err != nil {
		t.Fatal(err)
	}
	if err := tx.PutDedupe("q", "k", 2, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := tx.SetSeq(9); err != nil {
		t.Fatal(err)
	}
	tx.Discard()
	view(t, s, func(r store.ReadTx) {
		if _, err := r.Job(2, false); !errors.Is(err, job.ErrNotFound) {
			t.Errorf("Job created in a discarded Txn: err = %v, want ErrNotFound", err)
		}
		checkJob(t, r, kept, true)
		checkIndexes(t, r, kept)
		if _, ok, err := r.Dedupe("q", "k"); err != nil || ok {
			t.Errorf("Dedupe of a discarded Txn: ok = %v, err = %v; want absent", ok, err)
		}
		if seq, err := r.Seq(); err != nil || seq != 0 {
			t.Errorf("Seq after a discarded SetSeq = %d, %v; want 0", seq, err)
		}
	})
}

// testFits fills a transaction for as long as Fits says yes to one more
// enqueued job, then commits: Fits must say no at some point, and no write
// up to then may fail. An empty transaction must then fit a state change.
func testFits(t *testing.T, h Harness) {
	tests := []struct {
		name    string
		payload int
		dedupe  bool
	}{
		{"no payload", 0, false},
		{"job-sized", 256, true},
		{"value-log-sized payloads", 4 << 10, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := h.Open(t)
			payload := bytes.Repeat([]byte{'p'}, tc.payload)
			tx := s.Begin()
			defer tx.Discard()
			const limit = 1_000_000
			n := 0
			var last *job.Job
			for ; n < limit; n++ {
				key := ""
				if tc.dedupe {
					key = fmt.Sprintf("key-%d", n)
				}
				news := []job.New{{Queue: "q", Payload: payload, Key: key, ContentType: "text/plain"}}
				if !tx.Fits(store.Op{Enqueue: news}) {
					break
				}
				j := mkJob(job.ID(n+1), "q", job.StateReady, func(j *job.Job) { j.Payload = payload })
				if err := tx.Create(j); err != nil {
					t.Fatalf("Create #%d after Fits said yes: %v", n, err)
				}
				if tc.dedupe {
					if err := tx.PutDedupe("q", key, j.ID, time.Hour); err != nil {
						t.Fatalf("PutDedupe #%d after Fits said yes: %v", n, err)
					}
				}
				last = j
			}
			if n == limit {
				t.Fatalf("Fits still says yes after %d jobs", limit)
			}
			if n == 0 {
				t.Fatal("Fits says no to an empty transaction")
			}
			if err := tx.Commit(); err != nil {
				t.Fatalf("Commit of %d jobs that Fits allowed: %v", n, err)
			}
			t.Logf("Fits allowed %d jobs", n)
			view(t, s, func(r store.ReadTx) {
				c, err := r.Counts(func(string) bool { return true })
				if err != nil {
					t.Fatal(err)
				}
				if got := c["q"].Ready; got != int64(n) {
					t.Errorf("ready count after Commit = %d, want %d", got, n)
				}
				checkJob(t, r, last, true)
			})
			empty := s.Begin()
			defer empty.Discard()
			if !empty.Fits(store.Op{Change: last}) {
				t.Error("an empty transaction does not fit one state change")
			}
		})
	}
}

// testFitsEvict: an enqueue's evictions (Op.Delete) count in Fits. A
// transaction takes an evicting enqueue (one new job, one old deleted) for
// as long as Fits says yes, and no write up to then may fail; an enqueue
// that would delete a million jobs never fits.
func testFitsEvict(t *testing.T, h Harness) {
	s := h.Open(t)
	const limit = 1_000_000
	create(t, s, mkJob(1, "q", job.StateReady))
	tx := s.Begin()
	defer tx.Discard()
	old := readJob(t, tx, 1)
	news := []job.New{{Queue: "q", Payload: []byte("new"), ContentType: "text/plain"}}
	if many := slices.Repeat([]*job.Job{old}, limit); tx.Fits(store.Op{Enqueue: news, Delete: many}) {
		t.Fatalf("an enqueue that deletes %d jobs fits an empty transaction", limit)
	}
	n := 0
	for ; n < limit; n++ {
		victim := mkJob(job.ID(2*n+10), "q", job.StateReady)
		victim.Payload, victim.Size = nil, len(victim.Payload)
		if !tx.Fits(store.Op{Enqueue: news, Delete: []*job.Job{victim}}) {
			break
		}
		if err := tx.Delete(victim); err != nil {
			t.Fatalf("Delete #%d after Fits said yes: %v", n, err)
		}
		j := mkJob(job.ID(2*n+11), "q", job.StateReady, func(j *job.Job) { j.Payload = news[0].Payload })
		if err := tx.Create(j); err != nil {
			t.Fatalf("Create #%d after Fits said yes: %v", n, err)
		}
	}
	if n == 0 || n == limit {
		t.Fatalf("Fits allowed %d evicting enqueues, want some and fewer than %d", n, limit)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("Commit of %d evicting enqueues that Fits allowed: %v", n, err)
	}
}

func testReopen(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("the store has no durable backing (Harness.Reopen is nil): nothing survives a restart to check")
	}
	s := h.Open(t)
	jobs := []*job.Job{
		mkJob(1, "q", job.StateReady, withExpiry(sec(1000))),
		mkJob(2, "q", job.StateDelayed, withExpiry(sec(1000))),
		mkJob(3, "q", job.StateLeased),
		mkJob(4, "q", job.StateDead),
		mkJob(5, "other", job.StateReady, func(j *job.Job) {
			j.Headers = map[string]string{"h": "v"}
			j.Key = "k"
			j.Payload = bytes.Repeat([]byte("large payload "), 1<<13) // > 100 KiB
		}),
	}
	create(t, s, jobs...)
	write(t, s, func(tx store.Txn) {
		if err := tx.PutDedupe("other", "k", 5, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := tx.SetSeq(5); err != nil {
			t.Fatal(err)
		}
	})
	// A job that moved after it was created, and one that was deleted.
	moved := jobs[0].Clone()
	moved.State, moved.LeaseID, moved.LeaseExpires = job.StateLeased, "l", sec(70)
	write(t, s, func(tx store.Txn) {
		if err := tx.Update(jobs[0], moved); err != nil {
			t.Fatal(err)
		}
		if err := tx.Delete(jobs[3]); err != nil {
			t.Fatal(err)
		}
	})
	// Uncommitted writes must not come back.
	tx := s.Begin()
	if err := tx.Create(mkJob(6, "q", job.StateReady)); err != nil {
		t.Fatal(err)
	}
	tx.Discard()
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	want := []*job.Job{moved, jobs[1], jobs[2], jobs[4]}

	for restart := 1; restart <= 2; restart++ {
		s = h.Reopen(t, s)
		view(t, s, func(r store.ReadTx) {
			for _, j := range want {
				checkJob(t, r, j, true)
			}
			for _, id := range []job.ID{4, 6} {
				if _, err := r.Job(id, false); !errors.Is(err, job.ErrNotFound) {
					t.Errorf("restart %d: Job(%d): err = %v, want ErrNotFound", restart, id, err)
				}
			}
			checkIndexes(t, r, want...)
			if id, ok, err := r.Dedupe("other", "k"); err != nil || !ok || id != 5 {
				t.Errorf("restart %d: Dedupe = %d, %v, %v; want 5, true", restart, id, ok, err)
			}
			if seq, err := r.Seq(); err != nil || seq != 5 {
				t.Errorf("restart %d: Seq = %d, %v; want 5", restart, seq, err)
			}
		})
	}
	// The reopened store takes writes.
	j := mkJob(7, "q", job.StateReady)
	create(t, s, j)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	view(t, s, func(r store.ReadTx) { checkIndexes(t, r, append(want, j)...) })
}
