package httpapi

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/wire"
)

// BatchLine is one job of a batch enqueue (wire.BatchLine).
type BatchLine = wire.BatchLine

// EnqueueOptions are the options of an enqueue (wire.EnqueueOptions).
type EnqueueOptions = wire.EnqueueOptions

// maxBatchLines bounds the jobs of one batch: the engine's limit.
const maxBatchLines = engine.MaxBatchJobs

// lineError prefixes a line's error with its number (1-based, counting
// blank lines, so it points into the file as sent).
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return "line " + strconv.Itoa(e.line) + ": " + e.err.Error() }
func (e *lineError) Unwrap() error { return e.err }

// decodeBatch decodes an NDJSON batch body: one BatchLine a line, blank
// lines skipped, "\r\n" accepted. It refuses the whole body on the first bad
// line (ErrInvalidArgument naming line and field), on a payload above
// maxPayload (ErrTooLarge), on more than maxBatchLines jobs and on none.
// The lines share no memory with body.
func decodeBatch(body []byte, maxPayload int) ([]BatchLine, error) {
	n := bytes.Count(body, []byte{'\n'}) + 1
	lines := make([]BatchLine, 0, min(n, maxBatchLines))
	for no := 1; len(body) > 0; no++ {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if len(lines) == maxBatchLines {
			return nil, invalidArg("body", "more than %d jobs in one batch", maxBatchLines)
		}
		lines = append(lines, BatchLine{})
		l := &lines[len(lines)-1] // decoded in place: a local would escape
		if err := l.UnmarshalJSON(line); err != nil {
			return nil, &lineError{line: no, err: err}
		}
		if len(l.Payload) > maxPayload {
			return nil, &lineError{line: no, err: &wire.FieldError{
				Field:    "payload",
				Msg:      fmt.Sprintf("%d bytes, above max_payload %d", len(l.Payload), maxPayload),
				Sentinel: job.ErrTooLarge,
			}}
		}
	}
	if len(lines) == 0 {
		return nil, invalidArg("body", "no jobs (want one JSON object a line)")
	}
	return lines, nil
}
