package handler

import (
	"context"
	"fmt"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// Safe returns a Handler that calls h.Handle and turns a panic in it into
// Outcome{Verdict: engine.Retry, Error: "panic: <value>"}, so a buggy
// handler fails its job rather than the process. The panic is not a
// failure of the handler's target: TargetFailed stays false. Safe is safe
// for concurrent use when h is.
func Safe(h engine.Handler) engine.Handler {
	return engine.HandlerFunc(func(ctx context.Context, j *job.Job) (out engine.Outcome) {
		defer func() {
			// Since Go 1.21 panic(nil) recovers a *runtime.PanicNilError,
			// so every panic is caught here.
			if r := recover(); r != nil {
				out = engine.Outcome{Verdict: engine.Retry, Error: fmt.Sprintf("panic: %v", r)}
			}
		}()
		return h.Handle(ctx, j)
	})
}
