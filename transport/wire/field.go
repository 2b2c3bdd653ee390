package wire

import (
	"fmt"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// FieldError is a refusal that names what was wrong ("delay: ...",
// "payload_b64: ..."); it unwraps to its sentinel.
type FieldError struct {
	Field    string
	Msg      string
	Sentinel error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }
func (e *FieldError) Unwrap() error { return e.Sentinel }

// InvalidArg returns a job.ErrInvalidArgument naming field.
func InvalidArg(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...), Sentinel: job.ErrInvalidArgument}
}

// ErrDelayAndRunAt refuses an enqueue that says when to run twice: which
// one should win is a guess.
var ErrDelayAndRunAt = InvalidArg("delay", "set delay or run_at, not both")

// ParseDuration parses a Go duration that must not be negative; "" is 0.
func ParseDuration(field, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, InvalidArg(field, "want a Go duration like 30s or 1h15m, got %q", v)
	}
	if d < 0 {
		return 0, InvalidArg(field, "must not be negative, got %q", v)
	}
	return d, nil
}

// ParseTime parses an RFC 3339 time; "" is the zero time.
func ParseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, InvalidArg(field, "want an RFC 3339 time like 2025-01-02T15:04:05Z, got %q", v)
	}
	return t, nil
}
