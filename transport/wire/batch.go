package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edgeq/edgeq/engine/job"
)

// BatchLine is one job of a batch enqueue: one line of the NDJSON body,
//
//	{"payload": <JSON value>} or {"payload_b64": "..."}
//
// plus the options of EnqueueOptions as fields: content_type, key, key_mode,
// group, traceparent, tracestate, delay,
// run_at, max_attempts, ttr, expires_in, expires_at (durations as Go
// durations, times as RFC 3339), headers (an object of strings) and
// on_success ({"queue", "payload" | "payload_b64"}, see OnSuccessJSON).
//
// MarshalJSON sends Payload as "payload" when ContentType is a JSON type and
// Payload is valid JSON, else as "payload_b64". UnmarshalJSON defaults
// ContentType to application/json for "payload" and to
// application/octet-stream for "payload_b64", and lowercases header names.
type BatchLine struct {
	Payload []byte
	EnqueueOptions
}

// EnqueueOptions are the options of an enqueue; zero values are the queue's
// defaults. ContentType "" is application/octet-stream.
type EnqueueOptions struct {
	Key         string
	KeyMode     string // window, active or replace; "": the queue's
	TraceParent string // W3C trace context, optional
	TraceState  string
	Group       string // ordered group
	Delay       time.Duration
	RunAt       time.Time
	MaxAttempts int
	TTR         time.Duration
	ExpiresIn   time.Duration
	ExpiresAt   time.Time
	Headers     map[string]string
	ContentType string
	// OnSuccess is the job this one's success enqueues; nil: none.
	OnSuccess *job.FollowUp
}

// MarshalJSON encodes the line on one line (a JSON payload that spans lines
// is compacted).
func (l BatchLine) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 64+len(l.Payload)*4/3)
	if IsJSONType(l.ContentType) && json.Valid(l.Payload) {
		b = append(b, `{"payload":`...)
		if bytes.ContainsAny(l.Payload, "\r\n") {
			var c bytes.Buffer
			if err := json.Compact(&c, l.Payload); err != nil {
				return nil, fmt.Errorf("compact payload: %w", err)
			}
			b = append(b, c.Bytes()...)
		} else {
			b = append(b, l.Payload...)
		}
	} else {
		b = append(b, `{"payload_b64":"`...)
		b = base64.StdEncoding.AppendEncode(b, l.Payload)
		b = append(b, '"')
	}
	str := func(name, v string) {
		if v != "" {
			b = append(b, ',', '"')
			b = append(b, name...)
			b = append(b, '"', ':')
			b = AppendJSONString(b, v)
		}
	}
	dur := func(name string, d time.Duration) {
		if d != 0 {
			str(name, d.String())
		}
	}
	tim := func(name string, t time.Time) {
		if !t.IsZero() {
			str(name, t.Format(time.RFC3339Nano))
		}
	}
	str("content_type", l.ContentType)
	str("key", l.Key)
	str("key_mode", l.KeyMode)
	str("traceparent", l.TraceParent)
	str("tracestate", l.TraceState)
	str("group", l.Group)
	dur("delay", l.Delay)
	tim("run_at", l.RunAt)
	if l.MaxAttempts != 0 {
		b = append(b, `,"max_attempts":`...)
		b = strconv.AppendInt(b, int64(l.MaxAttempts), 10)
	}
	dur("ttr", l.TTR)
	dur("expires_in", l.ExpiresIn)
	tim("expires_at", l.ExpiresAt)
	if l.OnSuccess != nil {
		b = append(b, `,"on_success":`...)
		b = AppendOnSuccess(b, l.OnSuccess)
	}
	if len(l.Headers) > 0 {
		b = append(b, `,"headers":{`...)
		for i, k := range slices.Sorted(maps.Keys(l.Headers)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSONString(b, k)
			b = append(b, ':')
			b = AppendJSONString(b, l.Headers[k])
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// UnmarshalJSON decodes one line. Errors name the field and wrap
// job.ErrInvalidArgument. Field names are case-sensitive, unknown fields are
// refused and null counts as absent (but "payload": null is the JSON value
// null).
func (l *BatchLine) UnmarshalJSON(data []byte) error {
	if ok, err := l.unmarshalPlain(data); ok {
		return err
	}
	return l.unmarshalGeneral(data)
}

// unmarshalPlain decodes, without encoding/json's map of raw fields, the
// line of a job without options, the most common one:
// {"payload_b64":"<base64>"} with no escapes, or {"payload":<one JSON
// value>}. It answers ok false, having changed nothing, for any other
// line, which unmarshalGeneral decodes alike (FuzzBatchLineFast holds the
// two to the same result).
func (l *BatchLine) unmarshalPlain(data []byte) (ok bool, err error) {
	rest, found := bytes.CutPrefix(trimJSONSpace(data), []byte("{"))
	if !found {
		return false, nil
	}
	rest, found = bytes.CutSuffix(rest, []byte("}"))
	if !found {
		return false, nil
	}
	rest = trimJSONSpace(rest)
	b64 := bytes.HasPrefix(rest, []byte(`"payload_b64"`))
	switch {
	case b64:
		rest = rest[len(`"payload_b64"`):]
	case bytes.HasPrefix(rest, []byte(`"payload"`)):
		rest = rest[len(`"payload"`):]
	default:
		return false, nil
	}
	rest, found = bytes.CutPrefix(trimJSONSpace(rest), []byte(":"))
	if !found {
		return false, nil
	}
	v := trimJSONSpace(rest)
	if !b64 {
		// One valid JSON value between the colon and the closing brace is
		// the whole of the field: a second field would make it invalid.
		if !json.Valid(v) {
			return false, nil
		}
		*l = BatchLine{Payload: append([]byte{}, v...)}
		l.ContentType = "application/json"
		return true, nil
	}
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return false, nil
	}
	v = v[1 : len(v)-1]
	for _, c := range v {
		// Printable ASCII without quotes or escapes is the string as
		// encoding/json would decode it.
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false, nil
		}
	}
	p := make([]byte, base64.StdEncoding.DecodedLen(len(v)))
	n, err := base64.StdEncoding.Decode(p, v)
	if err != nil {
		return true, InvalidArg("payload_b64", "bad base64: %v", err)
	}
	*l = BatchLine{Payload: p[:n]}
	l.ContentType = "application/octet-stream"
	return true, nil
}

