package job

import "errors"

// Reasons a job is refused: the reason label of the refusal metrics and
// the reason of an MQTT rejection notice.
const (
	ReasonInvalid     = "invalid"
	ReasonTooLarge    = "too_large"
	ReasonQueueFull   = "queue_full"
	ReasonRateLimited = "rate_limited"
	ReasonShed        = "shed"
	ReasonDiskFull    = "disk_full"
	ReasonUnavailable = "unavailable"
)

// reasonTable maps sentinels to reasons: the one place where an error
// becomes a reason. The first entry that matches with errors.Is wins; the
// first entry of a reason is its error (ReasonErr). A queue name that is
// invalid or not allowed (strict_queues) makes the job invalid.
var reasonTable = []struct {
	err    error
	reason string
}{
	{ErrInvalidArgument, ReasonInvalid},
	{ErrTooLarge, ReasonTooLarge},
	{ErrQueueFull, ReasonQueueFull},
	{ErrRateLimited, ReasonRateLimited},
	{ErrShed, ReasonShed},
	{ErrDiskFull, ReasonDiskFull},
	{ErrUnavailable, ReasonUnavailable},
	{ErrInvalidQueue, ReasonInvalid},
	{ErrUnknownQueue, ReasonInvalid},
}

// Reason answers the reason err refuses a job for, "" when err is not a
// refusal of the job (a cancelled caller, shutdown, a lost lease).
func Reason(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range reasonTable {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return ""
}

// ReasonErr is the sentinel of a reason, nil for an unknown one: for
// counting a refusal whose error was reduced to its reason.
func ReasonErr(reason string) error {
	for _, r := range reasonTable {
		if r.reason == reason {
			return r.err
		}
	}
	return nil
}
