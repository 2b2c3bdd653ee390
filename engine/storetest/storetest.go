package storetest

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// Harness opens the store under test.
type Harness struct {
	// Open returns a new, empty store and arranges (t.Cleanup) to close it.
	Open func(t *testing.T) store.Store
	// Reopen closes s and opens the same data again, as a restart would, and
	// arranges to close the new store. Nil for a store without durable
	// backing (in memory): the durability subtests are then skipped.
	Reopen func(t *testing.T, s store.Store) store.Store
}

// Run runs every conformance subtest against h.
func Run(t *testing.T, h Harness) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"CreateRead", testCreateRead},
		{"NotFound", testNotFound},
		{"Transitions", testTransitions},
		{"DeleteFromEachState", testDelete},
		{"SizeOnRead", testSizeOnRead},
		{"UpdateKeepsPayload", testUpdateKeepsPayload},
		{"UpdateCarriesPayload", testUpdateCarriesPayload},
		{"DeleteBySize", testDeleteBySize},
		{"ExpiryIndex", testExpiryIndex},
		{"FIFOAcrossPrefixQueues", testFIFOPrefixQueues},
		{"ReadyAfter", testReadyAfter},
		{"Due", testDue},
		{"DeadPagination", testDeadPagination},
		{"LeasedPagination", testLeasedPagination},
		{"Dedupe", testDedupe},
		{"Seq", testSeq},
		{"ReadYourWrites", testReadYourWrites},
		{"Discard", testDiscard},
		{"Fits", testFits},
		{"Reopen", testReopen},
		{"LeaseReadBack", testLeaseReadBack},
		{"LeaseExtend", testLeaseExtend},
		{"LeaseThenNack", testLeaseThenNack},
		{"LeaseThenDelete", testLeaseThenDelete},
		{"LeaseReopen", testLeaseReopen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// t0 is the suite's epoch: every time is an offset from it.
var t0 = time.Unix(1_700_000_000, 0)

// farFuture is an "until" after every time the suite writes.
var farFuture = t0.Add(100 * 24 * time.Hour)

func sec(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

// mkJob builds a job in state st with the fields its index needs, then
// applies mods.
func mkJob(id job.ID, queue string, st job.State, mods ...func(*job.Job)) *job.Job {
	j := &job.Job{
		ID:          id,
		Queue:       queue,
		State:       st,
		MaxAttempts: 5,
		CreatedAt:   t0,
		RunAt:       t0,
		TTR:         time.Minute,
		ContentType: "text/plain",
		Payload:     fmt.Appendf(nil, "payload of %d", id),
	}
	switch st {
	case job.StateReady:
		j.ReadySeq = uint64(id)
	case job.StateDelayed:
		j.RunAt = sec(int(id))
	case job.StateLeased:
		j.Attempt = 1
		j.LeaseID = fmt.Sprintf("lease-%d", id)
		j.LeaseExpires = sec(60 + int(id))
	case job.StateDead:
		j.Attempt = 5
		j.LastError = "boom"
	}
	for _, m := range mods {
		m(j)
	}
	return j
}

func withExpiry(at time.Time) func(*job.Job) { return func(j *job.Job) { j.ExpiresAt = at } }

// write runs fn in a transaction and commits it.
func write(t *testing.T, s store.Store, fn func(tx store.Txn)) {
	t.Helper()
	tx := s.Begin()
	fn(tx)
	if err := tx.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func create(t *testing.T, s store.Store, jobs ...*job.Job) {
	t.Helper()
	write(t, s, func(tx store.Txn) {
		for _, j := range jobs {
			if err := tx.Create(j); err != nil {
				t.Fatalf("Create(%d): %v", j.ID, err)
			}
		}
	})
}

func view(t *testing.T, s store.Store, fn func(r store.ReadTx)) {
	t.Helper()
	if err := s.View(func(r store.ReadTx) error { fn(r); return nil }); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// checkJob reads id and compares it with want, field by field.
func checkJob(t *testing.T, r store.ReadTx, want *job.Job, payload bool) {
	t.Helper()
	got, err := r.Job(want.ID, payload)
	if err != nil {
		t.Fatalf("Job(%d, %v): %v", want.ID, payload, err)
	}
	if d := jobDiff(got, want, payload); d != "" {
		t.Errorf("Job(%d, %v) differs (got != want):\n%s", want.ID, payload, d)
	}
}

// jobDiff lists the fields of got that differ from want. Times compare
// with Equal, nil and empty headers are equal, and so are nil and empty
// payloads (store.Store does not say which an empty payload reads back
// as); with payload false, got must have no payload. Size must be the
// payload's length either way.
func jobDiff(got, want *job.Job, payload bool) string {
	var b strings.Builder
	diff := func(field string, g, w any) {
		if !reflect.DeepEqual(g, w) {
			fmt.Fprintf(&b, "  %s: got %v, want %v\n", field, g, w)
		}
	}
	tm := func(field string, g, w time.Time) {
		if !g.Equal(w) {
			fmt.Fprintf(&b, "  %s: got %v, want %v\n", field, g, w)
		}
	}
	diff("ID", got.ID, want.ID)
	diff("Queue", got.Queue, want.Queue)
	diff("State", got.State, want.State)
	diff("Attempt", got.Attempt, want.Attempt)
	diff("MaxAttempts", got.MaxAttempts, want.MaxAttempts)
	tm("CreatedAt", got.CreatedAt, want.CreatedAt)
	tm("RunAt", got.RunAt, want.RunAt)
	tm("ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	diff("TTR", got.TTR, want.TTR)
	diff("Key", got.Key, want.Key)
	if len(got.Headers) != 0 || len(want.Headers) != 0 {
		diff("Headers", got.Headers, want.Headers)
	}
	diff("ContentType", got.ContentType, want.ContentType)
	diff("LastError", got.LastError, want.LastError)
	diff("ReadySeq", got.ReadySeq, want.ReadySeq)
	diff("LeaseID", got.LeaseID, want.LeaseID)
	tm("LeaseExpires", got.LeaseExpires, want.LeaseExpires)
	diff("Size", got.Size, len(want.Payload))
	switch {
	case !payload && got.Payload != nil:
		fmt.Fprintf(&b, "  Payload: got %d bytes, want nil (read without payload)\n", len(got.Payload))
	case payload && !bytes.Equal(got.Payload, want.Payload):
		fmt.Fprintf(&b, "  Payload: got %q, want %q\n", trunc(got.Payload), trunc(want.Payload))
	}
	return b.String()
}

func trunc(p []byte) []byte {
	if len(p) > 40 {
		return p[:40]
	}
	return p
}

// snapshot is everything the indexes answer, in a comparable form.
type snapshot struct {
	Ready   map[string][]string // queue → refs
	Delayed []string
	Expiry  []string
	Leased  []string
	Dead    map[string][]job.ID
	Counts  map[string]store.Counts
}

func nanos(at time.Time) int64 {
	if at.IsZero() {
		return 0
	}
	return at.UnixNano()
}

func readyRef(r store.Ref) string {
	return fmt.Sprintf("%d/%s/seq=%d/at=%d", r.ID, r.Queue, r.Seq, nanos(r.At))
}

// timedRef formats a delayed, expiry or leased ref; Seq is not part of them.
func timedRef(r store.Ref) string { return fmt.Sprintf("%d/%s/at=%d", r.ID, r.Queue, nanos(r.At)) }

// read takes the snapshot of a store; queues are those to list.
func read(t *testing.T, r store.ReadTx, queues ...string) snapshot {
	t.Helper()
	s := snapshot{Ready: map[string][]string{}, Dead: map[string][]job.ID{}}
	for _, q := range queues {
		refs, err := r.Ready(q, 0, 1000)
		if err != nil {
			t.Fatalf("Ready(%s): %v", q, err)
		}
		for _, ref := range refs {
			s.Ready[q] = append(s.Ready[q], readyRef(ref))
		}
		ids, err := r.Dead(q, 0, 1000)
		if err != nil {
			t.Fatalf("Dead(%s): %v", q, err)
		}
		if len(ids) > 0 {
			s.Dead[q] = ids
		}
	}
	for _, kind := range []store.TimedIndex{store.IndexDelayed, store.IndexExpiry} {
		refs, next, err := r.Due(kind, store.Ref{}, farFuture, 1000)
		if err != nil {
			t.Fatalf("Due(%d): %v", kind, err)
		}
		if !next.IsZero() {
			t.Errorf("Due(%d, until far future): next = %v, want zero", kind, next)
		}
		for _, ref := range refs {
			if kind == store.IndexDelayed {
				s.Delayed = append(s.Delayed, timedRef(ref))
			} else {
				s.Expiry = append(s.Expiry, timedRef(ref))
			}
		}
	}
	refs, err := r.Leased(0, 1000)
	if err != nil {
		t.Fatalf("Leased: %v", err)
	}
	for _, ref := range refs {
		s.Leased = append(s.Leased, timedRef(ref))
	}
	if s.Counts, err = r.Counts(); err != nil {
		t.Fatalf("Counts: %v", err)
	}
	return s
}

// model is what the index rules of store.Store say the snapshot of jobs is.
func model(jobs ...*job.Job) snapshot {
	s := snapshot{Ready: map[string][]string{}, Dead: map[string][]job.ID{}, Counts: map[string]store.Counts{}}
	sorted := slices.Clone(jobs)
	slices.SortFunc(sorted, func(a, b *job.Job) int { return cmp.Compare(a.ID, b.ID) })
	var ready, delayed, expiry []*job.Job
	for _, j := range sorted {
		c := s.Counts[j.Queue]
		switch j.State {
		case job.StateReady:
			ready = append(ready, j)
			c.Ready++
		case job.StateDelayed:
			delayed = append(delayed, j)
			c.Delayed++
		case job.StateLeased:
			s.Leased = append(s.Leased, timedRef(store.Ref{ID: j.ID, Queue: j.Queue, At: j.LeaseExpires}))
			c.Leased++
		case job.StateDead:
			s.Dead[j.Queue] = append(s.Dead[j.Queue], j.ID)
			c.Dead++
		}
		s.Counts[j.Queue] = c
		if (j.State == job.StateReady || j.State == job.StateDelayed) && !j.ExpiresAt.IsZero() {
			expiry = append(expiry, j)
		}
	}
	slices.SortStableFunc(ready, func(a, b *job.Job) int { return cmp.Compare(a.ReadySeq, b.ReadySeq) })
	for _, j := range ready {
		s.Ready[j.Queue] = append(s.Ready[j.Queue], readyRef(store.Ref{ID: j.ID, Queue: j.Queue, Seq: j.ReadySeq, At: j.RunAt}))
	}
	byTime := func(at func(*job.Job) time.Time) func(a, b *job.Job) int {
		return func(a, b *job.Job) int {
			return cmp.Or(cmp.Compare(nanos(at(a)), nanos(at(b))), cmp.Compare(a.ID, b.ID))
		}
	}
	slices.SortFunc(delayed, byTime(func(j *job.Job) time.Time { return j.RunAt }))
	for _, j := range delayed {
		s.Delayed = append(s.Delayed, timedRef(store.Ref{ID: j.ID, Queue: j.Queue, At: j.RunAt}))
	}
	slices.SortFunc(expiry, byTime(func(j *job.Job) time.Time { return j.ExpiresAt }))
	for _, j := range expiry {
		s.Expiry = append(s.Expiry, timedRef(store.Ref{ID: j.ID, Queue: j.Queue, At: j.ExpiresAt}))
	}
	return s
}

// queuesOf lists the queues of jobs, plus extra.
func queuesOf(jobs []*job.Job, extra ...string) []string {
	qs := slices.Clone(extra)
	for _, j := range jobs {
		qs = append(qs, j.Queue)
	}
	slices.Sort(qs)
	return slices.Compact(qs)
}

// checkIndexes compares the store's indexes with the model of jobs.
func checkIndexes(t *testing.T, r store.ReadTx, jobs ...*job.Job) {
	t.Helper()
	got := read(t, r, queuesOf(jobs, "q", "other")...)
	want := model(jobs...)
	if d := snapshotDiff(got, want); d != "" {
		t.Errorf("indexes differ from the index rules (got != want):\n%s", d)
	}
}

func snapshotDiff(got, want snapshot) string {
	var b strings.Builder
	list := func(name string, g, w []string) {
		if !slices.Equal(g, w) {
			fmt.Fprintf(&b, "  %s:\n    got  %v\n    want %v\n", name, g, w)
		}
	}
	for _, q := range slices.Sorted(maps.Keys(mergeKeys(got.Ready, want.Ready))) {
		list("Ready("+q+")", got.Ready[q], want.Ready[q])
	}
	list("Due(delayed)", got.Delayed, want.Delayed)
	list("Due(expiry)", got.Expiry, want.Expiry)
	list("Leased", got.Leased, want.Leased)
	for _, q := range slices.Sorted(maps.Keys(mergeKeys(got.Dead, want.Dead))) {
		if !slices.Equal(got.Dead[q], want.Dead[q]) {
			fmt.Fprintf(&b, "  Dead(%s): got %v, want %v\n", q, got.Dead[q], want.Dead[q])
		}
	}
	if !maps.Equal(got.Counts, want.Counts) {
		fmt.Fprintf(&b, "  Counts:\n    got  %v\n    want %v\n", got.Counts, want.Counts)
	}
	return b.String()
}

func mergeKeys[V any](a, b map[string]V) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

func testCreateRead(t *testing.T, h Harness) {
	tests := []struct {
		name string
		job  *job.Job
	}{
		{"ready", mkJob(1, "q", job.StateReady)},
		{"empty payload", mkJob(2, "q", job.StateReady, func(j *job.Job) { j.Payload = nil })},
		{"every field", mkJob(3, "q", job.StateLeased, func(j *job.Job) {
			j.Key = "order-17"
			j.Headers = map[string]string{"mqtt-topic": "sensors/1/reading", "x": ""}
			j.ExpiresAt = sec(3600)
			j.LastError = "exit status 1: \x00binary\xff"
			j.ReadySeq = 99
			j.TTR = 90 * time.Second
			j.Payload = bytes.Repeat([]byte{0, 1, 2, 0xff}, 1000)
		})},
		{"delayed", mkJob(4, "q", job.StateDelayed)},
		{"dead", mkJob(5, "q", job.StateDead)},
		{"large id and queue", mkJob(math.MaxUint64, strings.Repeat("z", 64), job.StateReady)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := h.Open(t)
			create(t, s, tc.job)
			view(t, s, func(r store.ReadTx) {
				checkJob(t, r, tc.job, true)
				checkJob(t, r, tc.job, false)
			})
		})
	}
}

func testNotFound(t *testing.T, h Harness) {
	s := h.Open(t)
	j := mkJob(7, "q", job.StateReady)
	view(t, s, func(r store.ReadTx) {
		for _, payload := range []bool{false, true} {
			if _, err := r.Job(7, payload); !errors.Is(err, job.ErrNotFound) {
				t.Errorf("Job(7, %v) in an empty store: err = %v, want ErrNotFound", payload, err)
			}
		}
	})
	create(t, s, j)
	write(t, s, func(tx store.Txn) {
		if err := tx.Delete(j); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	})
	view(t, s, func(r store.ReadTx) {
		if _, err := r.Job(7, true); !errors.Is(err, job.ErrNotFound) {
			t.Errorf("Job(7) after Delete: err = %v, want ErrNotFound", err)
		}
		checkIndexes(t, r)
	})
}

func testTransitions(t *testing.T, h Harness) {
	tests := []struct {
		name string
		prev *job.Job
		next func(j *job.Job) // mutates a clone of prev
	}{
		{"ready to leased", mkJob(1, "q", job.StateReady), func(j *job.Job) {
			j.State, j.Attempt, j.LeaseID, j.LeaseExpires = job.StateLeased, 1, "l1", sec(60)
		}},
		{"leased to ready with a new ReadySeq", mkJob(1, "q", job.StateLeased), func(j *job.Job) {
			j.State, j.ReadySeq, j.RunAt, j.LeaseID, j.LeaseExpires = job.StateReady, 50, sec(70), "", time.Time{}
		}},
		{"ready to delayed", mkJob(1, "q", job.StateReady), func(j *job.Job) {
			j.State, j.RunAt = job.StateDelayed, sec(30)
		}},
		{"delayed to ready", mkJob(1, "q", job.StateDelayed), func(j *job.Job) {
			j.State, j.ReadySeq = job.StateReady, 77
		}},
		{"leased to dead", mkJob(1, "q", job.StateLeased), func(j *job.Job) {
			j.State, j.LastError, j.LeaseID, j.LeaseExpires = job.StateDead, "exit 65", "", time.Time{}
		}},
		{"leased to delayed", mkJob(1, "q", job.StateLeased), func(j *job.Job) {
			j.State, j.RunAt, j.LeaseID, j.LeaseExpires = job.StateDelayed, sec(90), "", time.Time{}
		}},
		{"dead to ready", mkJob(1, "q", job.StateDead), func(j *job.Job) {
			j.State, j.Attempt, j.ReadySeq = job.StateReady, 0, 88
		}},
		{"leased extended", mkJob(1, "q", job.StateLeased), func(j *job.Job) {
			j.LeaseExpires = sec(500)
		}},
		{"ready record only", mkJob(1, "q", job.StateReady), func(j *job.Job) {
			j.LastError, j.Headers = "noted", map[string]string{"a": "b"}
		}},
		{"ready moved to another queue", mkJob(1, "q", job.StateReady), func(j *job.Job) {
			j.Queue, j.ReadySeq = "other", 90
		}},
		{"ready with expiry to leased", mkJob(1, "q", job.StateReady, withExpiry(sec(900))), func(j *job.Job) {
			j.State, j.LeaseID, j.LeaseExpires = job.StateLeased, "l", sec(60)
		}},
		{"delayed with expiry to ready", mkJob(1, "q", job.StateDelayed, withExpiry(sec(900))), func(j *job.Job) {
			j.State, j.ReadySeq = job.StateReady, 5
		}},
		{"leased to ready with expiry", mkJob(1, "q", job.StateLeased, withExpiry(sec(900))), func(j *job.Job) {
			j.State, j.ReadySeq, j.LeaseID, j.LeaseExpires = job.StateReady, 6, "", time.Time{}
		}},
		{"ready expiry moved", mkJob(1, "q", job.StateReady, withExpiry(sec(900))), func(j *job.Job) {
			j.ExpiresAt = sec(901)
		}},
		{"delayed to dead with expiry", mkJob(1, "q", job.StateDelayed, withExpiry(sec(900))), func(j *job.Job) {
			j.State, j.LastError = job.StateDead, "expired"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := h.Open(t)
			bystander := mkJob(2, "q", job.StateReady, withExpiry(sec(950)))
			create(t, s, tc.prev, bystander)
			view(t, s, func(r store.ReadTx) { checkIndexes(t, r, tc.prev, bystander) })

			next := tc.prev.Clone()
			tc.next(next)
			write(t, s, func(tx store.Txn) {
				if err := tx.Update(tc.prev, next); err != nil {
					t.Fatalf("Update: %v", err)
				}
			})
			view(t, s, func(r store.ReadTx) {
				checkJob(t, r, next, true) // Update keeps the payload
				checkIndexes(t, r, next, bystander)
			})
		})
	}
}

func testDelete(t *testing.T, h Harness) {
	states := []*job.Job{
		mkJob(1, "q", job.StateReady),
		mkJob(1, "q", job.StateReady, withExpiry(sec(100))),
		mkJob(1, "q", job.StateDelayed),
		mkJob(1, "q", job.StateDelayed, withExpiry(sec(100))),
		mkJob(1, "q", job.StateLeased, withExpiry(sec(100))),
		mkJob(1, "q", job.StateDead, withExpiry(sec(100))),
	}
	for _, j := range states {
		name := j.State.String()
		if !j.ExpiresAt.IsZero() {
			name += " with expiry"
		}
		t.Run(name, func(t *testing.T) {
			s := h.Open(t)
			bystander := mkJob(2, "q", j.State, withExpiry(j.ExpiresAt))
			create(t, s, j, bystander)
			// Delete reads only ID, Queue, State, Size and the fields that
			// key its index: give it nothing else.
			del := &job.Job{ID: j.ID, Queue: j.Queue, State: j.State, Size: len(j.Payload), ReadySeq: j.ReadySeq,
				RunAt: j.RunAt, ExpiresAt: j.ExpiresAt, LeaseExpires: j.LeaseExpires}
			write(t, s, func(tx store.Txn) {
				if err := tx.Delete(del); err != nil {
					t.Fatalf("Delete: %v", err)
				}
			})
			view(t, s, func(r store.ReadTx) {
				if _, err := r.Job(1, true); !errors.Is(err, job.ErrNotFound) {
					t.Errorf("Job after Delete: err = %v, want ErrNotFound", err)
				}
				checkJob(t, r, bystander, true)
				checkIndexes(t, r, bystander)
			})
		})
	}
}

// payloadSizes are the payload lengths the size tests use: empty, small,
// the edges of a store's inline limit if it has one at 512 bytes (Badger
// does), and one far above any such limit.
var payloadSizes = []int{0, 10, 512, 513, 200 << 10}

// sizedPayload is n bytes that differ from one job to the next.
func sizedPayload(id job.ID, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(int(id)*31 + i*7 + i>>8)
	}
	return p
}

// testSizeOnRead: Job sets Size with and without the payload, in a View and
// in a Txn (pending and committed).
func testSizeOnRead(t *testing.T, h Harness) {
	for _, n := range payloadSizes {
		t.Run(fmt.Sprintf("%dB", n), func(t *testing.T) {
			s := h.Open(t)
			j := mkJob(1, "q", job.StateReady, func(j *job.Job) { j.Payload = sizedPayload(1, n) })
			pending := mkJob(2, "q", job.StateDelayed, func(j *job.Job) { j.Payload = sizedPayload(2, n) })
			create(t, s, j)
			for _, payload := range []bool{false, true} {
				view(t, s, func(r store.ReadTx) { checkJob(t, r, j, payload) })
			}
			tx := s.Begin()
			defer tx.Discard()
			if err := tx.Create(pending); err != nil {
				t.Fatal(err)
			}
			for _, payload := range []bool{false, true} {
				checkJob(t, tx, j, payload)
				checkJob(t, tx, pending, payload)
			}
		})
	}
}

// testUpdateKeepsPayload: Update called with a job read without its payload
// (as the engine does) keeps the stored payload byte for byte, and Size,
// whether the job was read in the same Txn, in a View before it, or created
// in the same Txn; once the Txn knows the stored payload, a different one
// in next is ignored. A missing job is ErrNotFound.
func testUpdateKeepsPayload(t *testing.T, h Harness) {
	lease := func(j *job.Job) *job.Job {
		next := j.Clone()
		next.State, next.Attempt, next.LeaseID, next.LeaseExpires = job.StateLeased, j.Attempt+1, "l", sec(60)
		return next
	}
	requeue := func(j *job.Job, seq uint64) *job.Job {
		next := j.Clone()
		next.State, next.ReadySeq, next.LeaseID, next.LeaseExpires = job.StateReady, seq, "", time.Time{}
		return next
	}
	for _, n := range payloadSizes {
		t.Run(fmt.Sprintf("%dB", n), func(t *testing.T) {
			s := h.Open(t)
			// Job 1 is read in the Txn that updates it, job 2 in a View
			// before it; job 3 is created and updated in one Txn.
			var want []*job.Job
			for id := job.ID(1); id <= 3; id++ {
				want = append(want, mkJob(id, "q", job.StateReady, func(j *job.Job) { j.Payload = sizedPayload(id, n) }))
			}
			create(t, s, want[0], want[1])
			var viewed *job.Job
			view(t, s, func(r store.ReadTx) {
				var err error
				if viewed, err = r.Job(2, false); err != nil {
					t.Fatal(err)
				}
			})
			write(t, s, func(tx store.Txn) {
				read, err := tx.Job(1, false)
				if err != nil {
					t.Fatal(err)
				}
				if err := tx.Create(want[2]); err != nil {
					t.Fatal(err)
				}
				created, err := tx.Job(3, false)
				if err != nil {
					t.Fatal(err)
				}
				for i, prev := range []*job.Job{read, viewed, created} {
					next := lease(prev)
					if err := tx.Update(prev, next); err != nil {
						t.Fatalf("Update(%d): %v", prev.ID, err)
					}
					// Twice in one Txn, with a payload and size that are
					// not the job's: they must be ignored.
					again := requeue(next, uint64(100+i))
					again.Payload, again.Size = []byte("not the payload"), 15
					if err := tx.Update(next, again); err != nil {
						t.Fatalf("second Update(%d): %v", prev.ID, err)
					}
					again.Payload = want[i].Payload
					want[i] = again
					checkJob(t, tx, want[i], true)
				}
				// A job that does not exist has no payload to keep.
				ghost := mkJob(99, "q", job.StateReady)
				if err := tx.Update(ghost, lease(ghost)); !errors.Is(err, job.ErrNotFound) {
					t.Errorf("Update of a missing job: err = %v, want ErrNotFound", err)
				}
			})
			view(t, s, func(r store.ReadTx) {
				for _, j := range want {
					checkJob(t, r, j, true)
					checkJob(t, r, j, false)
				}
				checkIndexes(t, r, want...)
			})
		})
	}
}

// testUpdateCarriesPayload: the engine's in-memory copy of a job it
// created carries the whole payload; Update from it, in a Txn that never
// read the job, keeps payload and Size (a store may write them from next).
func testUpdateCarriesPayload(t *testing.T, h Harness) {
	for _, n := range payloadSizes {
		t.Run(fmt.Sprintf("%dB", n), func(t *testing.T) {
			s := h.Open(t)
			j := mkJob(1, "q", job.StateReady, func(j *job.Job) { j.Payload = sizedPayload(1, n) })
			create(t, s, j)
			prev := j.Clone()
			prev.Size = n
			next := prev.Clone()
			next.State, next.Attempt, next.LeaseID, next.LeaseExpires = job.StateLeased, 1, "l", sec(60)
			write(t, s, func(tx store.Txn) {
				if err := tx.Update(prev, next); err != nil {
					t.Fatalf("Update: %v", err)
				}
			})
			view(t, s, func(r store.ReadTx) {
				checkJob(t, r, next, true)
				checkJob(t, r, next, false)
				checkIndexes(t, r, next)
			})
		})
	}
}

// testDeleteBySize: Delete given only what the engine's lease table holds
// (ID, Queue, State, Size and the index fields) removes the job whatever its
// payload's size, and a job read without its payload can be deleted as read.
func testDeleteBySize(t *testing.T, h Harness) {
	for _, n := range payloadSizes {
		t.Run(fmt.Sprintf("%dB", n), func(t *testing.T) {
			s := h.Open(t)
			leased := mkJob(1, "q", job.StateLeased, func(j *job.Job) { j.Payload = sizedPayload(1, n) })
			ready := mkJob(2, "q", job.StateReady, withExpiry(sec(100)), func(j *job.Job) { j.Payload = sizedPayload(2, n) })
			bystander := mkJob(3, "q", job.StateReady, func(j *job.Job) { j.Payload = sizedPayload(3, n) })
			create(t, s, leased, ready, bystander)
			var read *job.Job
			view(t, s, func(r store.ReadTx) {
				var err error
				if read, err = r.Job(2, false); err != nil {
					t.Fatal(err)
				}
			})
			write(t, s, func(tx store.Txn) {
				del := &job.Job{ID: leased.ID, Queue: leased.Queue, State: leased.State, Size: n, LeaseExpires: leased.LeaseExpires}
				if err := tx.Delete(del); err != nil {
					t.Fatalf("Delete(leased): %v", err)
				}
				if err := tx.Delete(read); err != nil {
					t.Fatalf("Delete(read without payload): %v", err)
				}
			})
			view(t, s, func(r store.ReadTx) {
				for _, id := range []job.ID{1, 2} {
					for _, payload := range []bool{false, true} {
						if _, err := r.Job(id, payload); !errors.Is(err, job.ErrNotFound) {
							t.Errorf("Job(%d, %v) after Delete: err = %v, want ErrNotFound", id, payload, err)
						}
					}
				}
				checkJob(t, r, bystander, true)
				checkIndexes(t, r, bystander)
			})
		})
	}
}

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
				c, err := r.Counts()
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

// The Lease tests: a lease as the engine writes it (ready → leased, or
// leased → leased for an extension, changing only State, Attempt, LeaseID
// and LeaseExpires) reads back as written, with its payload, in the Txn
// that wrote it, in a later View and after a restart, and every way out of
// leased leaves no trace of the lease. A store may keep such a lease apart
// from the rest of the record (Badger does, to write less): these tests
// check that nothing of that shows.

// leaseJobs are the jobs the Lease tests start from, with a payload of n
// bytes: a plain ready job, one with headers, a key and an expiry, and one
// that was leased before (Attempt 2, LastError set).
func leaseJobs(n int) []*job.Job {
	pay := func(id job.ID) func(*job.Job) { return func(j *job.Job) { j.Payload = sizedPayload(id, n) } }
	return []*job.Job{
		mkJob(1, "q", job.StateReady, pay(1)),
		mkJob(2, "q", job.StateReady, pay(2), withExpiry(sec(900)), func(j *job.Job) {
			j.Headers = map[string]string{"h": "v", "x": ""}
			j.Key = "key-2"
		}),
		mkJob(3, "other", job.StateReady, pay(3), func(j *job.Job) {
			j.Attempt, j.LastError, j.RunAt = 2, "exit status 1", sec(5)
		}),
	}
}

// leaseOf is j leased as the engine leases it: the next attempt, a lease
// id and its expiry; nothing else changes.
func leaseOf(j *job.Job, id string, expires time.Time) *job.Job {
	next := j.Clone()
	next.State, next.Attempt, next.LeaseID, next.LeaseExpires = job.StateLeased, j.Attempt+1, id, expires
	return next
}

// withPayload is j with want's payload: what Job(id, true) must return.
func withPayload(j, want *job.Job) *job.Job {
	c := j.Clone()
	c.Payload, c.Size = want.Payload, len(want.Payload)
	return c
}

func checkBoth(t *testing.T, r store.ReadTx, want *job.Job) {
	t.Helper()
	checkJob(t, r, want, false)
	checkJob(t, r, want, true)
}

// checkStored reads each of jobs back from committed data, with and
// without its payload, and compares the indexes with the model of jobs.
func checkStored(t *testing.T, s store.Store, jobs ...*job.Job) {
	t.Helper()
	view(t, s, func(r store.ReadTx) {
		for _, j := range jobs {
			checkBoth(t, r, j)
		}
		checkIndexes(t, r, jobs...)
	})
}

func update(t *testing.T, tx store.Txn, prev, next *job.Job) {
	t.Helper()
	if err := tx.Update(prev, next); err != nil {
		t.Fatalf("Update(%d: %s → %s): %v", prev.ID, prev.State, next.State, err)
	}
}

// readJob reads id without its payload, as the engine does before an Update.
func readJob(t *testing.T, r store.ReadTx, id job.ID) *job.Job {
	t.Helper()
	j, err := r.Job(id, false)
	if err != nil {
		t.Fatalf("Job(%d): %v", id, err)
	}
	return j
}

// leaseAll leases jobs in one Txn and returns them leased, with payloads.
// Job 1's prev is read in the Txn, job 2's in a View before it, job 3's is
// the caller's copy (with its payload).
func leaseAll(t *testing.T, s store.Store, jobs []*job.Job) []*job.Job {
	t.Helper()
	var viewed *job.Job
	view(t, s, func(r store.ReadTx) { viewed = readJob(t, r, jobs[1].ID) })
	var leased []*job.Job
	write(t, s, func(tx store.Txn) {
		prevs := []*job.Job{readJob(t, tx, jobs[0].ID), viewed, jobs[2]}
		for i, prev := range prevs {
			next := leaseOf(prev, fmt.Sprintf("lease-%d", prev.ID), sec(60+i))
			update(t, tx, prev, next)
			want := withPayload(next, jobs[i])
			checkBoth(t, tx, want) // read-your-writes
			leased = append(leased, want)
		}
	})
	return leased
}

// testLeaseReadBack: a lease reads back leased, with the new Attempt,
// LeaseID and LeaseExpires and the payload intact, in its Txn and in a
// later View; the indexes list it leased. Also a lease in the Txn that
// created the job, and a lease that changes another field too.
func testLeaseReadBack(t *testing.T, h Harness) {
	for _, n := range payloadSizes {
		t.Run(fmt.Sprintf("%dB", n), func(t *testing.T) {
			s := h.Open(t)
			jobs := leaseJobs(n)
			create(t, s, jobs...)
			leased := leaseAll(t, s, jobs)
			checkStored(t, s, leased...)

			// Created and leased in one Txn.
			fresh := mkJob(4, "q", job.StateReady, func(j *job.Job) { j.Payload = sizedPayload(4, n) })
			// Leased with another change (a note in LastError).
			noted := readJobView(t, s, 1)
			var all []*job.Job
			write(t, s, func(tx store.Txn) {
				if err := tx.Create(fresh); err != nil {
					t.Fatal(err)
				}
				next := leaseOf(fresh, "lease-4", sec(70))
				update(t, tx, fresh, next)
				fresh = withPayload(next, fresh)
				checkBoth(t, tx, fresh)

				next = noted.Clone()
				next.LeaseExpires, next.LastError = sec(80), "noted"
				update(t, tx, noted, next)
				noted = withPayload(next, leased[0])
				checkBoth(t, tx, noted)
			})
			all = append(all, noted, leased[1], leased[2], fresh)
			checkStored(t, s, all...)
		})
	}
}

func readJobView(t *testing.T, s store.Store, id job.ID) *job.Job {
	t.Helper()
	var j *job.Job
	view(t, s, func(r store.ReadTx) { j = readJob(t, r, id) })
	return j
}

// testLeaseExtend: an extension (leased → leased with a new LeaseExpires)
// reads back, twice in one Txn and across Txns, for jobs leased by Update
// and for one created leased.
func testLeaseExtend(t *testing.T, h Harness) {
	for _, n := range payloadSizes {
		t.Run(fmt.Sprintf("%dB", n), func(t *testing.T) {
			s := h.Open(t)
			jobs := leaseJobs(n)
			created := mkJob(4, "q", job.StateLeased, func(j *job.Job) { j.Payload = sizedPayload(4, n) })
			create(t, s, append(jobs, created)...)
			leased := append(leaseAll(t, s, jobs), created)
			var want []*job.Job
			write(t, s, func(tx store.Txn) {
				for i, j := range leased {
					prev := readJob(t, tx, j.ID)
					ext := prev.Clone()
					ext.LeaseExpires = sec(300 + i)
					update(t, tx, prev, ext)
					checkBoth(t, tx, withPayload(ext, j))
					again := ext.Clone()
					again.LeaseExpires = sec(400 + i)
					update(t, tx, ext, again)
					checkBoth(t, tx, withPayload(again, j))
					want = append(want, withPayload(again, j))
				}
			})
			checkStored(t, s, want...)
			// One more extension in a Txn of its own, from a View's read.
			prev := readJobView(t, s, 2)
			ext := prev.Clone()
			ext.LeaseExpires = sec(500)
			write(t, s, func(tx store.Txn) { update(t, tx, prev, ext) })
			want[1] = withPayload(ext, want[1])
			checkStored(t, s, want...)
		})
	}
}

// nack is leased j back to ready, as the engine's nack or lease expiry
// does: a new ReadySeq and RunAt, the lease cleared, Attempt kept.
func nack(j *job.Job, seq uint64) *job.Job {
	next := j.Clone()
	next.State, next.ReadySeq, next.RunAt = job.StateReady, seq, sec(int(seq))
	next.LeaseID, next.LeaseExpires, next.LastError = "", time.Time{}, "nacked"
	return next
}

// testLeaseThenNack: a leased job moved back to ready (or delayed, or dead)
// reads back in its new state with the Attempt of the lease; Leased no
// longer lists it and Ready does. Both in the Txn of the lease and in a
// later one; then a second lease of the nacked job.
func testLeaseThenNack(t *testing.T, h Harness) {
	for _, n := range payloadSizes {
		t.Run(fmt.Sprintf("%dB", n), func(t *testing.T) {
			s := h.Open(t)
			jobs := leaseJobs(n)
			fresh := mkJob(4, "q", job.StateReady, func(j *job.Job) { j.Payload = sizedPayload(4, n) })
			create(t, s, append(jobs, fresh)...)
			leased := leaseAll(t, s, jobs)
			var want []*job.Job
			write(t, s, func(tx store.Txn) {
				for i, j := range leased {
					prev := readJob(t, tx, j.ID)
					var next *job.Job
					switch i {
					case 0, 1:
						next = nack(prev, uint64(100+i))
					case 2:
						next = prev.Clone()
						next.State, next.LeaseID, next.LeaseExpires, next.LastError = job.StateDead, "", time.Time{}, "exit 65"
					}
					update(t, tx, prev, next)
					checkBoth(t, tx, withPayload(next, j))
					want = append(want, withPayload(next, j))
				}
				// Leased and nacked in one Txn.
				next := leaseOf(fresh, "lease-4", sec(64))
				update(t, tx, fresh, next)
				back := nack(next, 104)
				update(t, tx, next, back)
				checkBoth(t, tx, withPayload(back, fresh))
				want = append(want, withPayload(back, fresh))
			})
			view(t, s, func(r store.ReadTx) {
				for _, j := range want {
					checkBoth(t, r, j)
					if j.State == job.StateReady && j.ID != 4 && j.Attempt != leased[j.ID-1].Attempt {
						t.Errorf("job %d: Attempt %d after nack, want the lease's %d", j.ID, j.Attempt, leased[j.ID-1].Attempt)
					}
				}
				checkIndexes(t, r, want...)
				if refs, err := r.Leased(0, 100); err != nil || len(refs) != 0 {
					t.Errorf("Leased after every lease ended = %v, %v; want none", refs, err)
				}
			})
			// Leased again: the next attempt.
			prev := readJobView(t, s, 1)
			again := leaseOf(prev, "lease-1b", sec(200))
			write(t, s, func(tx store.Txn) { update(t, tx, prev, again) })
			want[0] = withPayload(again, want[0])
			if again.Attempt != leased[0].Attempt+1 {
				t.Errorf("second lease: Attempt %d, want %d", again.Attempt, leased[0].Attempt+1)
			}
			checkStored(t, s, want...)
		})
	}
}

// testLeaseThenDelete: a leased job deleted with its Size (as the ack does)
// is gone, in a Txn after the lease and in the lease's own Txn; a
// bystander stays.
func testLeaseThenDelete(t *testing.T, h Harness) {
	for _, n := range payloadSizes {
		t.Run(fmt.Sprintf("%dB", n), func(t *testing.T) {
			s := h.Open(t)
			jobs := leaseJobs(n)
			fresh := mkJob(4, "q", job.StateReady, func(j *job.Job) { j.Payload = sizedPayload(4, n) })
			bystander := mkJob(5, "q", job.StateReady, withExpiry(sec(950)))
			create(t, s, append(jobs, fresh, bystander)...)
			leased := leaseAll(t, s, jobs)
			ack := func(j *job.Job) *job.Job {
				// Delete reads only ID, Queue, State, Size and the fields
				// that key its index.
				return &job.Job{ID: j.ID, Queue: j.Queue, State: j.State, Size: j.Size, ReadySeq: j.ReadySeq,
					RunAt: j.RunAt, ExpiresAt: j.ExpiresAt, LeaseExpires: j.LeaseExpires}
			}
			write(t, s, func(tx store.Txn) {
				for _, j := range leased {
					if err := tx.Delete(ack(readJob(t, tx, j.ID))); err != nil {
						t.Fatalf("Delete(%d): %v", j.ID, err)
					}
				}
				next := leaseOf(fresh, "lease-4", sec(64))
				update(t, tx, fresh, next)
				if err := tx.Delete(ack(readJob(t, tx, 4))); err != nil {
					t.Fatalf("Delete(4): %v", err)
				}
				for id := job.ID(1); id <= 4; id++ {
					if _, err := tx.Job(id, true); !errors.Is(err, job.ErrNotFound) {
						t.Errorf("Job(%d) in the Txn after Delete: err = %v, want ErrNotFound", id, err)
					}
				}
			})
			view(t, s, func(r store.ReadTx) {
				for id := job.ID(1); id <= 4; id++ {
					if _, err := r.Job(id, true); !errors.Is(err, job.ErrNotFound) {
						t.Errorf("Job(%d) after Delete: err = %v, want ErrNotFound", id, err)
					}
				}
				checkJob(t, r, bystander, true)
				checkIndexes(t, r, bystander)
			})
		})
	}
}

// testLeaseReopen: what recovery sees after a restart. Jobs leased in one
// Txn come back leased: Leased lists them with At = LeaseExpires and their
// queue, Counts counts them leased (not ready), Job reads the lease. Then
// recovery's move back to ready reads back too.
func testLeaseReopen(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("the store has no durable backing (Harness.Reopen is nil): nothing survives a restart to check")
	}
	for _, n := range payloadSizes {
		t.Run(fmt.Sprintf("%dB", n), func(t *testing.T) {
			s := h.Open(t)
			jobs := leaseJobs(n)
			create(t, s, jobs...)
			leased := leaseAll(t, s, jobs)
			if err := s.Sync(); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			s = h.Reopen(t, s)
			view(t, s, func(r store.ReadTx) {
				refs, err := r.Leased(0, 100)
				if err != nil {
					t.Fatal(err)
				}
				var got, want []string
				for _, ref := range refs {
					got = append(got, timedRef(ref))
				}
				for _, j := range leased {
					want = append(want, timedRef(store.Ref{ID: j.ID, Queue: j.Queue, At: j.LeaseExpires}))
					checkBoth(t, r, j)
				}
				if !slices.Equal(got, want) {
					t.Errorf("Leased after restart = %v, want %v", got, want)
				}
				c, err := r.Counts()
				if err != nil {
					t.Fatal(err)
				}
				if c["q"] != (store.Counts{Leased: 2}) || c["other"] != (store.Counts{Leased: 1}) {
					t.Errorf("Counts after restart = %v, want 2 leased in q, 1 in other", c)
				}
				checkIndexes(t, r, leased...)
			})
			// Recovery: each lease has expired; back to ready.
			var want []*job.Job
			write(t, s, func(tx store.Txn) {
				for i, j := range leased {
					prev := readJob(t, tx, j.ID)
					next := nack(prev, uint64(200+i))
					update(t, tx, prev, next)
					want = append(want, withPayload(next, j))
				}
			})
			if err := s.Sync(); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			s = h.Reopen(t, s)
			checkStored(t, s, want...)
		})
	}
}
