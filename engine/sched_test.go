package engine_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
	"github.com/edgeq/edgeq/engine/store"
)

// recorder is a handler that sleeps d per job and records when each job
// started and how long it waited since it was created.
type recorder struct {
	d       time.Duration
	verdict engine.Outcome
	mu      sync.Mutex
	waits   map[string][]time.Duration // by queue
	done    map[string]int
	running map[string]int
	peak    map[string]int
}

func newRecorder(d time.Duration) *recorder {
	return &recorder{d: d, verdict: engine.Outcome{Verdict: engine.Ack}, waits: map[string][]time.Duration{}, done: map[string]int{}, running: map[string]int{}, peak: map[string]int{}}
}

func (r *recorder) Handle(ctx context.Context, j *job.Job) engine.Outcome {
	r.mu.Lock()
	r.waits[j.Queue] = append(r.waits[j.Queue], time.Since(j.CreatedAt))
	r.running[j.Queue]++
	r.peak[j.Queue] = max(r.peak[j.Queue], r.running[j.Queue])
	r.mu.Unlock()
	var cancelled bool
	select {
	case <-time.After(r.d):
	case <-ctx.Done():
		cancelled = true
	}
	r.mu.Lock()
	r.running[j.Queue]--
	r.done[j.Queue]++
	r.mu.Unlock()
	if cancelled {
		return engine.Outcome{Verdict: engine.Retry, Error: "cancelled"}
	}
	return r.verdict
}

func (r *recorder) snapshot(q string) (waits []time.Duration, done, running int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.waits[q]), r.done[q], r.running[q]
}

func p99(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)*99)/100]
}

// stopFast stops the engine giving running jobs no grace.
func stopFast(t *testing.T, e *engine.Engine) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e.Stop(ctx)
}

// startSched starts an engine that is stopped without grace at cleanup
// (inside the synctest bubble, so a failing test does not leak workers).
func startSched(t *testing.T, cfg engine.Config, st store.Store) *engine.Engine {
	t.Helper()
	e, err := engine.New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopFast(t, e) })
	return e
}

// TestBulkFloodDoesNotStarveCriticalOrNormal is SPEC 1.2's incident: a bulk
// backlog saturates every worker; critical and normal jobs that arrive then
// wait at most about one job slot, and bulk keeps making progress.
func TestBulkFloodDoesNotStarveCriticalOrNormal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const slot = 200 * time.Millisecond
		rec := newRecorder(slot)
		e := startSched(t, engine.Config{Workers: 4, Queues: map[string]engine.QueueConfig{
			"sync":   {Class: job.ClassBulk, Handler: rec},
			"notify": {Class: job.ClassCritical, Handler: rec},
			"orders": {Class: job.ClassNormal, Handler: rec},
		}}, memstore.New())
		bulk := make([]job.New, 1000)
		for range 3 {
			if _, err := e.EnqueueBatch(t.Context(), "sync", bulk); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(slot / 2)
		synctest.Wait()
		if _, _, running := rec.snapshot("sync"); running != 4 {
			t.Fatalf("bulk runs %d jobs, want all 4 workers", running)
		}
		// Critical and normal jobs trickle in while bulk saturates.
		for i := range 100 {
			enqueue(t, e, job.New{Queue: "notify"})
			if i%2 == 0 {
				enqueue(t, e, job.New{Queue: "orders"})
			}
			time.Sleep(700 * time.Millisecond)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		for _, q := range []string{"notify", "orders"} {
			waits, done, _ := rec.snapshot(q)
			if len(waits) == 0 || done == 0 {
				t.Fatalf("%s never ran", q)
			}
			if got := p99(waits); got > slot {
				t.Errorf("%s p99 wait = %s, want within one job slot (%s)", q, got, slot)
			}
		}
		_, bulkDone, _ := rec.snapshot("sync")
		if bulkDone < 100 {
			t.Errorf("bulk completed %d jobs in ~72s of 4 workers, want steady progress", bulkDone)
		}
	})
}

func TestReserveGetsWorkersWithinOneSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const slot = time.Second
		rec := newRecorder(slot)
		e := startSched(t, engine.Config{Workers: 4, Queues: map[string]engine.QueueConfig{
			"flood":    {Class: job.ClassHigh, Handler: rec},
			"reserved": {Class: job.ClassBulk, Reserve: 2, Handler: rec},
		}}, memstore.New())
		e.EnqueueBatch(t.Context(), "flood", make([]job.New, 500))
		time.Sleep(slot / 2)
		e.EnqueueBatch(t.Context(), "reserved", make([]job.New, 20))
		time.Sleep(slot)
		synctest.Wait()
		// Its reserve is guaranteed; beyond it the queue competes by weight.
		if _, _, running := rec.snapshot("reserved"); running < 2 {
			t.Errorf("reserved queue runs %d jobs one slot after its work arrived, want at least 2", running)
		}
		if _, _, running := rec.snapshot("flood"); running < 1 {
			t.Errorf("flood runs %d, want the unreserved workers", running)
		}
	})
}

