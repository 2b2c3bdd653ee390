package engine_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
	"github.com/edgeq/edgeq/engine/store"
)

func storedSchedules(t *testing.T, e *engine.Engine) []store.Schedule {
	t.Helper()
	ss, err := e.Schedules()
	if err != nil {
		t.Fatalf("Schedules: %v", err)
	}
	return ss
}

// TestFireScheduleOverlap: a run with an overlap key is skipped while the
// previous run is ready or leased, and enqueued again once it is done or
// dead; the record is written with every firing, skipped or not.
func TestFireScheduleOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{})
		fire := func(at int) engine.ScheduleFired {
			t.Helper()
			run := time.Unix(int64(at), 0)
			r, err := e.FireSchedule(t.Context(), engine.ScheduleRun{
				Queue: "q", Jobs: []job.New{{Payload: []byte("tick"), Key: "ignored"}}, Times: []time.Time{run}, OverlapKey: "schedule:s",
				Record: store.Schedule{Name: "s", Last: run},
			})
			if err != nil {
				t.Fatalf("FireSchedule: %v", err)
			}
			if ss := storedSchedules(t, e); len(ss) != 1 || !ss[0].Last.Equal(run) || (len(r.Results) == 1) != ss[0].Fired.Equal(run) {
				t.Fatalf("records after firing at %d (%+v) = %+v", at, r, ss)
			}
			return r
		}
		if r := fire(1); len(r.Results) != 1 || r.Skipped != 0 {
			t.Fatalf("first run = %+v, want one enqueued", r)
		}
		if r := fire(2); len(r.Results) != 0 || r.Skipped != 1 {
			t.Fatalf("run while the previous is ready = %+v, want skipped", r)
		}
		j := lease1(t, e, "q", 0)
		if j.Key != "" {
			t.Errorf("run's key = %q, want none (the overlap key is not the job's)", j.Key)
		}
		if r := fire(3); r.Skipped != 1 {
			t.Fatalf("run while the previous is leased = %+v, want skipped", r)
		}
		if err := e.Ack(t.Context(), j.ID, j.LeaseID, nil); err != nil {
			t.Fatal(err)
		}
		if r := fire(4); len(r.Results) != 1 {
			t.Fatalf("run after the previous is done = %+v, want enqueued", r)
		}
		j = lease1(t, e, "q", 0)
		if err := e.Fail(t.Context(), j.ID, j.LeaseID, "boom"); err != nil {
			t.Fatal(err)
		}
		if r := fire(5); len(r.Results) != 1 {
			t.Fatalf("run after the previous went dead = %+v, want enqueued", r)
		}
		if s := stats(t, e, "q"); s.Ready != 1 || s.Dead != 1 || s.EnqueuedTotal != 3 {
			t.Errorf("stats = %+v, want 1 ready, 1 dead, 3 enqueued", s)
		}
	})
}

// TestFireScheduleOneCommit: a refused run writes no record, and a commit
// that fails keeps neither the run nor the record.
func TestFireScheduleOneCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.New()
		e := start(t, st, engine.Config{Queues: map[string]engine.QueueConfig{"small": {MaxDepth: 1}}})
		run := func(q string) engine.ScheduleRun {
			return engine.ScheduleRun{Queue: q, Jobs: []job.New{{}}, Times: []time.Time{{}}, Record: store.Schedule{Name: "s", Last: time.Unix(9, 0)}}
		}
		enqueue(t, e, job.New{Queue: "small"})
		if _, err := e.FireSchedule(t.Context(), run("small")); !errors.Is(err, job.ErrQueueFull) {
			t.Fatalf("run into a full queue = %v, want ErrQueueFull", err)
		}
		if ss := storedSchedules(t, e); len(ss) != 0 {
			t.Errorf("a refused run wrote the record: %+v", ss)
		}
		synctest.Wait()
		st.FailNextCommit(errors.New("disk on fire"))
		if _, err := e.FireSchedule(t.Context(), run("q")); !errors.Is(err, job.ErrUnavailable) {
			t.Fatalf("run in a failing commit = %v, want ErrUnavailable", err)
		}
		if ss := storedSchedules(t, e); len(ss) != 0 {
			t.Errorf("a failed commit kept the record: %+v", ss)
		}
		if s := stats(t, e, "q"); s.Ready != 0 {
			t.Errorf("a failed commit kept the run: %+v", s)
		}
		if err := e.PutSchedule(t.Context(), store.Schedule{Name: "api", Spec: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		if err := e.DeleteSchedule(t.Context(), "api"); err != nil {
			t.Fatal(err)
		}
		if ss := storedSchedules(t, e); len(ss) != 0 {
			t.Errorf("records after put and delete = %+v", ss)
		}
	})
}

// TestFireScheduleEvicts: a run into a full queue with on_full
// evict_oldest evicts the oldest waiting job, as an enqueue does.
func TestFireScheduleEvicts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{Queues: map[string]engine.QueueConfig{"b": {MaxDepth: 1, OnFull: engine.OnFullEvictOldest}}})
		old := enqueue(t, e, job.New{Queue: "b"})
		r, err := e.FireSchedule(t.Context(), engine.ScheduleRun{Queue: "b", Jobs: []job.New{{}}, Times: []time.Time{time.Unix(5, 0)},
			Record: store.Schedule{Name: "s", Last: time.Unix(5, 0)}})
		if err != nil || len(r.Results) != 1 {
			t.Fatalf("run into a full evicting queue = %+v, %v", r, err)
		}
		if _, err := e.Job(t.Context(), old.ID); !errors.Is(err, job.ErrNotFound) {
			t.Errorf("the oldest job = %v, want evicted", err)
		}
		if ss := storedSchedules(t, e); len(ss) != 1 || !ss[0].Fired.Equal(time.Unix(5, 0)) {
			t.Errorf("records = %+v", ss)
		}
	})
}