// trimJSONSpace trims JSON's four whitespace characters.
func trimJSONSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// unmarshalGeneral decodes any line through encoding/json.
func (l *BatchLine) unmarshalGeneral(data []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return InvalidArg("json", "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if m == nil {
		return InvalidArg("json", "want an object, got null")
	}
	*l = BatchLine{}
	payload, hasPayload := m["payload"]
	b64, hasB64 := m["payload_b64"]
	if isNull(b64) {
		hasB64 = false
	}
	switch {
	case hasPayload && hasB64:
		return InvalidArg("payload", "set payload or payload_b64, not both")
	case hasPayload:
		l.Payload = payload
	case hasB64:
		var s string
		if err := json.Unmarshal(b64, &s); err != nil {
			return InvalidArg("payload_b64", "want a base64 string")
		}
		p, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return InvalidArg("payload_b64", "bad base64: %v", err)
		}
		l.Payload = p
	default:
		return InvalidArg("payload", "missing (set payload or payload_b64)")
	}
	if d, r := m["delay"], m["run_at"]; d != nil && r != nil && !isNull(d) && !isNull(r) {
		return ErrDelayAndRunAt
	}
	for k, v := range m {
		if k == "payload" || k == "payload_b64" || isNull(v) {
			continue
		}
		if err := l.setOption(k, v); err != nil {
			return err
		}
	}
	if l.ContentType == "" {
		l.ContentType = "application/octet-stream"
		if hasPayload {
			l.ContentType = "application/json"
		}
	}
	return nil
}

