package main

import (
	"context"
	"errors"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// extendLoop renews the lease at half of its remaining time until ctx ends.
func (w *worker) extendLoop(ctx context.Context, id, lease string, expires time.Time) {
	for {
		every := max(time.Until(expires)/2, 5*time.Millisecond)
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, max(every, time.Second))
		exp, err := w.cl.Extend(rctx, id, lease, w.ttr)
		cancel()
		switch {
		case err == nil:
			expires = exp
		case ctx.Err() != nil:
			return
		case errors.Is(err, job.ErrLeaseLost), errors.Is(err, job.ErrNotFound):
			w.logf("job %s: lease lost while the command runs: %v", id, err)
			return
		default:
			// Try again soon: the lease may still be saved.
			w.logf("job %s: extend lease: %v", id, oneLine(err.Error(), 200))
			expires = time.Now().Add(2 * every)
		}
	}
}
