package daemon

import (
	"context"
	"fmt"

	"github.com/edgeq/edgeq/engine/schedule"
)

// startSchedules starts the scheduler over the engine (stopped by
// stopSchedules before the engine stops, so that no run meets a closing
// engine).
func (d *Daemon) startSchedules() error {
	sch, err := schedule.New(schedule.Config{Schedules: d.cfg.Schedules, Logger: d.log}, d.eng)
	if err != nil {
		return fmt.Errorf("start schedules: %w", err)
	}
	ctx, cancel := context.WithCancel(d.bg)
	done := make(chan struct{})
	d.group.Go(func() {
		defer close(done)
		if err := sch.Run(ctx); err != nil {
			d.log.Error("schedules stopped", "err", err)
		}
	})
	d.sched = sch
	d.stopSched = func() {
		cancel()
		<-done
	}
	return nil
}

// stopSchedules stops the scheduler and waits for its run in flight.
func (d *Daemon) stopSchedules() {
	if d.stopSched != nil {
		d.stopSched()
		d.stopSched = nil
	}
}
