package schedule

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
)

// fakeClock is the bubble's clock moved by an offset that a test can jump.
type fakeClock struct{ off atomic.Int64 }

func (c *fakeClock) Now() time.Time       { return time.Now().Add(time.Duration(c.off.Load())).Round(0) }
func (c *fakeClock) jump(d time.Duration) { c.off.Add(int64(d)) }
func (c *fakeClock) set(at time.Time)     { c.off.Store(int64(time.Until(at))) }
func (c *fakeClock) until(at time.Time)   { time.Sleep(at.Sub(c.Now())) }
func utc(s string) time.Time              { t, _ := time.Parse(time.RFC3339, s); return t }
func (c *fakeClock) untilS(at string)     { c.until(utc(at)) }

// syncBuf is a log sink for the rig's scheduler.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// rig is an engine over a store and a scheduler running over it: one run
// of edgeq. stop is a crash or a shutdown: the store stays.
type rig struct {
	t      *testing.T
	e      *engine.Engine
	s      *Scheduler
	log    *syncBuf
	cancel context.CancelFunc
	done   chan error
}

func boot(t *testing.T, st *memstore.Store, clock *fakeClock, ecfg engine.Config, files map[string]Spec) *rig {
	t.Helper()
	e, err := engine.New(ecfg, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, e: e, log: &syncBuf{}, done: make(chan error, 1)}
	r.s, err = New(Config{Schedules: files, Clock: clock, Logger: slog.New(slog.NewTextHandler(r.log, nil))}, e)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.s.Run(ctx) }()
	synctest.Wait()
	t.Cleanup(r.stop)
	return r
}

func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	if err := <-r.done; err != nil {
		r.t.Errorf("Run: %v", err)
	}
	if err := r.e.Stop(context.Background()); err != nil {
		r.t.Errorf("Stop: %v", err)
	}
	r.cancel = nil
}

// runs leases and acks every job of queue q and answers their run times.
func (r *rig) runs(q string) []string {
	r.t.Helper()
	synctest.Wait()
	var out []string
	for range 10 {
		jobs, err := r.e.Lease(r.t.Context(), engine.LeaseRequest{Queue: q, Max: engine.MaxLease})
		if err != nil {
			r.t.Fatal(err)
		}
		for _, j := range jobs {
			out = append(out, j.Headers[HeaderRunAt])
			if err := r.e.Ack(r.t.Context(), j.ID, j.LeaseID, nil); err != nil {
				r.t.Fatal(err)
			}
		}
		if len(jobs) < engine.MaxLease {
			return out
		}
	}
	r.t.Fatal("more runs than 10 leases hold")
	return nil
}

func (r *rig) wantRuns(q, when string, want ...string) {
	r.t.Helper()
	if got := r.runs(q); !slices.Equal(got, want) {
		r.t.Errorf("%s: runs = %q, want %q", when, got, want)
	}
}

func TestEveryRunsOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := &fakeClock{}
		clock.set(utc("2026-01-01T00:00:00Z"))
		r := boot(t, memstore.New(), clock, engine.Config{}, map[string]Spec{
			"tick": {Cron: "@every 10s", Queue: "q", Payload: []byte(`{"a":1}`), Headers: map[string]string{"X-Who": "me"}},
		})
		clock.untilS("2026-01-01T00:00:35Z")
		synctest.Wait()
		jobs, err := r.e.Lease(t.Context(), engine.LeaseRequest{Queue: "q", Max: 10})
		if err != nil || len(jobs) != 3 {
			t.Fatalf("leased %d jobs (%v), want 3", len(jobs), err)
		}
		j := jobs[0]
		if string(j.Payload) != `{"a":1}` || j.ContentType != "application/json" || j.Headers["x-who"] != "me" ||
			j.Headers[HeaderSchedule] != "tick" || j.Headers[HeaderRunAt] != "2026-01-01T00:00:10Z" {
			t.Errorf("run = %+v", j)
		}
		st, _ := r.s.Get("tick")
		if !st.Last.Equal(utc("2026-01-01T00:00:30Z")) || !st.Next.Equal(utc("2026-01-01T00:00:40Z")) || st.Runs[ResultFired] != 3 {
			t.Errorf("status = %+v", st)
		}
	})
}

