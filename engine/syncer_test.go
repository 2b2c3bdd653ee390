package engine_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
	"github.com/edgeq/edgeq/engine/store"
)

// gatedStore is a memstore whose Sync can be held and made to fail.
type gatedStore struct {
	*memstore.Store
	gate chan struct{} // when non-nil, Sync waits for a value or close
	fail atomic.Pointer[error]
	mu   sync.Mutex // guards gate
}

func (s *gatedStore) Sync() error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if p := s.fail.Swap(nil); p != nil {
		return *p
	}
	return s.Store.Sync()
}

// hold makes Sync wait until release is called; release lets the held
// Sync and every later one through.
func (s *gatedStore) hold() (release func()) {
	gate := make(chan struct{})
	s.mu.Lock()
	s.gate = gate
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.gate = nil
		s.mu.Unlock()
		close(gate)
	}
}

// TestAnswersWaitForTheirSync holds the first sync of a batch open: the
// committer applies the next op meanwhile (the pipeline), but no enqueue is
// answered before a sync that began after its commit has returned.
func TestAnswersWaitForTheirSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &gatedStore{Store: memstore.New()}
		e := start(t, st, engine.Config{})
		synctest.Wait()
		release := st.hold()

		var answered atomic.Int32
		var wg sync.WaitGroup
		results := make([]job.Result, 2)
		for i := range 2 {
			wg.Go(func() {
				r, err := e.Enqueue(t.Context(), job.New{Queue: "p"})
				if err != nil {
					t.Errorf("enqueue %d: %v", i, err)
				}
				results[i] = r
				answered.Add(1)
			})
			synctest.Wait() // the first is committed and its sync held before the second is pushed
		}
		if n := answered.Load(); n != 0 {
			t.Fatalf("%d enqueues answered while their sync was held", n)
		}
		if s := stats(t, e, "p"); s.Ready != 2 {
			t.Errorf("ready = %d while the first sync is held, want 2 (the second enqueue applied meanwhile)", s.Ready)
		}
		release() // the held sync and the next one go through
		wg.Wait()
		for i, r := range results {
			if !r.Durable {
				t.Errorf("enqueue %d answered with durable=false", i)
			}
		}
		if st.Syncs() < 2 {
			t.Errorf("syncs = %d, want the second batch synced after the first (>= 2)", st.Syncs())
		}
	})
}

// TestSyncFailureRefuses: a failed sync answers the batch's ops with a
// retryable ErrUnavailable and marks the engine not ready; the next batch
// syncs again and clears it.
func TestSyncFailureRefuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &gatedStore{Store: memstore.New()}
		e := start(t, st, engine.Config{})
		synctest.Wait()
		boom := errors.New("fsync: input/output error")
		st.fail.Store(&boom)
		enqueueRefused(t, e, "s", "sync")
		before := st.Syncs()
		r := enqueue(t, e, job.New{Queue: "s"})
		if !r.Durable {
			t.Error("enqueue after the failure answered durable=false")
		}
		if st.Syncs() <= before {
			t.Error("the batch after a failed sync did not sync")
		}
		if err := e.Ready(); err != nil {
			t.Errorf("Ready() = %v after a good sync", err)
		}
		// The refused job was committed before its sync failed: at least
		// once, never accepted and lost.
		if s := stats(t, e, "s"); s.Ready != 2 {
			t.Errorf("ready = %d, want 2", s.Ready)
		}
	})
}

var _ store.Store = (*gatedStore)(nil)

// TestOpsAppliedWhileSyncingStayVisibleToMaintenance: while a sync is held,
// nacks arrive one by one and are applied to the next batch in several
// rounds; every nacked job is promoted once its delay is over (the timed
// scan of a batch cannot see what the same batch added, so nothing may be
// forgotten between rounds).
func TestOpsAppliedWhileSyncingStayVisibleToMaintenance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &gatedStore{Store: memstore.New()}
		e := start(t, st, engine.Config{})
		const n = 6
		for range n {
			enqueue(t, e, job.New{Queue: "m"})
		}
		jobs, err := e.Lease(t.Context(), engine.LeaseRequest{Queue: "m", Max: n, TTR: time.Hour})
		if err != nil || len(jobs) != n {
			t.Fatalf("Lease = %d jobs, %v; want %d", len(jobs), err, n)
		}
		synctest.Wait()
		release := st.hold()
		var wg sync.WaitGroup
		for _, j := range jobs {
			wg.Go(func() {
				if _, err := e.Nack(t.Context(), j.ID, j.LeaseID, time.Millisecond, "again"); err != nil {
					t.Errorf("Nack: %v", err)
				}
			})
			synctest.Wait()                  // each nack is its own round,
			time.Sleep(2 * time.Millisecond) // and the earlier ones are due by the next
		}
		release()
		wg.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		again, err := e.Lease(t.Context(), engine.LeaseRequest{Queue: "m", Max: n, TTR: time.Hour})
		if err != nil || len(again) != n {
			t.Fatalf("after the retry delay Lease = %d jobs, %v; want all %d promoted", len(again), err, n)
		}
	})
}

