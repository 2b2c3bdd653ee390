package storetest

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

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
	case job.StateDone:
		j.Attempt = 1
		j.ExpiresAt = sec(3600 + int(id))
		j.Result = fmt.Appendf(nil, "result of %d", id)
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
	if !bytes.Equal(got.Result, want.Result) {
		fmt.Fprintf(&b, "  Result: got %q, want %q\n", trunc(got.Result), trunc(want.Result))
	}
	diff("ResultTruncated", got.ResultTruncated, want.ResultTruncated)
	diff("TraceParent", got.TraceParent, want.TraceParent)
	diff("TraceState", got.TraceState, want.TraceState)
	if g, w := got.OnSuccess, want.OnSuccess; (g == nil) != (w == nil) || g != nil &&
		(g.Queue != w.Queue || g.HasPayload != w.HasPayload || !bytes.Equal(g.Payload, w.Payload)) {
		fmt.Fprintf(&b, "  OnSuccess: got %+v, want %+v\n", g, w)
	}
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
	Groups  map[string][]string // queue → group-ready refs
	Delayed []string
	Expiry  []string
	Done    []string
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

func groupRef(r store.Ref) string {
	return fmt.Sprintf("%d/%s/%s/seq=%d/at=%d", r.ID, r.Queue, r.Group, r.Seq, nanos(r.At))
}

// timedRef formats a delayed, expiry or leased ref; Seq is not part of them.
func timedRef(r store.Ref) string { return fmt.Sprintf("%d/%s/at=%d", r.ID, r.Queue, nanos(r.At)) }

// read takes the snapshot of a store; queues are those to list.
func read(t *testing.T, r store.ReadTx, queues ...string) snapshot {
	t.Helper()
	s := snapshot{Ready: map[string][]string{}, Groups: map[string][]string{}, Dead: map[string][]job.ID{}}
	for _, q := range queues {
		refs, err := r.Ready(q, 0, 1000)
		if err != nil {
			t.Fatalf("Ready(%s): %v", q, err)
		}
		for _, ref := range refs {
			s.Ready[q] = append(s.Ready[q], readyRef(ref))
		}
		if refs, err = r.GroupReady(q, store.Ref{}, 1000); err != nil {
			t.Fatalf("GroupReady(%s): %v", q, err)
		}
		for _, ref := range refs {
			s.Groups[q] = append(s.Groups[q], groupRef(ref))
		}
		ids, err := r.Dead(q, 0, 1000)
		if err != nil {
			t.Fatalf("Dead(%s): %v", q, err)
		}
		if len(ids) > 0 {
			s.Dead[q] = ids
		}
	}
	for _, kind := range []store.TimedIndex{store.IndexDelayed, store.IndexExpiry, store.IndexDone} {
		refs, next, err := r.Due(kind, store.Ref{}, farFuture, 1000)
		if err != nil {
			t.Fatalf("Due(%d): %v", kind, err)
		}
		if !next.IsZero() {
			t.Errorf("Due(%d, until far future): next = %v, want zero", kind, next)
		}
		for _, ref := range refs {
			switch kind {
			case store.IndexDelayed:
				s.Delayed = append(s.Delayed, timedRef(ref))
			case store.IndexExpiry:
				s.Expiry = append(s.Expiry, timedRef(ref))
			default:
				s.Done = append(s.Done, timedRef(ref))
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
	if s.Counts, err = r.Counts(func(string) bool { return true }); err != nil {
		t.Fatalf("Counts: %v", err)
	}
	return s
}

// model is what the index rules of store.Store say the snapshot of jobs is.
func model(jobs ...*job.Job) snapshot {
	s := snapshot{Ready: map[string][]string{}, Groups: map[string][]string{}, Dead: map[string][]job.ID{}, Counts: map[string]store.Counts{}}
	sorted := slices.Clone(jobs)
	slices.SortFunc(sorted, func(a, b *job.Job) int { return cmp.Compare(a.ID, b.ID) })
	var ready, delayed, expiry, done []*job.Job
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
		case job.StateDone:
			done = append(done, j)
			c.Done++
		}
		if j.State != job.StateDead && j.State != job.StateDone { // ready, delayed and leased
			c.Bytes += int64(max(j.Size, len(j.Payload))) // Size is unset in a fixture before it is written
		}
		s.Counts[j.Queue] = c
		if (j.State == job.StateReady || j.State == job.StateDelayed) && !j.ExpiresAt.IsZero() {
			expiry = append(expiry, j)
		}
	}
	slices.SortStableFunc(ready, func(a, b *job.Job) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.ReadySeq, b.ReadySeq))
	})
	for _, j := range ready {
		if j.Group != "" {
			s.Groups[j.Queue] = append(s.Groups[j.Queue], groupRef(store.Ref{ID: j.ID, Queue: j.Queue, Group: j.Group, Seq: j.ReadySeq, At: j.RunAt}))
			continue
		}
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
	slices.SortFunc(done, byTime(func(j *job.Job) time.Time { return j.ExpiresAt }))
	for _, j := range done {
		s.Done = append(s.Done, timedRef(store.Ref{ID: j.ID, Queue: j.Queue, At: j.ExpiresAt}))
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
	for _, q := range slices.Sorted(maps.Keys(mergeKeys(got.Groups, want.Groups))) {
		list("GroupReady("+q+")", got.Groups[q], want.Groups[q])
	}
	list("Due(delayed)", got.Delayed, want.Delayed)
	list("Due(expiry)", got.Expiry, want.Expiry)
	list("Due(done)", got.Done, want.Done)
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
