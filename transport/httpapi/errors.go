package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/wire"
)

// Errors of the transport itself; the others are engine/job sentinels.
var (
	errUnauthorized     = errors.New("unauthorized")
	errForbidden        = errors.New("forbidden")
	errMethodNotAllowed = errors.New("method not allowed")
)

// errorTable maps sentinels to answers: the only place where an error becomes
// an HTTP status and a code (and, in the client, a code becomes a sentinel
// again). The first entry that matches with errors.Is wins.
var errorTable = []struct {
	err    error
	status int
	code   string
}{
	{job.ErrInvalidArgument, http.StatusBadRequest, "invalid_argument"},
	{job.ErrInvalidQueue, http.StatusBadRequest, "invalid_queue"},
	{errUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{errForbidden, http.StatusForbidden, "forbidden"},
	{job.ErrNotFound, http.StatusNotFound, "not_found"},
	{job.ErrUnknownQueue, http.StatusNotFound, "unknown_queue"},
	{errMethodNotAllowed, http.StatusMethodNotAllowed, "method_not_allowed"},
	{job.ErrLeaseLost, http.StatusConflict, "lease_lost"},
	{job.ErrConflict, http.StatusConflict, "conflict"},
	{job.ErrTooLarge, http.StatusRequestEntityTooLarge, "payload_too_large"},
	{job.ErrQueueFull, http.StatusTooManyRequests, "queue_full"},
	{job.ErrRateLimited, http.StatusTooManyRequests, "rate_limited"},
	{job.ErrShed, http.StatusTooManyRequests, "shed"},
	{job.ErrDiskFull, http.StatusServiceUnavailable, "disk_full"},
	{job.ErrShuttingDown, http.StatusServiceUnavailable, "shutting_down"},
	{job.ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
}

const codeInternal = "internal"

// sentinelForCode is the reverse of errorTable, for the client.
func sentinelForCode(code string) error {
	for _, e := range errorTable {
		if e.code == code {
			return e.err
		}
	}
	return nil
}

// invalidArg returns an ErrInvalidArgument naming field.
func invalidArg(field, format string, args ...any) error {
	return wire.InvalidArg(field, format, args...)
}

// answer is what an error becomes on the wire.
type answer struct {
	status     int
	code       string
	message    string
	retryAfter int // whole seconds; 0: no Retry-After
}

// classify maps err through errorTable. shuttingDown turns a cancelled
// context into shutting_down (the server ended a long poll) rather than
// unavailable (the client went away or a deadline passed).
func classify(err error, shuttingDown bool) answer {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		err = &wire.FieldError{Field: "body", Msg: fmt.Sprintf("above the limit of %d bytes", mbe.Limit), Sentinel: job.ErrTooLarge}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		if shuttingDown {
			err = job.ErrShuttingDown
		} else {
			err = fmt.Errorf("%w: %w", job.ErrUnavailable, err)
		}
	}
	a := answer{status: http.StatusInternalServerError, code: codeInternal, message: "internal error"}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			a.status, a.code = e.status, e.code
			// "invalid argument: job id ..." reads as "job id ..." under
			// the code invalid_argument.
			a.message = strings.TrimPrefix(err.Error(), e.err.Error()+": ")
			break
		}
	}
	d, ok := job.RetryAfter(err)
	if ok || a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable {
		a.retryAfter = retrySeconds(d)
	}
	return a
}

// ErrorAnswer is err as every transport answers it (SPEC §5), through
// errorTable: its code, its message and the seconds to wait before a retry
// (0: none). shuttingDown turns a cancelled context into shutting_down.
// The native protocol (transport/native) answers with it, so that both
// transports refuse alike. Safe for concurrent use.
func ErrorAnswer(err error, shuttingDown bool) (code, message string, retryAfterS int) {
	a := classify(err, shuttingDown)
	return a.code, a.message, a.retryAfter
}

// ErrorForCode is the *APIError of a refusal with code, message and
// retryAfterS as another transport carried it: its Status is the one the
// HTTP API answers the code with (500 for a code it does not know), so that
// Temporary and errors.Is work alike.
func ErrorForCode(code, message string, retryAfterS int) *APIError {
	return &APIError{
		Status:     statusForCode(&ErrorBody{Code: code}),
		Code:       code,
		Message:    message,
		RetryAfter: time.Duration(retryAfterS) * time.Second,
	}
}

// retrySeconds rounds d up to whole seconds, at least 1.
func retrySeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// writeError answers err as {"error":{"code","message","retry_after_s"?}}.
func (s *Server) writeError(w http.ResponseWriter, err error) {
	a := classify(err, s.shutting.Load())
	if a.status == http.StatusInternalServerError {
		s.internalLog.log(s.log, err)
	}
	writeAnswer(w, a)
}

func writeAnswer(w http.ResponseWriter, a answer) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	if a.retryAfter > 0 {
		h["Retry-After"] = []string{strconv.Itoa(a.retryAfter)}
	}
	if a.status == http.StatusUnauthorized {
		h["Www-Authenticate"] = bearerChallenge
	}
	b := make([]byte, 0, 64+len(a.code)+len(a.message))
	b = appendErrorBody(b, a)
	w.WriteHeader(a.status)
	_, _ = w.Write(b)
}

// appendErrorBody encodes the error document by hand: under shedding, 429s
// are the hot path.
func appendErrorBody(b []byte, a answer) []byte {
	b = append(b, `{"error":{"code":`...)
	b = wire.AppendJSONString(b, a.code)
	b = append(b, `,"message":`...)
	b = wire.AppendJSONString(b, a.message)
	if a.retryAfter > 0 {
		b = append(b, `,"retry_after_s":`...)
		b = strconv.AppendInt(b, int64(a.retryAfter), 10)
	}
	return append(b, "}}\n"...)
}

var bearerChallenge = []string{`Bearer realm="edgeq"`}

// rateLog logs at most one error a second, counting the ones it drops, so a
// failing disk that turns every request into a 500 does not flood the log.
type rateLog struct {
	last    atomic.Int64 // unix nanoseconds of the last line
	dropped atomic.Int64
}

func (l *rateLog) log(log interface{ Error(string, ...any) }, err error) {
	if dropped, ok := l.allow(); ok {
		log.Error("internal error answered", "err", err, "dropped", dropped)
	}
}

// allow reports whether a line may be logged now and how many were
// dropped since the last one.
func (l *rateLog) allow() (dropped int64, ok bool) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(time.Second) || !l.last.CompareAndSwap(last, now) {
		l.dropped.Add(1)
		return 0, false
	}
	return l.dropped.Swap(0), true
}