// slowSyncStore is a memstore whose Sync takes d (of the synctest bubble's
// clock, so the figures below are exact).
type slowSyncStore struct {
	*memstore.Store
	d time.Duration
}

func (s *slowSyncStore) Sync() error {
	time.Sleep(s.d)
	return s.Store.Sync()
}

// TestClosedLoopCallersShareEachSync runs 8 producers that each enqueue
// the moment their last enqueue is answered. The committer holds the free
// syncer until the callers it just answered are back, so every sync carries
// all 8 and 200 enqueues take 25 syncs (a few more at the start). Without
// the hold the producers split into two groups that alternate, about 50
// syncs of 4.
func TestClosedLoopCallersShareEachSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &slowSyncStore{Store: memstore.New(), d: time.Millisecond}
		e := start(t, st, engine.Config{})
		synctest.Wait()
		base := st.Syncs()
		const producers, each = 8, 25
		var wg sync.WaitGroup
		for range producers {
			wg.Go(func() {
				for range each {
					if r, err := e.Enqueue(t.Context(), job.New{Queue: "p"}); err != nil || !r.Durable {
						t.Errorf("enqueue: %v, durable %v", err, r.Durable)
						return
					}
				}
			})
		}
		wg.Wait()
		if syncs := st.Syncs() - base; syncs > each+3 {
			t.Errorf("%d enqueues took %d syncs, want at most %d: callers are not sharing syncs", producers*each, syncs, each+3)
		}
	})
}

// TestSlowSyncHoldsForSlowerCallers is the slow card: each sync takes 10
// ms, and the 8 producers take 3 to 4.75 ms to come back (a CPU-starved
// HTTP round trip). The committer holds the free syncer for as long as the
// last sync took, so every sync still carries all 8: 200 enqueues in about
// 25 syncs. With the hold capped at a fast disk's 2 ms, the first to come
// back would go alone and the rest wait for the next sync: about 50.
func TestSlowSyncHoldsForSlowerCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &slowSyncStore{Store: memstore.New(), d: 10 * time.Millisecond}
		e := start(t, st, engine.Config{})
		synctest.Wait()
		base := st.Syncs()
		const producers, each = 8, 25
		var wg sync.WaitGroup
		for i := range producers {
			wg.Go(func() {
				for range each {
					if r, err := e.Enqueue(t.Context(), job.New{Queue: "p"}); err != nil || !r.Durable {
						t.Errorf("enqueue: %v, durable %v", err, r.Durable)
						return
					}
					time.Sleep(3*time.Millisecond + time.Duration(i)*250*time.Microsecond)
				}
			})
		}
		wg.Wait()
		if syncs := st.Syncs() - base; syncs > each+3 {
			t.Errorf("%d enqueues took %d syncs, want at most %d: slower callers are not sharing slow syncs", producers*each, syncs, each+3)
		}
	})
}

// TestHoldEndsWhenCallersDoNotComeBack answers two callers in one sync; one
// never comes back. The hold waits at most one sync's time for it, once:
// after that each sync answers the one remaining caller, who comes back, so
// nothing is held again. 20 enqueues of 1 ms syncs take about 21 ms, not
// the 40 ms that holding every time would take.
func TestHoldEndsWhenCallersDoNotComeBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &slowSyncStore{Store: memstore.New(), d: time.Millisecond}
		e := start(t, st, engine.Config{})
		synctest.Wait()
		var wg sync.WaitGroup
		wg.Go(func() { enqueue(t, e, job.New{Queue: "once"}) })
		t0 := time.Now()
		for range 20 {
			enqueue(t, e, job.New{Queue: "p"})
		}
		took := time.Since(t0)
		wg.Wait()
		if took > 25*time.Millisecond {
			t.Errorf("20 enqueues with 1 ms syncs took %v, want about 21 ms: the committer held the syncer for a caller that was not coming back more than once", took)
		}
		if s := stats(t, e, "p"); s.Ready != 20 {
			t.Errorf("ready = %d, want 20", s.Ready)
		}
	})
}