// TestRestartCatchUp: a restart repeats no run, and the runs missed while
// edgeq was off run as catch_up says.
func TestRestartCatchUp(t *testing.T) {
	tests := []struct {
		catchUp string
		want    []string // after the restart at 00:32, before 00:34
	}{
		{CatchUpSkip, nil},
		{CatchUpOnce, []string{"2026-01-01T00:30:00Z"}},
		{CatchUpAll, []string{"2026-01-01T00:10:00Z", "2026-01-01T00:15:00Z", "2026-01-01T00:20:00Z", "2026-01-01T00:25:00Z", "2026-01-01T00:30:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.catchUp, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clock := &fakeClock{}
				clock.set(utc("2026-01-01T00:00:00Z"))
				st := memstore.New()
				files := map[string]Spec{"five": {Cron: "*/5 * * * *", Queue: "q", CatchUp: tt.catchUp}}
				r := boot(t, st, clock, engine.Config{}, files)
				clock.untilS("2026-01-01T00:06:00Z")
				r.wantRuns("q", "first run", "2026-01-01T00:05:00Z")
				r.stop()
				// Back within the same interval: nothing repeats.
				r = boot(t, st, clock, engine.Config{}, files)
				clock.untilS("2026-01-01T00:07:00Z")
				r.wantRuns("q", "restart before the next run", []string{}...)
				r.stop()
				clock.untilS("2026-01-01T00:32:00Z") // off across five runs, the last 2 minutes ago
				r = boot(t, st, clock, engine.Config{}, files)
				clock.untilS("2026-01-01T00:34:00Z")
				r.wantRuns("q", "after the restart", tt.want...)
				clock.untilS("2026-01-01T00:36:00Z")
				r.wantRuns("q", "the next run", "2026-01-01T00:35:00Z")
				if st, _ := r.s.Get("five"); st.Runs[ResultSkippedMissed] != uint64(5-len(tt.want)) {
					t.Errorf("skipped_missed = %d, want %d", st.Runs[ResultSkippedMissed], 5-len(tt.want))
				}
			})
		})
	}
}

// TestClockJumps: a jump of a day either way fires no burst beyond
// catch_up, repeats nothing, leaves the schedule running and is logged.
func TestClockJumps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := &fakeClock{}
		clock.set(utc("2026-01-01T00:00:00Z"))
		r := boot(t, memstore.New(), clock, engine.Config{}, map[string]Spec{
			"once":   {Cron: "0 * * * *", Queue: "once"},
			"skip":   {Cron: "0 * * * *", Queue: "skip", CatchUp: CatchUpSkip},
			"all":    {Cron: "0 * * * *", Queue: "all", CatchUp: CatchUpAll},
			"minute": {Cron: "@every 1m", Queue: "minute", CatchUp: CatchUpAll},
		})
		clock.untilS("2026-01-01T01:00:30Z")
		for _, q := range []string{"once", "skip", "all"} {
			r.wantRuns(q, q+" before the jump", "2026-01-01T01:00:00Z")
		}
		if n := len(r.runs("minute")); n != 60 {
			t.Errorf("@every 1m ran %d times in the first hour, want 60", n)
		}
		clock.jump(24*time.Hour + 10*time.Minute) // NTP finds the box a day behind: 01:10:30 the next day
		time.Sleep(2 * time.Minute)
		r.wantRuns("once", "once after +1 day", "2026-01-02T01:00:00Z")
		r.wantRuns("skip", "skip after +1 day", []string{}...)
		if got := r.runs("all"); len(got) != 24 || got[23] != "2026-01-02T01:00:00Z" {
			t.Errorf("all after +1 day: %d runs, want the 24 missed", len(got))
		}
		// Seen at the next wake, 01:11:00: the cap, then 01:12:00 on time.
		if got := r.runs("minute"); len(got) != MaxCatchUp+1 {
			t.Errorf("@every 1m, all, after +1 day: %d runs, want %d (the cap) and one on time", len(got), MaxCatchUp+1)
		}
		if !strings.Contains(r.log.String(), "wall clock jumped") {
			t.Errorf("the jump forward was not logged:\n%s", r.log)
		}
		clock.jump(-24*time.Hour - 10*time.Minute) // and back: 01:02:30
		time.Sleep(2 * time.Minute)
		for _, q := range []string{"once", "skip", "all"} {
			r.wantRuns(q, q+" right after -1 day", []string{}...)
		}
		if got := r.runs("minute"); len(got) != 1 {
			t.Errorf("@every 1m right after -1 day: %d runs, want 1", len(got))
		}
		// The hourly schedules run at the next hour of the clock as it now reads.
		time.Sleep(time.Hour)
		for _, q := range []string{"once", "skip", "all"} {
			r.wantRuns(q, q+" an hour after -1 day", "2026-01-01T02:00:00Z")
		}
		if n := strings.Count(r.log.String(), "wall clock jumped"); n != 2 {
			t.Errorf("%d jumps logged, want 2:\n%s", n, r.log)
		}
	})
}

