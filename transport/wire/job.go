package wire

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edgeq/edgeq/engine/job"
)

// Lease is the lease a job is held under.
type Lease struct {
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Job is a job as JSON. Exactly one of Payload and PayloadB64 is set when the
// payload was read: Payload when the content type is JSON (application/json
// or a +json type) and the bytes are valid JSON, else PayloadB64, which
// holds the raw bytes (base64 on the wire). Both are empty in listings the
// engine answered without payloads.
type Job struct {
	ID          string            `json:"id"`
	Queue       string            `json:"queue"`
	State       string            `json:"state"`
	Attempt     int               `json:"attempt"`
	MaxAttempts int               `json:"max_attempts"`
	CreatedAt   time.Time         `json:"created_at"`
	RunAt       time.Time         `json:"run_at"`
	ExpiresAt   time.Time         `json:"expires_at,omitzero"`
	Key         string            `json:"key,omitempty"`
	Group       string            `json:"group,omitempty"`
	Lease       *Lease            `json:"lease,omitempty"`
	Headers     map[string]string `json:"headers"`
	ContentType string            `json:"content_type"`
	Payload     json.RawMessage   `json:"payload,omitempty"`
	PayloadB64  []byte            `json:"payload_b64,omitzero"`
	LastError   string            `json:"last_error"`
	// Result is a retained done job's result: JSON when it is valid JSON,
	// else base64 in ResultB64; ResultTruncated says it was cut at the
	// queue's max_result.
	Result          json.RawMessage `json:"result,omitempty"`
	ResultB64       []byte          `json:"result_b64,omitempty"`
	ResultTruncated bool            `json:"result_truncated,omitempty"`
	// TraceParent and TraceState are the W3C trace context of the job.
	TraceParent string `json:"traceparent,omitempty"`
	TraceState  string `json:"tracestate,omitempty"`
	// OnSuccess is the job this one's success enqueues.
	OnSuccess *OnSuccessJSON `json:"on_success,omitempty"`
}

// Body returns the payload bytes, whichever field carried them.
func (j *Job) Body() []byte {
	if j.Payload != nil {
		return j.Payload
	}
	return j.PayloadB64
}

// emptyHeaders is never written to: encoded as {}.
var emptyHeaders = map[string]string{}

// FromJob converts a job. Payload fields are filled when withPayload is
// set or the engine returned a payload.
func FromJob(j *job.Job, withPayload bool) Job {
	w := Job{
		ID:          j.ID.String(),
		Queue:       j.Queue,
		State:       j.State.String(),
		Attempt:     j.Attempt,
		MaxAttempts: j.MaxAttempts,
		CreatedAt:   j.CreatedAt.UTC(),
		RunAt:       j.RunAt.UTC(),
		Key:         j.Key,
		Group:       j.Group,
		Headers:     j.Headers,
		ContentType: j.ContentType,
		LastError:   j.LastError,
	}
	if !j.ExpiresAt.IsZero() {
		w.ExpiresAt = j.ExpiresAt.UTC()
	}
	if j.State == job.StateLeased && j.LeaseID != "" {
		w.Lease = &Lease{ID: j.LeaseID, ExpiresAt: j.LeaseExpires.UTC()}
	}
	if w.Headers == nil {
		w.Headers = emptyHeaders
	}
	w.Result, w.ResultB64 = ResultFields(j.Result)
	w.ResultTruncated = j.ResultTruncated
	w.TraceParent, w.TraceState = j.TraceParent, j.TraceState
	w.OnSuccess = OnSuccessOf(j.OnSuccess)
	if withPayload || j.Payload != nil {
		if IsJSONType(j.ContentType) && json.Valid(j.Payload) {
			w.Payload = j.Payload
		} else {
			w.PayloadB64 = j.Payload
			if w.PayloadB64 == nil {
				w.PayloadB64 = []byte{} // "payload_b64":"" for an empty payload
			}
		}
	}
	return w
}

// ResultFields places a result in the result field (valid JSON) or the
// result_b64 one (anything else), nil both for none.
func ResultFields(r []byte) (json.RawMessage, []byte) {
	switch {
	case len(r) == 0:
		return nil, nil
	case json.Valid(r):
		return r, nil
	}
	return nil, r
}

// ResultOf returns the result bytes an ack carries in result (a JSON
// value, kept as its JSON text) or result_b64 (bytes), refusing both.
func ResultOf(field string, result json.RawMessage, b64 []byte) ([]byte, error) {
	if len(result) > 0 && len(b64) > 0 {
		return nil, &FieldError{Field: field, Msg: "result and result_b64 together; send one", Sentinel: job.ErrInvalidArgument}
	}
	if len(result) > 0 {
		return result, nil
	}
	return b64, nil
}

// FromJobs converts jobs with FromJob.
func FromJobs(js []*job.Job, withPayload bool) []Job {
	out := make([]Job, len(js))
	for i, j := range js {
		out[i] = FromJob(j, withPayload)
	}
	return out
}

// IsJSONType reports whether a content type is application/json or a +json
// type, ignoring parameters and case, without allocating.
func IsJSONType(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	const aj, pj = "application/json", "+json"
	return strings.EqualFold(ct, aj) ||
		(len(ct) > len(pj) && strings.EqualFold(ct[len(ct)-len(pj):], pj))
}

// AppendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as with encoding/json; unlike it, <, > and & are not escaped (the API
// never serves HTML).
func AppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but not valid JavaScript in a string literal.
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
