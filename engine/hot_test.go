package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
)

// payloadOf is job i's payload: its number, padded to size bytes.
func payloadOf(i, size int) []byte {
	p := fmt.Appendf(nil, "job-%06d-", i)
	return append(p, bytes.Repeat([]byte{'x'}, size-len(p))...)
}

// drainInOrder leases every ready job of q in batches of max, checks FIFO
// order and payloads against want (job numbers in enqueue order) and acks
// each.
func drainInOrder(t *testing.T, e *engine.Engine, q string, want []int, size int) {
	t.Helper()
	got := 0
	var last job.ID
	for {
		jobs, err := e.Lease(t.Context(), engine.LeaseRequest{Queue: q, Max: 100, TTR: time.Hour})
		if err != nil {
			t.Fatalf("Lease: %v", err)
		}
		if len(jobs) == 0 {
			break
		}
		for _, j := range jobs {
			if j.ID <= last {
				t.Fatalf("job %s leased after %s: not FIFO", j.ID, last)
			}
			last = j.ID
			if got >= len(want) {
				t.Fatalf("leased job %s beyond the %d expected", j.ID, len(want))
			}
			if p := payloadOf(want[got], size); !bytes.Equal(j.Payload, p) {
				t.Fatalf("job %d of %d (%s): payload %.20q, want %.20q", got, len(want), j.ID, j.Payload, p)
			}
			got++
			if err := e.Ack(t.Context(), j.ID, j.LeaseID, nil); err != nil {
				t.Fatalf("Ack %s: %v", j.ID, err)
			}
		}
	}
	if got != len(want) {
		t.Fatalf("leased %d jobs, want %d", got, len(want))
	}
}

// TestHotTailOverflowKeepsOrder fills a queue past the in-memory tail's
// budget, cancels jobs on both sides of the point where it overflowed,
// and leases everything: FIFO, each job once with its own payload, the
// cancelled ones never; then, with the queue empty again, the tail serves
// new jobs from memory and still in order.
func TestHotTailOverflowKeepsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.New()
		e := start(t, st, engine.Config{})
		const n, size = 3000, 1000 // about 4 MiB: twice the budget
		ids := make([]job.ID, n)
		for i := range n {
			r := enqueue(t, e, job.New{Queue: "h", Payload: payloadOf(i, size)})
			ids[i] = r.ID
		}
		cancelled := map[int]bool{0: true, 10: true, 1500: true, 2999: true}
		for i := range cancelled {
			if err := e.Cancel(t.Context(), ids[i]); err != nil {
				t.Fatalf("Cancel: %v", err)
			}
		}
		var want []int
		for i := range n {
			if !cancelled[i] {
				want = append(want, i)
			}
		}
		drainInOrder(t, e, "h", want, size)
		for i := n; i < n+50; i++ {
			enqueue(t, e, job.New{Queue: "h", Payload: payloadOf(i, size)})
		}
		want = want[:0]
		for i := n; i < n+50; i++ {
			want = append(want, i)
		}
		drainInOrder(t, e, "h", want, size)
		if s := stats(t, e, "h"); s.Ready != 0 || s.Leased != 0 {
			t.Errorf("stats after draining: %+v", s)
		}
	})
}

// TestHotTailRetriesAndRestart: jobs that become ready again (nack, lease
// expiry) and jobs left over a restart are leased in ReadySeq order with
// their payloads, whether the tail keeps them or the store has them.
func TestHotTailRetriesAndRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.New()
		e, err := engine.New(engine.Config{}, st)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			enqueue(t, e, job.New{Queue: "r", Payload: payloadOf(i, 64)})
		}
		a := lease1(t, e, "r", time.Hour)
		if _, err := e.Nack(t.Context(), a.ID, a.LeaseID, engine.NackBackoff, "again"); err != nil {
			t.Fatalf("Nack: %v", err)
		}
		b := lease1(t, e, "r", time.Second) // job 1; its lease expires
		time.Sleep(2 * time.Second)
		synctest.Wait()
		// Ready now: 2, 3, 4, then 0 (nacked; its backoff may delay it) and 1 (expired).
		if err := e.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		e2 := start(t, st, engine.Config{})
		time.Sleep(time.Minute) // any backoff is over
		synctest.Wait()
		seen := map[job.ID]bool{}
		var order []job.ID
		for {
			jobs, err := e2.Lease(t.Context(), engine.LeaseRequest{Queue: "r", Max: 10, TTR: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if len(jobs) == 0 {
				break
			}
			for _, j := range jobs {
				if seen[j.ID] {
					t.Fatalf("job %s leased twice", j.ID)
				}
				seen[j.ID] = true
				order = append(order, j.ID)
				if len(j.Payload) != 64 {
					t.Errorf("job %s payload %d bytes, want 64", j.ID, len(j.Payload))
				}
			}
		}
		if len(order) != 5 || !seen[a.ID] || !seen[b.ID] {
			t.Fatalf("leased %v after restart, want all 5 jobs including %s and %s", order, a.ID, b.ID)
		}
	})
}

// TestHotTailPurgeAfterNackNow: a job leased from the hot tail and nacked
// back to ready at once is purged from the tail too, so that the next
// lease does not take the purged job (it answered 503 "not found").
func TestHotTailPurgeAfterNackNow(t *testing.T) {
	e, err := engine.New(engine.Config{}, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	ctx := t.Context()
	if _, err := e.Enqueue(ctx, job.New{Queue: "q", Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	js, err := e.Lease(ctx, engine.LeaseRequest{Queue: "q", Max: 1})
	if err != nil || len(js) != 1 {
		t.Fatalf("Lease = %v, %v", js, err)
	}
	if st, err := e.Nack(ctx, js[0].ID, js[0].LeaseID, 0, "again"); err != nil || st != job.StateReady {
		t.Fatalf("Nack(0) = %v, %v; want ready", st, err)
	}
	if n, err := e.Purge(ctx, "q"); err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v; want 1", n, err)
	}
	r, err := e.Enqueue(ctx, job.New{Queue: "q", Payload: []byte("y")})
	if err != nil {
		t.Fatal(err)
	}
	js, err = e.Lease(ctx, engine.LeaseRequest{Queue: "q", Max: 10})
	if err != nil || len(js) != 1 || js[0].ID != r.ID {
		t.Fatalf("Lease after the purge = %v, %v; want only %s", js, err, r.ID)
	}
}