// TestDST: a calendar schedule follows its time zone's wall clock: the
// hour the clocks skip does not run, the hour that comes twice runs once.
func TestDST(t *testing.T) {
	if _, err := time.LoadLocation("Europe/Berlin"); err != nil {
		t.Skipf("no time zone database here: %v", err)
	}
	tests := []struct {
		name, start, end, cron string
		want                   []string
	}{
		{"spring forward, skipped hour", "2026-03-28T12:00:00Z", "2026-03-30T12:00:00Z", "30 2 * * *",
			[]string{"2026-03-30T00:30:00Z"}}, // 29th 02:30 does not exist; 30th 02:30 CEST
		{"spring forward, after the gap", "2026-03-28T12:00:00Z", "2026-03-30T12:00:00Z", "30 3 * * *",
			[]string{"2026-03-29T01:30:00Z", "2026-03-30T01:30:00Z"}}, // 03:30 CEST
		{"fall back, repeated hour", "2026-10-24T12:00:00Z", "2026-10-26T12:00:00Z", "30 2 * * *",
			[]string{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}}, // 02:30 CEST once, then CET
		{"fall back, hourly", "2026-10-24T23:30:00Z", "2026-10-25T03:10:00Z", "0 * * * *",
			[]string{"2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clock := &fakeClock{}
				clock.set(utc(tt.start))
				r := boot(t, memstore.New(), clock, engine.Config{}, map[string]Spec{
					"berlin": {Cron: tt.cron, Timezone: "Europe/Berlin", Queue: "q"},
				})
				clock.until(utc(tt.end))
				r.wantRuns("q", tt.cron, tt.want...)
			})
		})
	}
}

// TestOverlapSkip: a run is skipped while the last one waits, and runs
// again once it is done.
func TestOverlapSkip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := &fakeClock{}
		clock.set(utc("2026-01-01T00:00:00Z"))
		r := boot(t, memstore.New(), clock, engine.Config{}, map[string]Spec{
			"tick": {Cron: "@every 10s", Queue: "q", Overlap: OverlapSkip},
		})
		clock.untilS("2026-01-01T00:00:35Z")
		r.wantRuns("q", "three runs, the last two while the first waits", "2026-01-01T00:00:10Z")
		clock.untilS("2026-01-01T00:00:45Z")
		r.wantRuns("q", "the run after the first was done", "2026-01-01T00:00:40Z")
		st, _ := r.s.Get("tick")
		if st.Runs[ResultFired] != 2 || st.Runs[ResultSkippedOverlap] != 2 {
			t.Errorf("runs = %v, want 2 fired, 2 skipped_overlap", st.Runs)
		}
		if s := r.s.Stats(); s.Schedules != 1 || s.Runs[ResultSkippedOverlap] != 2 {
			t.Errorf("stats = %+v", s)
		}
	})
}

// TestAPISchedules: Put validates every field and changes nothing when
// it refuses; API schedules are stored and come back after a restart;
// the file's are read-only.
func TestAPISchedules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := &fakeClock{}
		clock.set(utc("2026-01-01T00:00:00Z"))
		st := memstore.New()
		ecfg := engine.Config{StrictQueues: true, Queues: map[string]engine.QueueConfig{"q": {}}}
		files := map[string]Spec{"file": {Cron: "@hourly", Queue: "q"}}
		r := boot(t, st, clock, ecfg, files)
		good := Spec{Cron: "*/5 * * * *", Queue: "q", Payload: []byte(`"hi"`), CatchUp: CatchUpAll, Overlap: OverlapSkip}
		bad := []struct {
			field string
			mod   func(*Spec)
		}{
			{"cron", func(s *Spec) { s.Cron = "61 * * * *" }},
			{"cron", func(s *Spec) { s.Cron = "" }},
			{"cron", func(s *Spec) { s.Cron = "@every 500ms" }},
			{"timezone", func(s *Spec) { s.Timezone = "Mars/Olympus" }},
			{"queue", func(s *Spec) { s.Queue = "other" }},
			{"queue", func(s *Spec) { s.Queue = "Bad Name" }},
			{"catch_up", func(s *Spec) { s.CatchUp = "sometimes" }},
			{"overlap", func(s *Spec) { s.Overlap = "queue" }},
			{"payload", func(s *Spec) { s.Payload = []byte("{") }},
			{"ttr", func(s *Spec) { s.TTR = "soon" }},
		}
		for _, b := range bad {
			s := good
			b.mod(&s)
			_, _, err := r.s.Put(t.Context(), "api", s)
			if !errors.Is(err, job.ErrInvalidArgument) || !strings.Contains(err.Error(), b.field+":") {
				t.Errorf("Put with a bad %s = %v, want ErrInvalidArgument naming it", b.field, err)
			}
		}
		if _, _, err := r.s.Put(t.Context(), "Bad Name", good); !errors.Is(err, job.ErrInvalidArgument) {
			t.Errorf("Put of a bad name = %v", err)
		}
		if _, _, err := r.s.Put(t.Context(), "file", good); !errors.Is(err, job.ErrConflict) {
			t.Errorf("Put of the file's schedule = %v, want ErrConflict", err)
		}
		if err := r.s.Delete(t.Context(), "file"); !errors.Is(err, job.ErrConflict) {
			t.Errorf("Delete of the file's schedule = %v, want ErrConflict", err)
		}
		if err := r.s.Delete(t.Context(), "nope"); !errors.Is(err, job.ErrNotFound) {
			t.Errorf("Delete of no schedule = %v, want ErrNotFound", err)
		}
		if l := r.s.List(); len(l) != 1 || l[0].Name != "file" || l[0].Source != SourceFile {
			t.Fatalf("after refusals: %+v", l)
		}
		got, created, err := r.s.Put(t.Context(), "api", good)
		if err != nil || !created || got.Next != utc("2026-01-01T00:05:00Z") || got.Spec.Timezone != "UTC" {
			t.Fatalf("Put = %+v, %v, %v", got, created, err)
		}
		clock.untilS("2026-01-01T00:06:00Z")
		r.wantRuns("q", "api schedule", "2026-01-01T00:05:00Z")
		r.stop()
		clock.untilS("2026-01-01T00:11:00Z")
		r = boot(t, st, clock, ecfg, files)
		l := r.s.List()
		if len(l) != 2 || l[0].Name != "api" || l[0].Source != SourceAPI || l[0].Spec.Overlap != OverlapSkip || !l[0].Last.Equal(utc("2026-01-01T00:10:00Z")) {
			t.Fatalf("after a restart: %+v", l)
		}
		r.wantRuns("q", "api schedule after a restart", "2026-01-01T00:10:00Z")
		if err := r.s.Delete(t.Context(), "api"); err != nil {
			t.Fatal(err)
		}
		r.stop()
		r = boot(t, st, clock, ecfg, files)
		if l := r.s.List(); len(l) != 1 {
			t.Errorf("after a delete and a restart: %+v", l)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	err := Config{Schedules: map[string]Spec{
		"ok":  {Cron: "@daily", Queue: "q"},
		"bad": {Cron: "* * *", Queue: "q"},
		"tz":  {Cron: "@daily", Queue: "q", Timezone: "Nowhere/City"},
	}}.Validate()
	for _, want := range []string{"schedules.bad.cron:", "schedules.tz.timezone:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to name %s", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "schedules.ok") {
		t.Errorf("Validate named a good schedule: %v", err)
	}
}

