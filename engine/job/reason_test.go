package job

import (
	"context"
	"fmt"
	"testing"
)

func TestReason(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"invalid argument", fmt.Errorf("%w: delay", ErrInvalidArgument), ReasonInvalid},
		{"invalid queue", ErrInvalidQueue, ReasonInvalid},
		{"unknown queue", ErrUnknownQueue, ReasonInvalid},
		{"too large", ErrTooLarge, ReasonTooLarge},
		{"queue full, retry", Retry(ErrQueueFull, 3), ReasonQueueFull},
		{"rate limited", ErrRateLimited, ReasonRateLimited},
		{"shed", Retry(ErrShed, 5), ReasonShed},
		{"disk full", fmt.Errorf("write: %w: %w", ErrDiskFull, context.Canceled), ReasonDiskFull},
		{"unavailable", ErrUnavailable, ReasonUnavailable},
		{"shutting down", ErrShuttingDown, ""},
		{"lease lost", ErrLeaseLost, ""},
		{"cancelled", context.Canceled, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Reason(tc.err)
			if got != tc.want {
				t.Fatalf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
			}
			if got != "" && Reason(ReasonErr(got)) != got {
				t.Errorf("Reason(ReasonErr(%q)) = %q", got, Reason(ReasonErr(got)))
			}
		})
	}
	if err := ReasonErr("bogus"); err != nil {
		t.Errorf("ReasonErr(bogus) = %v, want nil", err)
	}
}