func TestWeightedShares(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder(100 * time.Millisecond)
		queues := map[string]job.Class{"h": job.ClassHigh, "n": job.ClassNormal, "l": job.ClassLow, "b": job.ClassBulk}
		cfg := engine.Config{Workers: 4, Queues: map[string]engine.QueueConfig{}}
		for q, c := range queues {
			cfg.Queues[q] = engine.QueueConfig{Class: c, Handler: rec}
		}
		e := startSched(t, cfg, memstore.New())
		// Backlogs sized so every class stays backlogged for the whole
		// window (20s × 4 workers / 100ms = 800 jobs, 8/15 of them high).
		for q, n := range map[string]int{"h": 600, "n": 300, "l": 150, "b": 100} {
			e.EnqueueBatch(t.Context(), q, make([]job.New, n))
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		total := 0
		done := map[string]int{}
		for q := range queues {
			_, done[q], _ = rec.snapshot(q)
			total += done[q]
		}
		weights := map[string]float64{"h": 8, "n": 4, "l": 2, "b": 1}
		for q, w := range weights {
			want := float64(total) * w / 15
			if got := float64(done[q]); got < want*0.9 || got > want*1.1 {
				t.Errorf("queue %s (weight %g) completed %d of %d, want %.0f ±10%%", q, w, done[q], total, want)
			}
		}
	})
}

func TestConcurrencyCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder(time.Second)
		e := startSched(t, engine.Config{Workers: 8, Queues: map[string]engine.QueueConfig{
			"capped": {Concurrency: 3, Handler: rec},
		}}, memstore.New())
		e.EnqueueBatch(t.Context(), "capped", make([]job.New, 50))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		rec.mu.Lock()
		peak := rec.peak["capped"]
		rec.mu.Unlock()
		if peak != 3 {
			t.Errorf("peak running = %d, want the cap 3", peak)
		}
	})
}

type scripted struct {
	mu   sync.Mutex
	outs []engine.Outcome
	runs int
}

func (s *scripted) Handle(ctx context.Context, j *job.Job) engine.Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs++
	if len(s.outs) == 0 {
		return engine.Outcome{Verdict: engine.Ack}
	}
	o := s.outs[0]
	s.outs = s.outs[1:]
	return o
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs
}

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := engine.Outcome{Verdict: engine.Retry, Error: "connection refused", TargetFailed: true}
		h := &scripted{outs: []engine.Outcome{down, down, down, down}}
		e := startSched(t, engine.Config{Workers: 1, Backoff: engine.Backoff{Initial: time.Second, Max: time.Second}, Queues: map[string]engine.QueueConfig{
			"hook": {Handler: h, MaxAttempts: 10, Breaker: engine.Breaker{Failures: 3, CoolDown: 30 * time.Second}},
		}}, memstore.New())
		e.EnqueueBatch(t.Context(), "hook", make([]job.New, 5))
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if got := h.count(); got != 3 {
			t.Fatalf("ran %d jobs before the breaker opened, want 3", got)
		}
		if s := stats(t, e, "hook"); s.Breaker != engine.BreakerOpen {
			t.Fatalf("breaker = %s, want open", s.Breaker)
		}
		time.Sleep(29 * time.Second)
		synctest.Wait()
		if got := h.count(); got != 3 {
			t.Fatalf("ran %d jobs during the cool-down, want none beyond 3", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := h.count(); got != 4 {
			t.Fatalf("after the cool-down ran %d, want exactly one probe (4)", got)
		}
		if s := stats(t, e, "hook"); s.Breaker != engine.BreakerOpen {
			t.Fatalf("a failed probe left the breaker %s, want open", s.Breaker)
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if s := stats(t, e, "hook"); s.Breaker != engine.BreakerClosed || s.Ready+s.Delayed+s.Leased != 0 || s.CompletedTotal != 5 {
			t.Errorf("after a good probe: %+v, want closed and all 5 done", s)
		}
	})
}