func (l *BatchLine) setOption(k string, v json.RawMessage) error {
	var err error
	switch k {
	case "content_type":
		l.ContentType, err = jsonString(k, v)
	case "key":
		l.Key, err = jsonString(k, v)
	case "traceparent":
		l.TraceParent, err = jsonString(k, v)
	case "tracestate":
		l.TraceState, err = jsonString(k, v)
	case "key_mode":
		if l.KeyMode, err = jsonString(k, v); err == nil {
			_, err = ParseKeyMode(l.KeyMode)
		}
	case "group":
		l.Group, err = jsonString(k, v)
	case "on_success":
		l.OnSuccess, err = ParseOnSuccess(v)
	case "delay":
		l.Delay, err = jsonDuration(k, v)
	case "run_at":
		l.RunAt, err = jsonTime(k, v)
	case "max_attempts":
		if json.Unmarshal(v, &l.MaxAttempts) != nil || l.MaxAttempts < 0 {
			return InvalidArg(k, "want an integer of at least 0, got %s", truncate(v))
		}
	case "ttr":
		l.TTR, err = jsonDuration(k, v)
	case "expires_in":
		l.ExpiresIn, err = jsonDuration(k, v)
	case "expires_at":
		l.ExpiresAt, err = jsonTime(k, v)
	case "headers":
		// encoding/json would turn invalid UTF-8 into U+FFFD: refuse it,
		// as the engine refuses it in a header of any other origin.
		if !utf8.Valid(v) {
			return InvalidArg(k, "not valid UTF-8")
		}
		var h map[string]string
		if json.Unmarshal(v, &h) != nil {
			return InvalidArg(k, "want an object of strings")
		}
		l.Headers = make(map[string]string, len(h))
		for name, val := range h {
			lower := strings.ToLower(name)
			if lower == "" {
				return InvalidArg(k, "empty header name")
			}
			if _, dup := l.Headers[lower]; dup {
				return InvalidArg(k, "header %q given twice", lower)
			}
			l.Headers[lower] = val
		}
	default:
		return InvalidArg(k, "unknown field")
	}
	return err
}

// ParseKeyMode parses a key_mode option, naming it when it is unknown.
func ParseKeyMode(s string) (job.KeyMode, error) {
	m, err := job.ParseKeyMode(s)
	if err != nil {
		return 0, &FieldError{Field: "key_mode", Msg: fmt.Sprintf("unknown mode %q (want window, active or replace)", s), Sentinel: job.ErrInvalidArgument}
	}
	return m, nil
}

// keyMode is the mode of a key_mode option already checked by setOption.
func keyMode(s string) job.KeyMode {
	m, _ := job.ParseKeyMode(s)
	return m
}

func isNull(v json.RawMessage) bool { return string(v) == "null" }

func jsonString(field string, v json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", InvalidArg(field, "want a string, got %s", truncate(v))
	}
	return s, nil
}

func jsonDuration(field string, v json.RawMessage) (time.Duration, error) {
	s, err := jsonString(field, v)
	if err != nil {
		return 0, err
	}
	if s == "" {
		return 0, InvalidArg(field, "want a Go duration like 30s, got \"\"")
	}
	return ParseDuration(field, s)
}

func jsonTime(field string, v json.RawMessage) (time.Time, error) {
	s, err := jsonString(field, v)
	if err != nil {
		return time.Time{}, err
	}
	if s == "" {
		return time.Time{}, InvalidArg(field, "want an RFC 3339 time, got \"\"")
	}
	return ParseTime(field, s)
}

func truncate(v []byte) []byte {
	if len(v) > 40 {
		return append(v[:37:37], "..."...)
	}
	return v
}

// ToNew makes the enqueue request of the line for queue (the HTTP batch
// and the MQTT submit envelope use it).
func (l *BatchLine) ToNew(queue string) job.New {
	return job.New{
		Queue:       queue,
		Payload:     l.Payload,
		ContentType: l.ContentType,
		Headers:     l.Headers,
		Key:         l.Key,
		KeyMode:     keyMode(l.KeyMode),
		TraceParent: l.TraceParent,
		TraceState:  l.TraceState,
		Group:       l.Group,
		Delay:       l.Delay,
		RunAt:       l.RunAt,
		MaxAttempts: l.MaxAttempts,
		TTR:         l.TTR,
		ExpiresIn:   l.ExpiresIn,
		ExpiresAt:   l.ExpiresAt,
		OnSuccess:   l.OnSuccess,
	}
}
