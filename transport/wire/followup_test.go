package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/edgeq/edgeq/engine/job"
)

// TestBatchLineOnSuccess: a line's on_success object decodes to the
// job's follow-up (a JSON payload, bytes in payload_b64, or none: the
// result), survives MarshalJSON, and a bad one is refused naming the field.
func TestBatchLineOnSuccess(t *testing.T) {
	for name, tc := range map[string]struct {
		line string
		want job.FollowUp
	}{
		"result":     {`{"payload":1,"on_success":{"queue":"upload"}}`, job.FollowUp{Queue: "upload"}},
		"json":       {`{"payload":1,"on_success":{"queue":"upload","payload":{"to":"s3"}}}`, job.FollowUp{Queue: "upload", Payload: []byte(`{"to":"s3"}`), HasPayload: true}},
		"bytes":      {`{"payload":1,"on_success":{"queue":"upload","payload_b64":"AP8="}}`, job.FollowUp{Queue: "upload", Payload: []byte{0, 0xff}, HasPayload: true}},
		"empty":      {`{"payload":1,"on_success":{"queue":"upload","payload_b64":""}}`, job.FollowUp{Queue: "upload", Payload: []byte{}, HasPayload: true}},
		"null field": {`{"payload":1,"on_success":{"queue":"upload","payload":null,"payload_b64":null}}`, job.FollowUp{Queue: "upload"}},
	} {
		t.Run(name, func(t *testing.T) {
			var l BatchLine
			if err := l.UnmarshalJSON([]byte(tc.line)); err != nil {
				t.Fatalf("UnmarshalJSON: %v", err)
			}
			check := func(step string, got *job.FollowUp) {
				if got == nil || got.Queue != tc.want.Queue || got.HasPayload != tc.want.HasPayload || !bytes.Equal(got.Payload, tc.want.Payload) {
					t.Fatalf("%s: on_success = %+v, want %+v", step, got, tc.want)
				}
			}
			check("decoded", l.OnSuccess)
			check("ToNew", l.ToNew("q").OnSuccess)
			b, err := l.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			var again BatchLine
			if err := again.UnmarshalJSON(b); err != nil {
				t.Fatalf("UnmarshalJSON(%s): %v", b, err)
			}
			check("round trip through "+string(b), again.OnSuccess)
		})
	}
	for name, tc := range map[string]struct{ line, field string }{
		"not an object": {`{"payload":1,"on_success":"upload"}`, "on_success"},
		"no queue":      {`{"payload":1,"on_success":{}}`, "on_success.queue"},
		"queue number":  {`{"payload":1,"on_success":{"queue":7}}`, "on_success.queue"},
		"both payloads": {`{"payload":1,"on_success":{"queue":"u","payload":1,"payload_b64":"AA=="}}`, "on_success.payload"},
		"bad base64":    {`{"payload":1,"on_success":{"queue":"u","payload_b64":"%%"}}`, "on_success.payload_b64"},
		"unknown field": {`{"payload":1,"on_success":{"queue":"u","delay":"1s"}}`, "on_success.delay"},
	} {
		var l BatchLine
		err := l.UnmarshalJSON([]byte(tc.line))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, job.ErrInvalidArgument) {
			t.Errorf("%s: UnmarshalJSON = %v, want an invalid argument naming %s", name, err, tc.field)
		}
		if err != nil && !strings.HasPrefix(err.Error(), tc.field+":") {
			t.Errorf("%s: message %q does not start with the field", name, err)
		}
	}
}
