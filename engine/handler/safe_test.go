package handler

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

func TestSafe(t *testing.T) {
	tests := []struct {
		name      string
		handle    func() engine.Outcome
		want      engine.Outcome
		wantError string // prefix of Error when set; want.Error is then ignored
	}{
		{
			name:   "passes an outcome through",
			handle: func() engine.Outcome { return engine.Outcome{Verdict: engine.Dead, Error: "bad", TargetFailed: true} },
			want:   engine.Outcome{Verdict: engine.Dead, Error: "bad", TargetFailed: true},
		},
		{
			name:   "passes retry after through",
			handle: func() engine.Outcome { return engine.Outcome{Verdict: engine.Retry, RetryAfter: time.Minute} },
			want:   engine.Outcome{Verdict: engine.Retry, RetryAfter: time.Minute},
		},
		{
			name:   "string panic",
			handle: func() engine.Outcome { panic("boom") },
			want:   engine.Outcome{Verdict: engine.Retry, Error: "panic: boom"},
		},
		{
			name:   "error panic",
			handle: func() engine.Outcome { panic(errors.New("kaput")) },
			want:   engine.Outcome{Verdict: engine.Retry, Error: "panic: kaput"},
		},
		{
			name: "nil map write",
			handle: func() engine.Outcome {
				var m map[string]int
				m["x"] = 1
				return engine.Outcome{Verdict: engine.Ack}
			},
			want:      engine.Outcome{Verdict: engine.Retry},
			wantError: "panic: assignment to entry in nil map",
		},
		{
			name:      "nil panic",
			handle:    func() engine.Outcome { panic(nil) },
			want:      engine.Outcome{Verdict: engine.Retry},
			wantError: "panic: panic called with nil argument",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Safe(engine.HandlerFunc(func(context.Context, *job.Job) engine.Outcome { return tt.handle() }))
			got := h.Handle(t.Context(), &job.Job{ID: 1, Queue: "q"})
			if tt.wantError != "" {
				if !strings.HasPrefix(got.Error, tt.wantError) {
					t.Errorf("Error = %q, want prefix %q", got.Error, tt.wantError)
				}
				got.Error = ""
			}
			if got != tt.want {
				t.Errorf("Handle() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSafePassesArguments(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(t.Context(), key{}, "v")
	want := &job.Job{ID: 7, Queue: "q"}
	var gotCtx context.Context
	var gotJob *job.Job
	h := Safe(engine.HandlerFunc(func(ctx context.Context, j *job.Job) engine.Outcome {
		gotCtx, gotJob = ctx, j
		return engine.Outcome{Verdict: engine.Ack}
	}))
	if out := h.Handle(ctx, want); out.Verdict != engine.Ack {
		t.Errorf("Verdict = %v, want Ack", out.Verdict)
	}
	if gotJob != want {
		t.Errorf("handler got job %p, want %p", gotJob, want)
	}
	if gotCtx == nil || gotCtx.Value(key{}) != "v" {
		t.Errorf("handler did not get the caller's context")
	}
}
