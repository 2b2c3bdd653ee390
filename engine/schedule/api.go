package schedule

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// Sources of a schedule.
const (
	SourceFile = "file" // the configuration file: read-only through the API
	SourceAPI  = "api"  // PUT /v1/schedules/{name}: stored with the jobs
)

// Status is a snapshot of one schedule.
type Status struct {
	Name   string
	Source string
	Spec   Spec      // with its defaults filled in
	Last   time.Time // run time of the last run enqueued; zero: none yet
	Next   time.Time // the next run; zero when the schedule has none
	Runs   map[string]uint64
}

// Stats are the scheduler's totals.
type Stats struct {
	Schedules int
	Runs      map[string]uint64 // by result (Results), since start
}

func jsonUnmarshal(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode schedule: %w", err)
	}
	return nil
}

func (s *Scheduler) statusLocked(e *entry) Status {
	st := Status{Name: e.name, Source: SourceAPI, Spec: e.c.spec, Last: e.fired, Next: e.next, Runs: make(map[string]uint64, len(Results))}
	if e.file {
		st.Source = SourceFile
	}
	for i, r := range Results {
		st.Runs[r] = e.runs[i]
	}
	return st
}

// List answers every schedule, sorted by name.
func (s *Scheduler) List() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.entries))
	for _, name := range slices.Sorted(maps.Keys(s.entries)) {
		out = append(out, s.statusLocked(s.entries[name]))
	}
	return out
}

// Get answers one schedule, or an error wrapping job.ErrNotFound.
func (s *Scheduler) Get(name string) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[name]
	if e == nil {
		return Status{}, fmt.Errorf("schedule %q: %w", name, job.ErrNotFound)
	}
	return s.statusLocked(e), nil
}

// Stats answers the totals.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	n := len(s.entries)
	s.mu.Unlock()
	st := Stats{Schedules: n, Runs: make(map[string]uint64, len(Results))}
	for i, r := range Results {
		st.Runs[r] = s.total[i].Load()
	}
	return st
}

// checkAPI refuses a change through the API to name: invalid, or a
// schedule of the configuration file (job.ErrConflict).
func (s *Scheduler) checkAPI(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	s.mu.Lock()
	_, file := s.file[name]
	s.mu.Unlock()
	if file {
		return fmt.Errorf("%w: schedule %q is %s; change it there", job.ErrConflict, name, errConfigured)
	}
	return nil
}

// Put creates or replaces an API schedule and answers it, and whether it
// is new. Its runs count from now: a changed schedule does not catch up
// runs of its new timing from before the change. A refusal (an error
// wrapping job.ErrInvalidArgument that names the field, job.ErrConflict
// for a name of the configuration file) changes nothing.
func (s *Scheduler) Put(ctx context.Context, name string, spec Spec) (Status, bool, error) {
	if err := s.checkAPI(name); err != nil {
		return Status{}, false, err
	}
	c, err := compile(spec)
	if err != nil {
		return Status{}, false, err
	}
	if err := s.eng.CheckQueue(c.spec.Queue); err != nil {
		return Status{}, false, fmt.Errorf("%w: queue: %w", job.ErrInvalidArgument, err)
	}
	b, err := c.marshal()
	if err != nil {
		return Status{}, false, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	now := s.clock.Now().Truncate(time.Second) // an @every schedule runs on whole seconds
	s.mu.Lock()
	old := s.entries[name]
	s.mu.Unlock()
	rec := store.Schedule{Name: name, Spec: b, Last: now}
	if old != nil {
		rec.Fired = old.fired
	}
	if err := s.eng.PutSchedule(ctx, rec); err != nil {
		return Status{}, false, fmt.Errorf("store schedule %s: %w", name, err)
	}
	e := &entry{name: name, c: c, last: now, fired: rec.Fired, saved: true}
	s.mu.Lock()
	if old != nil {
		e.runs = old.runs
	}
	s.planLocked(e, now)
	s.entries[name] = e
	st := s.statusLocked(e)
	s.mu.Unlock()
	s.nudge()
	s.log.Info("schedule stored", "schedule", name, "cron", c.spec.Cron, "queue", c.spec.Queue, "next", e.next)
	return st, old == nil, nil
}

// Delete removes an API schedule: an error wrapping job.ErrNotFound when
// there is none, job.ErrConflict for one of the configuration file.
func (s *Scheduler) Delete(ctx context.Context, name string) error {
	if err := s.checkAPI(name); err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	_, ok := s.entries[name]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("schedule %q: %w", name, job.ErrNotFound)
	}
	if err := s.eng.DeleteSchedule(ctx, name); err != nil {
		return fmt.Errorf("delete schedule %s: %w", name, err)
	}
	s.mu.Lock()
	delete(s.entries, name)
	s.mu.Unlock()
	s.nudge()
	s.log.Info("schedule deleted", "schedule", name)
	return nil
}

// SetFile replaces the schedules of the configuration file (a reload): a
// new or changed one counts its runs from now, an unchanged one keeps its
// state, a removed one stops (and its name is free for the API). It
// refuses what Config.Validate refuses, changing nothing.
func (s *Scheduler) SetFile(ctx context.Context, specs map[string]Spec) error {
	if err := (Config{Schedules: specs}).Validate(); err != nil {
		return err
	}
	file := make(map[string]*compiled, len(specs))
	for name, spec := range specs {
		file[name], _ = compile(spec) // checked by Validate
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	now := s.clock.Now().Truncate(time.Second)
	var fresh []*entry
	s.mu.Lock()
	for name := range s.file {
		if file[name] == nil {
			delete(s.entries, name)
			s.log.Info("schedule removed from the configuration file", "schedule", name)
		}
	}
	for name, c := range file {
		old := s.entries[name]
		if old != nil && old.file && reflect.DeepEqual(old.c.spec, c.spec) {
			continue
		}
		e := &entry{name: name, c: c, file: true, last: now}
		if old != nil {
			e.fired, e.runs = old.fired, old.runs
			if !old.file {
				s.log.Warn("the configuration file defines a schedule made through the API; the file's wins", "schedule", name)
			}
		}
		s.planLocked(e, now)
		s.entries[name] = e
		fresh = append(fresh, e)
	}
	s.file = file
	s.mu.Unlock()
	for _, e := range fresh {
		if err := s.eng.PutSchedule(ctx, store.Schedule{Name: e.name, Last: now, Fired: e.fired}); err != nil {
			s.log.Warn("schedule change not stored: a restart before its next run counts from then", "schedule", e.name, "err", err)
			continue
		}
		s.mu.Lock()
		e.saved = true
		s.mu.Unlock()
	}
	s.nudge()
	return nil
}

func (s *Scheduler) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
