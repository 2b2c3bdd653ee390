// Package schedule runs cron schedules that survive restarts and power
// cuts: each run of a schedule is a job enqueued into its queue, and the
// time of the last run is stored with it, in the same commit
// (engine.FireSchedule), so that a restart neither repeats a run nor
// forgets one.
//
// # Schedules
//
// A schedule (Spec) has a cron expression (five fields, a descriptor such
// as @daily, or "@every D") read by robfig/cron's parser, a time zone, the
// job to enqueue, catch_up (what happens to runs missed while edgeq was
// off or the clock jumped over them: skip, once, all) and overlap (allow,
// or skip a run while the previous one is ready, delayed or leased, through
// the queue's idempotency index). A run more than a minute late counts as
// missed. Schedules come from the configuration file (read-only through
// the API; one of the file takes over a stored API schedule of the same
// name; SetFile applies a reload) and from the API (stored with the jobs).
//
// # Clock
//
// Schedules follow the wall clock (Clock); waits are the runtime's
// monotonic timers of at most a minute. When the two disagree by more than
// a minute, the wall clock jumped: the jump is logged; runs a forward jump
// passed over are missed runs, bounded by catch_up; after a backward jump
// (or a start with the clock earlier than a schedule's last run) runs count
// from the new time, so that nothing fires in a burst and nothing waits for
// the clock to catch up. On the night the clocks go back, a time that
// comes twice runs once; a time the clocks skip does not run that day.
//
// # Goroutines and locks
//
// Run is the one goroutine, owned by its caller. Scheduler.writeMu orders
// the writes of schedule records (a run, Put, Delete) and is held across
// the engine's commit; Scheduler.mu guards the schedules and is taken
// after writeMu, never across a call to the engine.
package schedule
