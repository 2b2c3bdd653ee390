package engine_test

import (
	"errors"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
)

// TestKeyModes (issue 20 item 3): window answers the key's first job
// whatever became of it; active only while that job waits or runs;
// replace gives a waiting job the new payload in its place, and enqueues
// behind a leased one. A job's own key_mode overrides its queue's.
func TestKeyModes(t *testing.T) {
	e := start(t, memstore.New(), engine.Config{Queues: map[string]engine.QueueConfig{
		"a": {KeyMode: job.KeyActive},
		"r": {KeyMode: job.KeyReplace},
	}})
	enq := func(n job.New) job.Result {
		t.Helper()
		r, err := e.Enqueue(t.Context(), n)
		if err != nil {
			t.Fatalf("Enqueue(%s, key %q): %v", n.Queue, n.Key, err)
		}
		return r
	}
	ack := func(j *job.Job) {
		t.Helper()
		if err := e.Ack(t.Context(), j.ID, j.LeaseID, nil); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("window", func(t *testing.T) {
		first := enq(job.New{Queue: "w", Key: "k"})
		ack(lease1(t, e, "w", 0))
		if r := enq(job.New{Queue: "w", Key: "k"}); !r.Duplicate || r.ID != first.ID || r.State != job.StateDone {
			t.Errorf("window key after its job finished: %+v, want a duplicate of %s, done", r, first.ID)
		}
	})

	t.Run("active", func(t *testing.T) {
		first := enq(job.New{Queue: "a", Key: "k"})
		if r := enq(job.New{Queue: "a", Key: "k"}); !r.Duplicate || r.ID != first.ID {
			t.Errorf("active key of a ready job: %+v, want a duplicate", r)
		}
		l := lease1(t, e, "a", 0)
		if r := enq(job.New{Queue: "a", Key: "k"}); !r.Duplicate || r.ID != first.ID || r.State != job.StateLeased {
			t.Errorf("active key of a leased job: %+v, want a duplicate, leased", r)
		}
		ack(l)
		second := enq(job.New{Queue: "a", Key: "k"})
		if second.Duplicate || second.ID == first.ID {
			t.Fatalf("active key after its job finished: %+v, want a new job", second)
		}
		l = lease1(t, e, "a", 0)
		if err := e.Fail(t.Context(), l.ID, l.LeaseID, "bad"); err != nil {
			t.Fatal(err)
		}
		if r := enq(job.New{Queue: "a", Key: "k"}); r.Duplicate || r.ID == second.ID {
			t.Errorf("active key after its job went dead: %+v, want a new job", r)
		}
		// A job's own mode wins over its queue's (window here).
		w := enq(job.New{Queue: "w", Key: "j", KeyMode: job.KeyActive})
		ack(lease1(t, e, "w", 0))
		if r := enq(job.New{Queue: "w", Key: "j", KeyMode: job.KeyActive}); r.Duplicate || r.ID == w.ID {
			t.Errorf("key_mode=active on a window queue: %+v, want a new job", r)
		}
		ack(lease1(t, e, "w", 0))
	})

	t.Run("replace", func(t *testing.T) {
		a := enq(job.New{Queue: "r", Key: "set", Payload: []byte("version one"), Headers: map[string]string{"h": "1"}})
		b := enq(job.New{Queue: "r", Payload: []byte("other")})
		r := enq(job.New{Queue: "r", Key: "set", Payload: []byte("v2"), ContentType: "text/plain", Headers: map[string]string{"h": "2"}})
		if !r.Replaced || r.Duplicate || r.ID != a.ID || r.State != job.StateReady {
			t.Fatalf("replace of a ready job: %+v, want %s replaced", r, a.ID)
		}
		if qs, _ := e.QueueStats("r"); qs.Ready != 2 || qs.EnqueuedTotal != 2 || qs.Bytes != int64(len("v2")+len("other")) {
			t.Errorf("after a replace: ready %d, enqueued %d, bytes %d; want 2, 2 and 7", qs.Ready, qs.EnqueuedTotal, qs.Bytes)
		}
		la := lease1(t, e, "r", 0)
		if la.ID != a.ID || string(la.Payload) != "v2" || la.Headers["h"] != "2" || la.ContentType != "text/plain" {
			t.Fatalf("first lease: %s %q %v %q; want %s, its place kept, with v2, h=2, text/plain", la.ID, la.Payload, la.Headers, la.ContentType, a.ID)
		}
		// Leased: not touched; the new job waits behind it and takes the key.
		c := enq(job.New{Queue: "r", Key: "set", Payload: []byte("v3")})
		if c.Replaced || c.Duplicate || c.ID == a.ID {
			t.Fatalf("replace while leased: %+v, want a new job", c)
		}
		if r := enq(job.New{Queue: "r", Key: "set", Payload: []byte("v4")}); !r.Replaced || r.ID != c.ID {
			t.Errorf("replace after that: %+v, want %s replaced", r, c.ID)
		}
		ack(la)
		if lb := lease1(t, e, "r", 0); lb.ID != b.ID {
			t.Errorf("second lease: %s, want %s", lb.ID, b.ID)
		} else {
			ack(lb)
		}
		if lc := lease1(t, e, "r", 0); lc.ID != c.ID || string(lc.Payload) != "v4" {
			t.Errorf("third lease: %s %q, want %s with v4", lc.ID, lc.Payload, c.ID)
		} else {
			ack(lc)
		}

		// A delayed job keeps its run time; a large payload replaces too.
		d := enq(job.New{Queue: "r", Key: "later", Payload: []byte("d1"), Delay: time.Hour})
		big := make([]byte, 5000)
		if r := enq(job.New{Queue: "r", Key: "later", Payload: big}); !r.Replaced || r.ID != d.ID || r.State != job.StateDelayed {
			t.Fatalf("replace of a delayed job: %+v", r)
		}
		j, err := e.Job(t.Context(), d.ID)
		if err != nil || len(j.Payload) != len(big) || j.State != job.StateDelayed {
			t.Errorf("replaced delayed job: %v, %v", j, err)
		}
	})

	t.Run("refused", func(t *testing.T) {
		if _, err := e.Enqueue(t.Context(), job.New{Queue: "w", KeyMode: job.KeyReplace}); !errors.Is(err, job.ErrInvalidArgument) {
			t.Errorf("key_mode without a key: %v, want ErrInvalidArgument", err)
		}
		if _, err := e.Enqueue(t.Context(), job.New{Queue: "w", Key: "x", KeyMode: 9}); !errors.Is(err, job.ErrInvalidArgument) {
			t.Errorf("unknown key_mode: %v, want ErrInvalidArgument", err)
		}
	})
}
