package job

import (
	"errors"
	"time"
)

// Sentinel errors. Transports map them to protocol answers in one table;
// wrap them with context (fmt.Errorf("...: %w", ErrX)) rather than returning
// new error values for the same condition.
var (
	ErrNotFound        = errors.New("not found")
	ErrInvalidArgument = errors.New("invalid argument")
	ErrInvalidQueue    = errors.New("invalid queue")
	ErrUnknownQueue    = errors.New("unknown queue")
	ErrLeaseLost       = errors.New("lease lost")
	ErrConflict        = errors.New("conflict")
	ErrTooLarge        = errors.New("payload too large")
	ErrQueueFull       = errors.New("queue full")
	ErrRateLimited     = errors.New("rate limited")
	ErrShed            = errors.New("shed")
	ErrDiskFull        = errors.New("disk full")
	ErrShuttingDown    = errors.New("shutting down")
	ErrUnavailable     = errors.New("unavailable")
)

// RetryError marks a refusal that may succeed later (429 and 503 answers).
// It wraps one of the sentinels above.
type RetryError struct {
	Err   error
	After time.Duration // how long the caller should wait, rounded up to seconds by transports
}

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// Retry wraps err as a RetryError with the given delay.
func Retry(err error, after time.Duration) error { return &RetryError{Err: err, After: after} }

// RetryAfter returns the delay carried by a RetryError in err's chain.
func RetryAfter(err error) (time.Duration, bool) {
	var re *RetryError
	if errors.As(err, &re) {
		return re.After, true
	}
	return 0, false
}
