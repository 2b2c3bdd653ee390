package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgeq/edgeq/client"
	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
	"github.com/edgeq/edgeq/transport/httpapi"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// daemon serves the HTTP API on 127.0.0.1 over a real engine and the
// memory store, until the test ends.
func daemon(t *testing.T, cfg engine.Config) (*engine.Engine, *client.Client) {
	t.Helper()
	eng, addr := serve(t, cfg)
	c := client.New("http://"+addr, "")
	t.Cleanup(c.CloseIdleConnections)
	return eng, c
}

// serve is daemon without its client: it answers the engine and the
// server's address, for a test that brings its own client.
func serve(t *testing.T, cfg engine.Config) (*engine.Engine, string) {
	t.Helper()
	eng, err := engine.New(cfg, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Stop(context.Background()) })
	s, err := httpapi.New(httpapi.Config{Addr: "127.0.0.1:0"}, eng)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return eng, s.Addr().String()
}

func enqueueN(t *testing.T, c *client.Client, queue string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		r, err := c.Enqueue(t.Context(), queue, fmt.Appendf(nil, `{"n":%d}`, i), client.EnqueueOptions{ContentType: "application/json"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

// until polls cond every 10 ms for at most 20 s.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 20 s", what)
		}
	}
}

func stats(t *testing.T, eng *engine.Engine, q string) engine.QueueStats {
	t.Helper()
	s, err := eng.QueueStats(q)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run starts w.Run(h) and answers a stop function that cancels it and
// returns Run's answer.
func run(t *testing.T, w *client.Worker, h client.Handler) (stop func() error) {
	ctx, cancel := context.WithCancel(t.Context())
	res := make(chan error, 1)
	go func() { res <- w.Run(ctx, h) }()
	return func() error {
		cancel()
		select {
		case err := <-res:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return 30 s after its context ended")
			return nil
		}
	}
}

func TestWorkerRunsEachJobOnce(t *testing.T) {
	eng, c := daemon(t, engine.Config{})
	ids := enqueueN(t, c, "mail", 40)
	var mu sync.Mutex
	seen := map[string]int{}
	var running, most atomic.Int32
	stop := run(t, &client.Worker{Client: c, Queue: "mail", Concurrency: 4, Wait: time.Second}, func(ctx context.Context, j *client.Job) error {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		seen[j.ID]++
		mu.Unlock()
		return nil
	})
	until(t, "40 jobs acked", func() bool { return stats(t, eng, "mail").CompletedTotal == 40 })
	if err := stop(); err != nil {
		t.Fatalf("Run after a stop: %v", err)
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("job %s ran %d times", id, seen[id])
		}
	}
	if m := most.Load(); m > 4 || m < 2 {
		t.Errorf("at most %d jobs ran at once, want 2 to 4 (Concurrency 4)", m)
	}
}

func TestWorkerRetriesAndSendsDead(t *testing.T) {
	eng, c := daemon(t, engine.Config{Queues: map[string]engine.QueueConfig{
		"q": {Backoff: engine.Backoff{Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond}}}})
	ids := enqueueN(t, c, "q", 3)
	flaky, bad, panics := ids[0], ids[1], ids[2]
	var attempts sync.Map
	stop := run(t, &client.Worker{Client: c, Queue: "q", Wait: time.Second}, func(ctx context.Context, j *client.Job) error {
		attempts.Store(j.ID, j.Attempt)
		switch {
		case j.ID == flaky && j.Attempt == 1:
			return errors.New("modem busy")
		case j.ID == bad:
			return client.Dead(errors.New("no such printer"))
		case j.ID == panics && j.Attempt == 1:
			panic("nil map")
		}
		return nil
	})
	until(t, "2 acked, 1 dead", func() bool { s := stats(t, eng, "q"); return s.CompletedTotal == 2 && s.Dead == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if a, _ := attempts.Load(flaky); a != 2 {
		t.Errorf("the failing job ran %v attempts, want 2 (retried once)", a)
	}
	d, err := c.Job(t.Context(), bad)
	if err != nil || d.State != "dead" || d.LastError != "no such printer" || d.Attempt != 1 {
		t.Errorf("the Dead job: %+v, %v; want dead after 1 attempt with its error", d, err)
	}
	if a, _ := attempts.Load(panics); a != 2 {
		t.Errorf("the panicking job ran %v attempts, want 2", a)
	}
}

func TestWorkerExtendsTheLease(t *testing.T) {
	eng, c := daemon(t, engine.Config{})
	enqueueN(t, c, "slow", 1)
	var runs atomic.Int32
	stop := run(t, &client.Worker{Client: c, Queue: "slow", Concurrency: 2, TTR: time.Second, Wait: 200 * time.Millisecond},
		func(ctx context.Context, j *client.Job) error {
			runs.Add(1)
			select { // three TTRs: only extensions keep the lease
			case <-time.After(3 * time.Second):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	until(t, "the slow job acked", func() bool { return stats(t, eng, "slow").CompletedTotal == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("the job ran %d times: its lease expired while it ran", n)
	}
}

func TestWorkerStopsGracefully(t *testing.T) {
	eng, c := daemon(t, engine.Config{})
	ids := enqueueN(t, c, "g", 2)
	started, finish := make(chan string, 2), make(chan struct{})
	stop := run(t, &client.Worker{Client: c, Queue: "g", Concurrency: 1, Wait: time.Second, Grace: 10 * time.Second},
		func(ctx context.Context, j *client.Job) error {
			started <- j.ID
			<-finish
			return nil
		})
	first := <-started
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.Sleep(100 * time.Millisecond) // Run is waiting for the running job, not leasing
	close(finish)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if first != ids[0] || stats(t, eng, "g").CompletedTotal != 1 {
		t.Errorf("the running job %s was not acked at stop: %+v", first, stats(t, eng, "g"))
	}
	if j, _ := c.Job(t.Context(), ids[1]); j.State != "ready" || j.Attempt != 0 {
		t.Errorf("a job was leased after the stop: %+v", j)
	}
}

func TestWorkerReleasesAfterGrace(t *testing.T) {
	_, c := daemon(t, engine.Config{})
	ids := enqueueN(t, c, "h", 1)
	started := make(chan struct{})
	stop := run(t, &client.Worker{Client: c, Queue: "h", Wait: time.Second, Grace: 100 * time.Millisecond},
		func(ctx context.Context, j *client.Job) error {
			close(started)
			<-ctx.Done() // runs until the worker stops it hard
			return ctx.Err()
		})
	<-started
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	j, err := c.Job(t.Context(), ids[0])
	if err != nil || j.State != "ready" || j.Attempt != 1 || j.LastError != "worker stopped before the job finished" {
		t.Errorf("after the grace: %+v, %v; want ready again, attempt 1, released", j, err)
	}
}

func TestWorkerStopsOnRefusal(t *testing.T) {
	_, c := daemon(t, engine.Config{})
	err := (&client.Worker{Client: c, Queue: "Not A Queue"}).Run(t.Context(), func(context.Context, *client.Job) error { return nil })
	if !errors.Is(err, job.ErrInvalidQueue) {
		t.Errorf("Run on an invalid queue name: %v, want the invalid_queue refusal", err)
	}
	if err := (&client.Worker{Client: c}).Run(t.Context(), func(context.Context, *client.Job) error { return nil }); err == nil {
		t.Error("Run without a queue: nil error")
	}
}
