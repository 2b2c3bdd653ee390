package resource

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// scriptSampler answers with script(time since start); inside a synctest
// bubble the clock is fake, so a script is a recording replayed exactly.
type scriptSampler struct {
	start  time.Time
	script func(elapsed time.Duration) (Sample, error)
}

func (s *scriptSampler) Sample(context.Context) (Sample, error) {
	return s.script(time.Since(s.start))
}

func newScript(fn func(elapsed time.Duration) Sample) *scriptSampler {
	return &scriptSampler{start: time.Now(), script: func(e time.Duration) (Sample, error) { return fn(e), nil }}
}

// startGovernor runs g until the test's bubble ends it.
func startGovernor(t *testing.T, g *Governor) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := g.Run(ctx); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	return func() { cancel(); wg.Wait() }
}

// logBuffer is a log sink that the test may read while the governor writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestGovernor(t *testing.T, s Sampler, log *logBuffer) *Governor {
	t.Helper()
	cfg := Config{MinConcurrency: 1, MaxConcurrency: 8}
	if log != nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	g, err := New(cfg, s, func() Usage { return Usage{Running: 3, Limit: 8} })
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// memory is 50% except for 90% (elevated) from 10s to 40s and 95%
// (high) from 20s to 30s.
func pressureScript(e time.Duration) Sample {
	switch {
	case e >= 20*time.Second && e < 30*time.Second:
		return withMem(healthy(), 95)
	case e >= 10*time.Second && e < 40*time.Second:
		return withMem(healthy(), 90)
	}
	return withMem(healthy(), 50)
}

func TestGovernorEventsAndLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log logBuffer
		g := newTestGovernor(t, newScript(pressureScript), &log)
		var mu sync.Mutex
		var events []Event
		cancelSub := g.Subscribe(func(ev Event) { mu.Lock(); events = append(events, ev); mu.Unlock() })
		defer cancelSub()
		stop := startGovernor(t, g)
		time.Sleep(2*time.Minute + 500*time.Millisecond)
		stop()
		synctest.Wait()

		mu.Lock()
		defer mu.Unlock()
		var got []string
		for _, ev := range events {
			got = append(got, ev.From.String()+">"+ev.To.String())
		}
		// up at 10s and 20s; down (one dwell of calm each) at 45s, 60s, 75s
		want := "normal>elevated elevated>high high>elevated elevated>normal"
		if strings.Join(got, " ") != want {
			t.Fatalf("events = %v, want %s", got, want)
		}
		// Entering high cuts the limit in the same decision: 8 → 6.
		if events[1].Reason != "memory 95.0%" || events[1].Sample.MemPercent() != 95 || events[1].Concurrency != 6 {
			t.Errorf("high event = %+v", events[1])
		}
		lines := strings.Count(log.String(), `"msg":"governor level changed"`)
		if lines != len(events) {
			t.Errorf("%d log lines for %d level changes:\n%s", lines, len(events), log.String())
		}
		for _, attr := range []string{`"from":"elevated"`, `"to":"high"`, `"reason":"memory 95.0%"`, `"cpu":50`, `"mem":95`, `"psi_mem_some":0`, `"component":"governor"`} {
			if !strings.Contains(log.String(), attr) {
				t.Errorf("log lacks %s:\n%s", attr, log.String())
			}
		}
		if g.Level() != job.LevelNormal {
			t.Errorf("Level() = %s at the end, want normal", g.Level())
		}
	})
}

// A subscriber that never returns does not hold up sampling, deciding, or
// other subscribers.
func TestGovernorSlowSubscriber(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newTestGovernor(t, newScript(pressureScript), nil)
		release := make(chan struct{})
		stuck := g.Subscribe(func(Event) { <-release })
		var n int
		var mu sync.Mutex
		fast := g.Subscribe(func(Event) { mu.Lock(); n++; mu.Unlock() })
		stop := startGovernor(t, g)

		time.Sleep(25*time.Second + 500*time.Millisecond)
		if got := g.Status().Level; got != job.LevelHigh {
			t.Fatalf("level at 25s = %s, want high: the governor is stuck", got)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := g.Status().Level; got != job.LevelNormal {
			t.Fatalf("level at 85s = %s, want normal", got)
		}
		mu.Lock()
		if n != 4 {
			t.Errorf("fast subscriber got %d events, want 4", n)
		}
		mu.Unlock()
		stop()
		close(release)
		stuck()
		fast()
	})
}