// TestSetFile: a reload keeps an unchanged schedule's state, restarts a
// changed one from now, starts a new one, stops a removed one (whose name
// the API may then take) and refuses a bad file whole.
func TestSetFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := &fakeClock{}
		clock.set(utc("2026-01-01T00:00:00Z"))
		r := boot(t, memstore.New(), clock, engine.Config{}, map[string]Spec{
			"same":    {Cron: "@every 10s", Queue: "same"},
			"changed": {Cron: "@every 10s", Queue: "changed"},
			"gone":    {Cron: "@every 10s", Queue: "gone"},
		})
		clock.untilS("2026-01-01T00:00:25Z")
		if err := r.s.SetFile(t.Context(), map[string]Spec{"same": {Cron: "@every 10s", Queue: "same", Overlap: "bad"}}); err == nil {
			t.Fatal("SetFile of a bad schedule: no error")
		}
		if len(r.s.List()) != 3 {
			t.Fatalf("a refused reload changed the schedules: %+v", r.s.List())
		}
		err := r.s.SetFile(t.Context(), map[string]Spec{
			"same":    {Cron: "@every 10s", Queue: "same"},
			"changed": {Cron: "@every 7s", Queue: "changed"},
			"new":     {Cron: "@every 10s", Queue: "new"},
		})
		if err != nil {
			t.Fatal(err)
		}
		clock.untilS("2026-01-01T00:00:41Z")
		r.wantRuns("same", "unchanged", "2026-01-01T00:00:10Z", "2026-01-01T00:00:20Z", "2026-01-01T00:00:30Z", "2026-01-01T00:00:40Z")
		r.wantRuns("changed", "changed", "2026-01-01T00:00:10Z", "2026-01-01T00:00:20Z", "2026-01-01T00:00:32Z", "2026-01-01T00:00:39Z")
		r.wantRuns("new", "new", "2026-01-01T00:00:35Z")
		r.wantRuns("gone", "removed", "2026-01-01T00:00:10Z", "2026-01-01T00:00:20Z")
		if _, _, err := r.s.Put(t.Context(), "gone", Spec{Cron: "@daily", Queue: "q"}); err != nil {
			t.Errorf("Put of a name the file no longer has: %v", err)
		}
		if _, _, err := r.s.Put(t.Context(), "new", Spec{Cron: "@daily", Queue: "q"}); !errors.Is(err, job.ErrConflict) {
			t.Errorf("Put of the file's new schedule = %v, want ErrConflict", err)
		}
	})
}
