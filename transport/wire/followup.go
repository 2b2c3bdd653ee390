package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"

	"github.com/edgeq/edgeq/engine/job"
)

// OnSuccessJSON is a follow-up (job.FollowUp) as JSON, in batch lines,
// submit bodies and a job's JSON: {"queue": "upload"} takes the job's
// result as the follow-up's payload; "payload" (a JSON value) or
// "payload_b64" (bytes) gives one instead.
type OnSuccessJSON struct {
	Queue      string          `json:"queue"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	PayloadB64 []byte          `json:"payload_b64,omitzero"`
}

// OnSuccessOf converts a follow-up to JSON (nil for none): its payload in
// payload when it is valid JSON, else in payload_b64.
func OnSuccessOf(f *job.FollowUp) *OnSuccessJSON {
	if f == nil {
		return nil
	}
	o := &OnSuccessJSON{Queue: f.Queue}
	switch {
	case !f.HasPayload:
	case len(f.Payload) > 0 && json.Valid(f.Payload):
		o.Payload = f.Payload
	default:
		o.PayloadB64 = f.Payload
		if o.PayloadB64 == nil {
			o.PayloadB64 = []byte{}
		}
	}
	return o
}

// AppendOnSuccess appends f as the JSON object of OnSuccessJSON.
func AppendOnSuccess(b []byte, f *job.FollowUp) []byte {
	b = append(b, `{"queue":`...)
	b = AppendJSONString(b, f.Queue)
	o := OnSuccessOf(f)
	switch {
	case o.Payload != nil:
		b = append(b, `,"payload":`...)
		b = append(b, compact(o.Payload)...)
	case o.PayloadB64 != nil:
		b = append(b, `,"payload_b64":"`...)
		b = base64.StdEncoding.AppendEncode(b, o.PayloadB64)
		b = append(b, '"')
	}
	return append(b, '}')
}

// compact is v (valid JSON) on one line, so that a batch line stays one.
func compact(v []byte) []byte {
	if !bytes.ContainsAny(v, "\r\n") {
		return v
	}
	var c bytes.Buffer
	if json.Compact(&c, v) != nil {
		return v
	}
	return c.Bytes()
}

// ParseOnSuccess decodes the on_success object of a batch line or submit
// body. Errors name the field (on_success.queue...) and wrap
// job.ErrInvalidArgument; the engine checks the queue and the size.
func ParseOnSuccess(v json.RawMessage) (*job.FollowUp, error) {
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil || m == nil {
		return nil, InvalidArg("on_success", "want an object like {\"queue\": \"upload\"}, got %s", truncate(v))
	}
	f := &job.FollowUp{}
	for k, x := range m {
		if isNull(x) {
			continue
		}
		var err error
		switch k {
		case "queue":
			f.Queue, err = jsonString("on_success.queue", x)
		case "payload":
			if f.HasPayload {
				return nil, InvalidArg("on_success.payload", "set payload or payload_b64, not both")
			}
			f.Payload, f.HasPayload = []byte(x), true
		case "payload_b64":
			if f.HasPayload {
				return nil, InvalidArg("on_success.payload", "set payload or payload_b64, not both")
			}
			f.Payload, err = b64Field("on_success.payload_b64", x)
			f.HasPayload = true
		default:
			return nil, InvalidArg("on_success."+k, "unknown field (want queue, payload or payload_b64)")
		}
		if err != nil {
			return nil, err
		}
	}
	if f.Queue == "" {
		return nil, InvalidArg("on_success.queue", "missing")
	}
	return f, nil
}

func b64Field(field string, v json.RawMessage) ([]byte, error) {
	var s string
	if !utf8.Valid(v) || json.Unmarshal(v, &s) != nil {
		return nil, InvalidArg(field, "want a base64 string")
	}
	p, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, InvalidArg(field, "bad base64: %v", err)
	}
	return p, nil
}
