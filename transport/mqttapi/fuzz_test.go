package mqttapi

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/wire"
)

func TestTopicQueue(t *testing.T) {
	tests := []struct {
		topic  string
		queue  string
		submit bool
		ok     bool
	}{
		{"edgeq/jobs/work", "work", false, true},
		{"edgeq/submit/work", "work", true, true},
		{"edgeq/jobs/", "", false, false},
		{"edgeq/jobs/a/b", "", false, false},
		{"edgeq/other/work", "", false, false},
		{"edgeqx/jobs/work", "", false, false},
		{"edgeq/jobs", "", false, false},
		{"other/edgeq/jobs/work", "", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.topic, func(t *testing.T) {
			q, submit, ok := topicQueue("edgeq", tc.topic)
			if q != tc.queue || submit != tc.submit || ok != tc.ok {
				t.Errorf("topicQueue(%q) = %q, %v, %v; want %q, %v, %v", tc.topic, q, submit, ok, tc.queue, tc.submit, tc.ok)
			}
		})
	}
}

func TestMatchFilter(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"sensors/+/reading", "sensors/a/reading", true},
		{"sensors/+/reading", "sensors/a/b/reading", false},
		{"sensors/+/reading", "sensors//reading", true},
		{"sensors/#", "sensors", true},
		{"sensors/#", "sensors/a/b", true},
		{"#", "a/b", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"a/b", "a/b", true},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"+", "a", true},
		{"+", "a/b", false},
		{"a/+", "a", false},
	}
	for _, tc := range tests {
		if got := matchFilter(tc.filter, tc.topic); got != tc.want {
			t.Errorf("matchFilter(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
}

func TestKeyFrom(t *testing.T) {
	tests := []struct {
		payload, field, want string
	}{
		{`{"msg_id":"a"}`, "msg_id", "a"},
		{` {"msg_id":12.5}`, "msg_id", "12.5"},
		{`{"msg_id":true}`, "msg_id", ""},
		{`{"other":"a"}`, "msg_id", ""},
		{`["a"]`, "msg_id", ""},
		{`not json`, "msg_id", ""},
		{`{"msg_id":"a"}`, "", ""},
		{`{"msg_id":{"x":1}}`, "msg_id", ""},
	}
	for _, tc := range tests {
		if got := keyFrom([]byte(tc.payload), tc.field); got != tc.want {
			t.Errorf("keyFrom(%s, %q) = %q, want %q", tc.payload, tc.field, got, tc.want)
		}
	}
}

func TestDecodeEnvelope(t *testing.T) {
	n, err := decodeEnvelope("q", []byte(`{"payload":{"a":1},"key":"k","delay":"5s","max_attempts":3,"headers":{"X":"y"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if n.Queue != "q" || string(n.Payload) != `{"a":1}` || n.Key != "k" || n.Delay != 5*time.Second ||
		n.MaxAttempts != 3 || n.Headers["x"] != "y" || n.ContentType != "application/json" {
		t.Errorf("decodeEnvelope = %+v", n)
	}
	for _, bad := range []string{``, `[]`, `null`, `{"payload":1,"nope":2}`, `{}`, `{"payload_b64":"!!"}`, `{"payload":1} x`} {
		if _, err := decodeEnvelope("q", []byte(bad)); !errors.Is(err, job.ErrInvalidArgument) {
			t.Errorf("decodeEnvelope(%q) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func FuzzTopicQueue(f *testing.F) {
	for _, s := range []string{"edgeq/jobs/work", "edgeq/submit/a.b", "edgeq/jobs/", "edgeq/x/y", "a/b/c/d", "edgeq/jobs/+", "#"} {
		f.Add("edgeq", s)
	}
	f.Fuzz(func(t *testing.T, prefix, topic string) {
		q, submit, ok := topicQueue(prefix, topic)
		if !ok {
			if q != "" || submit {
				t.Fatalf("not ok but %q, %v", q, submit)
			}
			return
		}
		kind := "jobs"
		if submit {
			kind = "submit"
		}
		if prefix+"/"+kind+"/"+q != topic || q == "" || strings.Contains(q, "/") {
			t.Fatalf("topicQueue(%q, %q) = %q, %v", prefix, topic, q, submit)
		}
		// The subscription filter of the kind covers the topic, unless the
		// prefix itself holds wildcards (config validation refuses those).
		if !strings.ContainsAny(prefix, "+#") && !strings.HasPrefix(topic, "$") && !matchFilter(prefix+"/"+kind+"/+", topic) {
			t.Fatalf("filter %s/%s/+ does not match %q", prefix, kind, topic)
		}
		if ownTopic(prefix, topic) {
			t.Fatalf("%q is both an input and an own topic", topic)
		}
	})
}

func FuzzEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"payload":{"a":1},"key":"k"}`,
		`{"payload_b64":"aGk=","content_type":"text/plain","delay":"1s"}`,
		`{"payload":1,"run_at":"2030-01-01T00:00:00Z"}`,
		`{"payload":null,"headers":{"A":"b"},"max_attempts":2,"ttr":"1m","expires_in":"1h"}`,
		`{"payload":1,"payload_b64":"aGk="}`,
		`[]`, `null`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := decodeEnvelope("q", data)
		if err != nil {
			if !errors.Is(err, job.ErrInvalidArgument) {
				t.Fatalf("error %v does not wrap ErrInvalidArgument", err)
			}
			return
		}
		if n.Queue != "q" || n.ContentType == "" {
			t.Fatalf("decoded %+v", n)
		}
		// What decodes encodes as a batch line and decodes to the same job.
		line := wire.BatchLine{Payload: n.Payload, EnqueueOptions: wire.EnqueueOptions{
			Key: n.Key, Delay: n.Delay, RunAt: n.RunAt, MaxAttempts: n.MaxAttempts, TTR: n.TTR,
			ExpiresIn: n.ExpiresIn, ExpiresAt: n.ExpiresAt, Headers: n.Headers, ContentType: n.ContentType,
		}}
		b, err := json.Marshal(line)
		if err != nil {
			t.Fatalf("marshal %+v: %v", line, err)
		}
		m, err := decodeEnvelope("q", b)
		if err != nil {
			t.Fatalf("re-decode %s: %v", b, err)
		}
		if string(m.Payload) != string(n.Payload) && !(json.Valid(n.Payload) && jsonEqual(m.Payload, n.Payload)) {
			t.Fatalf("payload %q became %q", n.Payload, m.Payload)
		}
		if m.Key != n.Key || m.Delay != n.Delay || m.MaxAttempts != n.MaxAttempts || !m.RunAt.Equal(n.RunAt) {
			t.Fatalf("options %+v became %+v", n, m)
		}
	})
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}