func TestGovernorDrill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newTestGovernor(t, newScript(func(time.Duration) Sample { return healthy() }), nil)
		var mu sync.Mutex
		var events []Event
		defer g.Subscribe(func(ev Event) { mu.Lock(); events = append(events, ev); mu.Unlock() })()
		stop := startGovernor(t, g)
		defer stop()
		time.Sleep(5*time.Second + 500*time.Millisecond)

		start := time.Now()
		if err := g.Drill(job.LevelHigh, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		st := g.Status()
		if g.Level() != job.LevelHigh || st.Level != job.LevelHigh || st.Drill == nil ||
			st.Drill.Level != job.LevelHigh || !st.Drill.Until.Equal(start.Add(30*time.Second)) ||
			!strings.HasPrefix(st.Reason, "drill until ") {
			t.Fatalf("status right after Drill = %+v", st)
		}
		time.Sleep(29 * time.Second)
		if st := g.Status(); st.Level != job.LevelHigh || !strings.HasPrefix(st.Reason, "drill") {
			t.Fatalf("status during the drill = %+v", st)
		}
		if limit, reserved := g.Concurrency(); limit != 1 || reserved != 0 {
			t.Fatalf("Concurrency() = %d, %d after 29s of a high drill, want 1, 0 (cut every 5s to min)", limit, reserved)
		}
		// Ends at 35.5s, between two ticks: the healthy host's normal holds
		// at once.
		time.Sleep(time.Second)
		synctest.Wait()
		if st := g.Status(); st.Level != job.LevelNormal || st.Drill != nil || !strings.HasPrefix(st.Reason, "drill ended") {
			t.Fatalf("status right after the drill = %+v", st)
		}
		// The limit, cut to 1 (last at 31s), doubles every 5s while unused:
		// 2 at 36s, 4 at 41s, 8 at 46s.
		time.Sleep(11 * time.Second)
		if limit, _ := g.Concurrency(); limit != 8 {
			t.Fatalf("Concurrency() = %d 11s after the drill, want max 8", limit)
		}

		// ClearDrill ends a drill early, with the same effect.
		if err := g.Drill(job.LevelCritical, time.Hour); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		g.ClearDrill()
		if st := g.Status(); st.Drill != nil || st.Level != job.LevelNormal {
			t.Fatalf("status after ClearDrill = %+v", st)
		}
		g.ClearDrill() // no drill: nothing happens

		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		var got []string
		for _, ev := range events {
			s := ev.To.String()
			if ev.Drill {
				s += "(drill)"
			}
			got = append(got, s)
		}
		want := "high(drill) normal critical(drill) normal"
		if strings.Join(got, " ") != want {
			t.Fatalf("events = %v, want %s", got, want)
		}
	})
}

func TestDrillErrors(t *testing.T) {
	g := newTestGovernor(t, newScript(func(time.Duration) Sample { return healthy() }), nil)
	for _, tt := range []struct {
		level job.Level
		d     time.Duration
	}{{job.LevelHigh, 0}, {job.LevelHigh, -time.Second}, {job.Level(9), time.Minute}, {job.LevelHigh, 25 * time.Hour}} {
		if err := g.Drill(tt.level, tt.d); err == nil {
			t.Errorf("Drill(%s, %s) = nil error", tt.level, tt.d)
		}
	}
	if g.Level() != job.LevelNormal {
		t.Fatalf("a refused drill changed the level to %s", g.Level())
	}
}

func TestGovernorSamplerErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log logBuffer
		fail := true
		var mu sync.Mutex
		s := &scriptSampler{start: time.Now(), script: func(time.Duration) (Sample, error) {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				return Sample{}, errors.New("probe broke")
			}
			return withMem(healthy(), 90), nil
		}}
		g := newTestGovernor(t, s, &log)
		stop := startGovernor(t, g)
		defer stop()
		time.Sleep(90*time.Second + 500*time.Millisecond)
		if n := strings.Count(log.String(), "governor sample failed"); n != 2 {
			t.Fatalf("%d error lines in 90s, want 2 (rate limited to one a minute):\n%s", n, log.String())
		}
		if st := g.Status(); st.Level != job.LevelNormal || st.Sample.Running != 3 {
			t.Fatalf("status on sampler errors = %+v, want normal with the engine's figures", st)
		}
		mu.Lock()
		fail = false
		mu.Unlock()
		time.Sleep(time.Second)
		if g.Level() != job.LevelElevated {
			t.Fatalf("level after the sampler recovered = %s, want elevated", g.Level())
		}
	})
}

func TestGovernorRunOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newTestGovernor(t, newScript(func(time.Duration) Sample { return healthy() }), nil)
		stop := startGovernor(t, g)
		time.Sleep(time.Second / 2)
		if err := g.Run(t.Context()); err == nil {
			t.Error("a second Run = nil error")
		}
		stop()
	})
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Config{CPU: Thresholds{Enter: 70}}, newScript(nil), nil); err == nil || !strings.Contains(err.Error(), "governor.cpu") {
		t.Errorf("New(bad config) = %v", err)
	}
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Error("New(nil sampler) = nil error")
	}
	g, err := New(Config{MaxConcurrency: 4}, newScript(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if limit, reserved := g.Concurrency(); limit != 4 || reserved != 1 || g.Level() != job.LevelNormal {
		t.Fatalf("new governor: %s, %d, %d; want normal, 4, 1", g.Level(), limit, reserved)
	}
}

// TestSetThresholdsLive: a reload lowers the memory thresholds so that the
// same 80% sample raises the level, clamps the worker limit into new bounds,
// and a bad config is refused.
func TestSetThresholdsLive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newTestGovernor(t, newScript(func(time.Duration) Sample { return withMem(healthy(), 80) }), nil)
		stop := startGovernor(t, g)
		defer stop()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if g.Level() != job.LevelNormal {
			t.Fatalf("80%% memory with enter 85: level %s, want normal", g.Level())
		}
		if err := g.SetThresholds(Config{Memory: Thresholds{Enter: 60, Exit: 70}}); err == nil {
			t.Fatal("enter below exit was accepted")
		}
		if err := g.SetThresholds(Config{Memory: Thresholds{Enter: 70, Exit: 60}, MinConcurrency: 1, MaxConcurrency: 4}); err != nil {
			t.Fatal(err)
		}
		if limit, _ := g.Concurrency(); limit != 4 {
			t.Errorf("limit after lowering max to 4 = %d", limit)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if g.Level() == job.LevelNormal {
			t.Errorf("80%% memory with enter 70: still normal after a reload")
		}
	})
}
