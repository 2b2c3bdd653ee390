package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

func TestSafeHandle(t *testing.T) {
	tests := []struct {
		name      string
		handle    func() Outcome
		want      Outcome
		wantError string // prefix of Error when set; want.Error is then ignored
	}{
		{
			name:   "passes an outcome through",
			handle: func() Outcome { return Outcome{Verdict: Dead, Error: "bad", TargetFailed: true} },
			want:   Outcome{Verdict: Dead, Error: "bad", TargetFailed: true},
		},
		{
			name:   "passes retry after through",
			handle: func() Outcome { return Outcome{Verdict: Retry, RetryAfter: time.Minute} },
			want:   Outcome{Verdict: Retry, RetryAfter: time.Minute},
		},
		{
			name:   "no verdict is a retry",
			handle: func() Outcome { return Outcome{Error: "forgot"} },
			want:   Outcome{Verdict: Retry, Error: "forgot"},
		},
		{
			name:   "string panic",
			handle: func() Outcome { panic("boom") },
			want:   Outcome{Verdict: Retry, Error: "handler panic: boom"},
		},
		{
			name:   "error panic",
			handle: func() Outcome { panic(errors.New("kaput")) },
			want:   Outcome{Verdict: Retry, Error: "handler panic: kaput"},
		},
		{
			name: "nil map write",
			handle: func() Outcome {
				var m map[string]int
				//lint:ignore SA5000 the handler panics on purpose
				m["x"] = 1
				return Outcome{Verdict: Ack}
			},
			want:      Outcome{Verdict: Retry},
			wantError: "handler panic: assignment to entry in nil map",
		},
		{
			name:      "nil panic",
			handle:    func() Outcome { panic(nil) },
			want:      Outcome{Verdict: Retry},
			wantError: "handler panic: panic called with nil argument",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := HandlerFunc(func(context.Context, *job.Job) Outcome { return tt.handle() })
			got := safeHandle(t.Context(), h, &job.Job{ID: 1, Queue: "q"})
			if tt.wantError != "" {
				if !strings.HasPrefix(got.Error, tt.wantError) {
					t.Errorf("Error = %q, want prefix %q", got.Error, tt.wantError)
				}
				got.Error = ""
			}
			if got != tt.want {
				t.Errorf("safeHandle() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSafeHandlePassesArguments(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(t.Context(), key{}, "v")
	want := &job.Job{ID: 7, Queue: "q"}
	var gotCtx context.Context
	var gotJob *job.Job
	h := HandlerFunc(func(ctx context.Context, j *job.Job) Outcome {
		gotCtx, gotJob = ctx, j
		return Outcome{Verdict: Ack}
	})
	if out := safeHandle(ctx, h, want); out.Verdict != Ack {
		t.Errorf("Verdict = %v, want Ack", out.Verdict)
	}
	if gotJob != want {
		t.Errorf("handler got job %p, want %p", gotJob, want)
	}
	if gotCtx == nil || gotCtx.Value(key{}) != "v" {
		t.Errorf("handler did not get the caller's context")
	}
}
