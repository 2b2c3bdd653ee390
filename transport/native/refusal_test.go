package native

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
	"github.com/edgeq/edgeq/transport/httpapi"
)

// refusingStore is the in-memory store with two switches: full makes it
// refuse every enqueue for want of space (a store.SpaceReserver, as
// storage.Badger is), syncFails makes every Sync fail.
type refusingStore struct {
	*memstore.Store
	full      atomic.Bool
	syncFails atomic.Bool
}

func (s *refusingStore) Reserve([]job.New) error {
	if s.full.Load() {
		return fmt.Errorf("%w: 12 MiB free in /data, want 64 MiB", job.ErrDiskFull)
	}
	return nil
}

func (s *refusingStore) Sync() error {
	if s.syncFails.Load() {
		return errors.New("fsync /data/000001.vlog: input/output error")
	}
	return s.Store.Sync()
}

// sameRefusal fails the test unless HTTP answered code and native answered
// exactly as HTTP: status, code, message and retry hint.
func sameRefusal(t *testing.T, code string, h, n *httpapi.APIError) {
	t.Helper()
	if h.Code != code {
		t.Fatalf("HTTP answered %d %s %q, want %s", h.Status, h.Code, h.Message, code)
	}
	if n.Status != h.Status || n.Code != h.Code || n.Message != h.Message || n.RetryAfter != h.RetryAfter {
		t.Errorf("native answered %d %s %q retry %s,\nHTTP answered %d %s %q retry %s",
			n.Status, n.Code, n.Message, n.RetryAfter, h.Status, h.Code, h.Message, h.RetryAfter)
	}
}

// TestStoreRefusalsMatchHTTP: the refusals that come from the store, a
// full disk (disk_full) and a failed fsync (unavailable), answer alike on
// both transports, against the real engine.
func TestStoreRefusalsMatchHTTP(t *testing.T) {
	rs := &refusingStore{Store: memstore.New()}
	st := startStackOn(t, engine.Config{}, "", rs, nil)
	ctx := t.Context()
	for range 2 {
		if _, err := st.client.Enqueue(ctx, "r", []byte("x"), httpapi.EnqueueOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// One leased job per transport: an ack whose sync failed is committed.
	a, b := st.enqueueAndLease(t, "q"), st.enqueueAndLease(t, "q")
	const nd = "application/x-ndjson"

	rs.full.Store(true)
	t.Run("disk full enqueue", func(t *testing.T) {
		sameRefusal(t, "disk_full", st.httpRefusal(t, "/v1/queues/q/jobs", "", "x"),
			st.nativeRefusal(t, opEnqueue, "q", nil, []byte("x")))
	})
	t.Run("disk full batch", func(t *testing.T) {
		sameRefusal(t, "disk_full", st.httpRefusal(t, "/v1/queues/q/batch", nd, `{"payload":{"a":1}}`),
			st.nativeRefusal(t, opBatch, "q", nil, batchData(nil)))
	})
	rs.full.Store(false)

	rs.syncFails.Store(true)
	t.Run("sync failed enqueue", func(t *testing.T) {
		sameRefusal(t, "unavailable", st.httpRefusal(t, "/v1/queues/q/jobs", "", "x"),
			st.nativeRefusal(t, opEnqueue, "q", nil, []byte("x")))
	})
	t.Run("sync failed lease", func(t *testing.T) {
		sameRefusal(t, "unavailable", st.httpRefusal(t, "/v1/queues/r/lease", "", ""),
			st.nativeRefusal(t, opLease, "r", nil, nil))
	})
	t.Run("sync failed ack", func(t *testing.T) {
		sameRefusal(t, "unavailable", st.httpRefusal(t, "/v1/jobs/"+a.ID+"/ack?lease="+a.Lease.ID, "", ""),
			st.nativeRefusal(t, opAck, b.ID, []param{{"lease", b.Lease.ID}}, nil))
	})
	rs.syncFails.Store(false)

	if _, err := st.client.Enqueue(ctx, "q", []byte("x"), httpapi.EnqueueOptions{}); err != nil {
		t.Errorf("enqueue once the store is well again: %v", err)
	}
}

// injecting is the real engine with one error injected into Ack.
type injecting struct {
	*engine.Engine
	err atomic.Pointer[error]
}

func (e *injecting) Ack(ctx context.Context, id job.ID, lease string, result []byte) error {
	if p := e.err.Load(); p != nil {
		return *p
	}
	return e.Engine.Ack(ctx, id, lease, result)
}

// TestEveryRefusalCodeMatchesHTTP: every error the engine can answer
// becomes the same status, code, message and retry hint on both
// transports. Some are reached on the real engine above and in
// TestRefusalsMatchHTTP; conflict is answered by no operation the native
// protocol carries (only by cancel and retry of the admin API), so each is
// injected here into the ack both transports call.
func TestEveryRefusalCodeMatchesHTTP(t *testing.T) {
	var inj *injecting
	st := startStackOn(t, engine.Config{}, "", memstore.New(), func(e *engine.Engine) servedEngine {
		inj = &injecting{Engine: e}
		return inj
	})
	const id = "00000000000fffff"
	for _, tc := range []struct {
		code string
		err  error
	}{
		{"invalid_argument", fmt.Errorf("%w: lease: empty", job.ErrInvalidArgument)},
		{"invalid_queue", job.ErrInvalidQueue},
		{"not_found", fmt.Errorf("job %s: %w", id, job.ErrNotFound)},
		{"unknown_queue", fmt.Errorf("%w: \"nope\" (strict_queues)", job.ErrUnknownQueue)},
		{"lease_lost", job.ErrLeaseLost},
		{"conflict", fmt.Errorf("job %s is leased: %w", id, job.ErrConflict)},
		{"payload_too_large", job.ErrTooLarge},
		{"queue_full", job.Retry(fmt.Errorf("%w: max_depth 10", job.ErrQueueFull), 2500*time.Millisecond)},
		{"rate_limited", job.Retry(job.ErrRateLimited, 200*time.Millisecond)},
		{"shed", job.Retry(job.ErrShed, 10*time.Second)},
		{"disk_full", job.Retry(fmt.Errorf("%w: no space left on device", job.ErrDiskFull), 5*time.Second)},
		{"shutting_down", job.ErrShuttingDown},
		{"unavailable", job.Retry(fmt.Errorf("%w: commit: disk on fire", job.ErrUnavailable), 4*time.Second)},
		{"unavailable", context.DeadlineExceeded},
		{"internal", errors.New("badger: value log corrupt")},
	} {
		t.Run(tc.code+" "+tc.err.Error(), func(t *testing.T) {
			inj.err.Store(&tc.err)
			defer inj.err.Store(nil)
			sameRefusal(t, tc.code, st.httpRefusal(t, "/v1/jobs/"+id+"/ack?lease=l", "", ""),
				st.nativeRefusal(t, opAck, id, []param{{"lease", "l"}}, nil))
		})
	}
}
