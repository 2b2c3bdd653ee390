// Package memstore is an in-memory store.Store for tests: every index is
// derived from the job records on each read, so the index rules hold by
// construction and the store is small enough to trust. It is not for
// production (no durability, reads are O(jobs)).
//
// A Store is safe for concurrent use; as store.Store requires, at most one
// Txn is open at a time.
package memstore

import (
	"bytes"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// Store is an in-memory store.Store.
type Store struct {
	mu     sync.RWMutex
	jobs   map[job.ID]*job.Job       // guarded by mu
	dedupe map[string]dedupe         // guarded by mu
	seq    uint64                    // guarded by mu
	scheds map[string]store.Schedule // guarded by mu

	// MaxEntries bounds a transaction (Fits); 0 means 10000.
	MaxEntries int
	// Now is the clock for dedupe TTLs; nil means time.Now.
	Now        func() time.Time
	failCommit error // guarded by mu
	syncs      int   // guarded by mu
}

// FailNextCommit makes the next Commit return err.
func (s *Store) FailNextCommit(err error) {
	s.mu.Lock()
	s.failCommit = err
	s.mu.Unlock()
}

// Syncs counts Sync calls.
func (s *Store) Syncs() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.syncs
}

type dedupe struct {
	id      job.ID
	expires time.Time
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{jobs: make(map[job.ID]*job.Job), dedupe: make(map[string]dedupe), scheds: make(map[string]store.Schedule)}
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Begin opens the write transaction.
func (s *Store) Begin() store.Txn {
	return &txn{s: s, jobs: make(map[job.ID]*job.Job), dedupe: make(map[string]dedupe), scheds: make(map[string]*store.Schedule)}
}

// View reads committed data.
func (s *Store) View(fn func(store.ReadTx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return fn(&txn{s: s, view: true})
}

// Sync counts the call.
func (s *Store) Sync() error {
	s.mu.Lock()
	s.syncs++
	s.mu.Unlock()
	return nil
}

// txn overlays pending writes (a nil job is a delete) on committed data.
type txn struct {
	s       *Store
	view    bool
	jobs    map[job.ID]*job.Job
	dedupe  map[string]dedupe
	seq     *uint64
	scheds  map[string]*store.Schedule // a nil record is a delete
	entries int
}

func (t *txn) lookup(id job.ID) (*job.Job, bool) {
	if !t.view {
		if j, ok := t.jobs[id]; ok {
			return j, j != nil
		}
		t.s.mu.RLock()
		defer t.s.mu.RUnlock()
	}
	j, ok := t.s.jobs[id]
	return j, ok
}

// committed returns the committed jobs: what index reads see (store.Txn).
func (t *txn) committed() []*job.Job {
	if !t.view {
		t.s.mu.RLock()
		defer t.s.mu.RUnlock()
	}
	out := make([]*job.Job, 0, len(t.s.jobs))
	for _, j := range t.s.jobs {
		out = append(out, j)
	}
	return out
}

func (t *txn) Job(id job.ID, payload bool) (*job.Job, error) {
	j, ok := t.lookup(id)
	if !ok {
		return nil, fmt.Errorf("job %s: %w", id, job.ErrNotFound)
	}
	c := j.Clone()
	if !payload {
		c.Payload = nil
	}
	return c, nil
}

func (t *txn) Ready(queue string, after uint64, max int) ([]store.Ref, error) {
	var refs []store.Ref
	for _, j := range t.committed() {
		if j.State == job.StateReady && j.Group == "" && j.Queue == queue && j.ReadySeq > after {
			refs = append(refs, store.Ref{ID: j.ID, Queue: j.Queue, Seq: j.ReadySeq, At: j.RunAt})
		}
	}
	sort.Slice(refs, func(a, b int) bool { return refs[a].Seq < refs[b].Seq })
	if len(refs) > max {
		refs = refs[:max]
	}
	return refs, nil
}

func (t *txn) GroupReady(queue string, from store.Ref, max int) ([]store.Ref, error) {
	var refs []store.Ref
	for _, j := range t.committed() {
		if j.State != job.StateReady || j.Group == "" || j.Queue != queue {
			continue
		}
		if j.Group < from.Group || (j.Group == from.Group && j.ReadySeq <= from.Seq) {
			continue
		}
		refs = append(refs, store.Ref{ID: j.ID, Queue: j.Queue, Group: j.Group, Seq: j.ReadySeq, At: j.RunAt})
	}
	sort.Slice(refs, func(a, b int) bool {
		if refs[a].Group != refs[b].Group {
			return refs[a].Group < refs[b].Group
		}
		return refs[a].Seq < refs[b].Seq
	})
	if len(refs) > max {
		refs = refs[:max]
	}
	return refs, nil
}

func refLess(a, b store.Ref) bool {
	if !a.At.Equal(b.At) {
		return a.At.Before(b.At)
	}
	return a.ID < b.ID
}

func (t *txn) Due(kind store.TimedIndex, from store.Ref, until time.Time, max int) ([]store.Ref, time.Time, error) {
	var refs []store.Ref
	for _, j := range t.committed() {
		var at time.Time
		switch {
		case kind == store.IndexDelayed && j.State == job.StateDelayed:
			at = j.RunAt
		case kind == store.IndexExpiry && !j.ExpiresAt.IsZero() && (j.State == job.StateReady || j.State == job.StateDelayed):
			at = j.ExpiresAt
		case kind == store.IndexDone && j.State == job.StateDone:
			at = j.ExpiresAt
		default:
			continue
		}
		r := store.Ref{ID: j.ID, Queue: j.Queue, At: at}
		if kind == store.IndexDelayed {
			r.Group, r.Seq = j.Group, j.ReadySeq
		}
		if from.ID != 0 && !refLess(from, r) {
			continue
		}
		refs = append(refs, r)
	}
	sort.Slice(refs, func(a, b int) bool { return refLess(refs[a], refs[b]) })
	var next time.Time
	for i, r := range refs {
		if r.At.After(until) || i == max {
			next = r.At
			refs = refs[:i]
			break
		}
	}
	return refs, next, nil
}

func (t *txn) Dead(queue string, after job.ID, max int) ([]job.ID, error) {
	var ids []job.ID
	for _, j := range t.committed() {
		if j.State == job.StateDead && j.Queue == queue && j.ID > after {
			ids = append(ids, j.ID)
		}
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
	if len(ids) > max {
		ids = ids[:max]
	}
	return ids, nil
}

func (t *txn) Leased(after job.ID, max int) ([]store.Ref, error) {
	var refs []store.Ref
	for _, j := range t.committed() {
		if j.State == job.StateLeased && j.ID > after {
			refs = append(refs, store.Ref{ID: j.ID, Queue: j.Queue, At: j.LeaseExpires})
		}
	}
	sort.Slice(refs, func(a, b int) bool { return refs[a].ID < refs[b].ID })
	if len(refs) > max {
		refs = refs[:max]
	}
	return refs, nil
}

func (t *txn) Dedupe(queue, key string) (job.ID, bool, error) {
	k := queue + "\x00" + key
	d, ok := t.dedupe[k]
	if !ok {
		if !t.view {
			t.s.mu.RLock()
			defer t.s.mu.RUnlock()
		}
		d, ok = t.s.dedupe[k]
	}
	if !ok || !t.s.now().Before(d.expires) {
		return 0, false, nil
	}
	return d.id, true, nil
}

func (t *txn) Seq() (uint64, error) {
	if t.seq != nil {
		return *t.seq, nil
	}
	if !t.view {
		t.s.mu.RLock()
		defer t.s.mu.RUnlock()
	}
	return t.s.seq, nil
}

func (t *txn) Counts(bytesOf func(queue string) bool) (map[string]store.Counts, error) {
	out := make(map[string]store.Counts)
	for _, j := range t.committed() {
		c := out[j.Queue]
		switch j.State {
		case job.StateReady:
			c.Ready++
		case job.StateDelayed:
			c.Delayed++
		case job.StateLeased:
			c.Leased++
		case job.StateDead:
			c.Dead++
		case job.StateDone:
			c.Done++
		}
		if j.State != job.StateDead && j.State != job.StateDone && bytesOf != nil && bytesOf(j.Queue) {
			c.Bytes += int64(j.Size)
		}
		out[j.Queue] = c
	}
	return out, nil
}

func (t *txn) limit() int {
	if t.s.MaxEntries > 0 {
		return t.s.MaxEntries
	}
	return 10000
}

// Fits counts entries as the Badger store does: three writes a created
// job, one more for its dedupe key and one for its deadline; six for a
// state change. Bytes are not bounded.
func (t *txn) Fits(op store.Op) bool {
	n := 0
	for i := range op.Enqueue {
		n += 3
		if op.Enqueue[i].Key != "" {
			n++
		}
		if !op.Enqueue[i].ExpiresAt.IsZero() {
			n++
		}
	}
	if op.Change != nil {
		n += 6
	}
	n += 6 * len(op.Delete)
	if op.Schedule != nil {
		n += 2
	}
	return t.entries+n <= t.limit()
}

func (t *txn) write(n int) { t.entries += n }

func (t *txn) Create(j *job.Job) error {
	t.write(4)
	c := j.Clone()
	c.Size = len(c.Payload)
	t.jobs[j.ID] = c
	return nil
}

// Update keeps the stored payload and Size: next's are not read (the
// engine passes jobs read without their payload).
func (t *txn) Update(prev, next *job.Job) error {
	old, ok := t.lookup(next.ID)
	if !ok {
		return fmt.Errorf("update job %s: %w", next.ID, job.ErrNotFound)
	}
	t.write(4)
	c := next.Clone()
	c.Payload, c.Size = old.Payload, old.Size
	t.jobs[next.ID] = c
	return nil
}

func (t *txn) Delete(j *job.Job) error {
	t.write(4)
	t.jobs[j.ID] = nil
	return nil
}

func (t *txn) PutDedupe(queue, key string, id job.ID, ttl time.Duration) error {
	t.write(1)
	t.dedupe[queue+"\x00"+key] = dedupe{id: id, expires: t.s.now().Add(ttl)}
	return nil
}

func (t *txn) SetSeq(seq uint64) error {
	t.write(1)
	t.seq = &seq
	return nil
}

// Schedules overlays the transaction's writes on the committed records.
func (t *txn) Schedules() ([]store.Schedule, error) {
	m := make(map[string]store.Schedule)
	func() {
		if !t.view {
			t.s.mu.RLock()
			defer t.s.mu.RUnlock()
		}
		for n, s := range t.s.scheds {
			m[n] = s
		}
	}()
	for n, s := range t.scheds {
		if s == nil {
			delete(m, n)
		} else {
			m[n] = *s
		}
	}
	out := make([]store.Schedule, 0, len(m))
	for _, s := range m {
		s.Spec = bytes.Clone(s.Spec)
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (t *txn) PutSchedule(s store.Schedule) error {
	if err := job.CheckQueueName(s.Name); err != nil {
		return fmt.Errorf("schedule name: %w", err)
	}
	t.write(1)
	s.Spec = bytes.Clone(s.Spec)
	t.scheds[s.Name] = &s
	return nil
}

func (t *txn) DeleteSchedule(name string) error {
	t.write(1)
	t.scheds[name] = nil
	return nil
}

func (t *txn) Commit() error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if err := t.s.failCommit; err != nil {
		t.s.failCommit = nil
		return err
	}
	for id, j := range t.jobs {
		if j == nil {
			delete(t.s.jobs, id)
		} else {
			t.s.jobs[id] = j
		}
	}
	for k, d := range t.dedupe {
		t.s.dedupe[k] = d
	}
	if t.seq != nil {
		t.s.seq = *t.seq
	}
	for n, sc := range t.scheds {
		if sc == nil {
			delete(t.s.scheds, n)
		} else {
			t.s.scheds[n] = *sc
		}
	}
	return nil
}

func (t *txn) Discard() {}