func TestHandlerPanicFailsTheJobNotTheProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := engine.HandlerFunc(func(ctx context.Context, j *job.Job) engine.Outcome { panic("boom") })
		e := startSched(t, engine.Config{Queues: map[string]engine.QueueConfig{"p": {Handler: h, MaxAttempts: 1}}}, memstore.New())
		r := enqueue(t, e, job.New{Queue: "p"})
		time.Sleep(time.Second)
		synctest.Wait()
		got, err := e.Job(t.Context(), r.ID)
		if err != nil || got.State != job.StateDead || got.LastError != "handler panic: boom" {
			t.Errorf("job after a panicking handler = %+v, %v", got, err)
		}
	})
}

func TestExecVerdicts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &scripted{outs: []engine.Outcome{{Verdict: engine.Dead, Error: "bad data"}}}
		e := startSched(t, engine.Config{Queues: map[string]engine.QueueConfig{"v": {Handler: h}}}, memstore.New())
		bad := enqueue(t, e, job.New{Queue: "v"})
		time.Sleep(time.Second)
		synctest.Wait()
		good := enqueue(t, e, job.New{Queue: "v"})
		time.Sleep(time.Second)
		synctest.Wait()
		if j, _ := e.Job(t.Context(), bad.ID); j == nil || j.State != job.StateDead || j.LastError != "bad data" {
			t.Errorf("dead verdict: %+v", j)
		}
		if _, err := e.Job(t.Context(), good.ID); !errors.Is(err, job.ErrNotFound) {
			t.Errorf("acked job still there: %v", err)
		}
	})
}

func TestShedding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder(time.Second)
		e := startSched(t, engine.Config{Queues: map[string]engine.QueueConfig{
			"bulk":   {Class: job.ClassBulk, Handler: rec},
			"low":    {Class: job.ClassLow},
			"normal": {Class: job.ClassNormal},
			"crit":   {Class: job.ClassCritical},
			"exempt": {Class: job.ClassBulk, ShedAt: "never"},
		}}, memstore.New())
		e.SetLevel(job.LevelElevated)
		enqueue(t, e, job.New{Queue: "bulk"}) // accepted at elevated, not dispatched
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if _, _, running := rec.snapshot("bulk"); running != 0 || stats(t, e, "bulk").Ready != 1 {
			t.Errorf("bulk dispatched at elevated")
		}
		e.SetLevel(job.LevelHigh)
		for q, want := range map[string]error{"bulk": job.ErrShed, "low": job.ErrShed, "normal": nil, "crit": nil, "exempt": nil} {
			if _, err := e.Enqueue(t.Context(), job.New{Queue: q}); !errors.Is(err, want) && (want != nil || err != nil) {
				t.Errorf("at high, enqueue to %s = %v, want %v", q, err, want)
			}
		}
		if sh := e.Shedding(); sh.Level != job.LevelHigh || !slices.Equal(sh.Paused, []string{"bulk", "low"}) || !slices.Equal(sh.Refused, []string{"bulk", "low"}) {
			t.Errorf("Shedding() at high = %+v, want bulk and low paused and refused", sh)
		}
		e.SetLevel(job.LevelCritical)
		if sh := e.Shedding(); !slices.Equal(sh.Paused, []string{"bulk", "low", "normal"}) || !slices.Equal(sh.Refused, []string{"bulk", "low", "normal"}) {
			t.Errorf("Shedding() at critical = %+v, want all but crit and exempt", sh)
		}
		if _, err := e.Enqueue(t.Context(), job.New{Queue: "normal"}); !errors.Is(err, job.ErrShed) {
			t.Errorf("at critical, normal enqueue = %v, want ErrShed", err)
		}
		enqueue(t, e, job.New{Queue: "crit"})
		e.SetLevel(job.LevelNormal)
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if _, _, running := rec.snapshot("bulk"); running != 1 {
			t.Errorf("bulk not dispatched after the level fell back to normal")
		}
		if s := stats(t, e, "bulk"); s.RejectedTotal != 1 {
			t.Errorf("bulk rejected_total = %d, want 1", s.RejectedTotal)
		}
	})
}

// TestShutdownGraceThenCancel: running jobs finish within the grace; a job
// still running at its end is cancelled and its outcome is recorded before
// the committer stops.
func TestShutdownGraceThenCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.New()
		rec := newRecorder(time.Minute)
		e := startSched(t, engine.Config{Workers: 2, Queues: map[string]engine.QueueConfig{"long": {Handler: rec}}}, st)
		e.EnqueueBatch(t.Context(), "long", make([]job.New, 2))
		time.Sleep(time.Second)
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		t0 := time.Now()
		err := e.Stop(ctx)
		if err == nil || time.Since(t0) != 5*time.Second {
			t.Errorf("Stop = %v after %s, want an error after the 5s grace", err, time.Since(t0))
		}
		e2 := start(t, st, engine.Config{})
		if s := stats(t, e2, "long"); s.Ready+s.Delayed != 2 || s.Leased != 0 {
			t.Errorf("after restart %+v: the cancelled jobs should be back for a retry", s)
		}
	})
}

func TestReservedCriticalSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder(10 * time.Second)
		e := startSched(t, engine.Config{Workers: 4, Queues: map[string]engine.QueueConfig{
			"bulk": {Class: job.ClassBulk, Handler: rec},
			"crit": {Class: job.ClassCritical, Handler: rec},
		}}, memstore.New())
		e.SetWorkers(4, 1)
		e.EnqueueBatch(t.Context(), "bulk", make([]job.New, 50))
		time.Sleep(time.Second)
		synctest.Wait()
		if _, _, running := rec.snapshot("bulk"); running != 3 {
			t.Fatalf("bulk runs %d with one slot reserved for critical, want 3", running)
		}
		enqueue(t, e, job.New{Queue: "crit"})
		synctest.Wait()
		if waits, _, running := rec.snapshot("crit"); running != 1 || waits[0] != 0 {
			t.Errorf("critical job: running %d, waits %v; want it started at once", running, waits)
		}
		if s := e.Symptoms(); s.WaitP99 != 0 {
			t.Errorf("wait p99 = %s, want 0 (critical started at once)", s.WaitP99)
		}
	})
}

func TestReconfigureLive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder(time.Second)
		e := startSched(t, engine.Config{Queues: map[string]engine.QueueConfig{
			"ingest": {Rate: 1, Burst: 1},
			"pull":   {}, // no handler: served to pull workers before and after
		}}, memstore.New())
		enqueue(t, e, job.New{Queue: "pull"})
		enqueue(t, e, job.New{Queue: "ingest"})
		if _, err := e.Enqueue(t.Context(), job.New{Queue: "ingest"}); !errors.Is(err, job.ErrRateLimited) {
			t.Fatalf("second job at 1/s = %v, want ErrRateLimited", err)
		}
		bad := map[string]engine.QueueConfig{"ingest": {Reserve: 5, Concurrency: 2}}
		if err := e.Reconfigure(bad); err == nil {
			t.Fatal("an invalid config was accepted")
		}
		if _, err := e.Enqueue(t.Context(), job.New{Queue: "ingest"}); !errors.Is(err, job.ErrRateLimited) {
			t.Errorf("the refused config changed the rate: %v", err)
		}
		err := e.Reconfigure(map[string]engine.QueueConfig{
			"ingest": {Class: job.ClassCritical, Handler: rec},
			"pull":   {Class: job.ClassLow},
		})
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			enqueue(t, e, job.New{Queue: "ingest"}) // no rate any more
		}
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if _, _, running := rec.snapshot("ingest"); running == 0 {
			t.Error("the handler added by Reconfigure runs nothing")
		}
		if s := stats(t, e, "ingest"); s.Class != job.ClassCritical || s.EnqueuedTotal != 11 {
			t.Errorf("after reload: %+v, want class critical and the counters kept", s)
		}
		if j := lease1(t, e, "pull", 0); j == nil || stats(t, e, "pull").Class != job.ClassLow {
			t.Errorf("the pull queue after reload: class %s", stats(t, e, "pull").Class)
		}
	})
}

// TestUnreachedTargetKeepsAttempts is an uplink that is down (issue 19):
// its retries say the job never reached the target, so an outage longer
// than max_attempts tries never sends a job dead, and the job keeps the
// attempts it had for failures of its own.
func TestUnreachedTargetKeepsAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := engine.Outcome{Verdict: engine.Retry, Error: "uplink down", TargetFailed: true, Unreached: true}
		outs := make([]engine.Outcome, 10)
		for i := range outs {
			outs[i] = down
		}
		h := &scripted{outs: outs}
		e := startSched(t, engine.Config{Workers: 1, Backoff: engine.Backoff{Initial: time.Second, Max: time.Second}, Queues: map[string]engine.QueueConfig{
			"up": {Handler: h, MaxAttempts: 2},
		}}, memstore.New())
		e.EnqueueBatch(t.Context(), "up", make([]job.New, 1))
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := h.count(); got != 11 {
			t.Fatalf("ran %d times, want 10 unreached tries and the one that made it", got)
		}
		s := stats(t, e, "up")
		if s.Dead != 0 || s.CompletedTotal != 1 {
			t.Fatalf("after 10 unreached tries with max_attempts 2: %+v, want the job done, none dead", s)
		}
	})
}
