package mqttapi

import (
	"encoding/json"
	"testing"
	"time"
)

// TestNoticeJSON: a rejection notice is valid JSON whose fields hold what
// they were given, whatever the characters of the topic and key.
func TestNoticeJSON(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 5, time.FixedZone("CET", 3600))
	for _, tc := range []struct{ name, topic, key, wantKey string }{
		{"plain", "edgeq/jobs/work", "k1", "k1"},
		{"escapes", "edgeq/jobs/<a&b>", "\"q\"\\\n\t\x01", "\"q\"\\\n\t\x01"},
		{"invalid utf-8", "edgeq/jobs/w", "a\xffb", "a\ufffdb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := notice(ReasonInvalid, tc.topic, tc.key, at)
			var got struct{ Reason, Topic, Key, At string }
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("notice %s: %v", b, err)
			}
			if got.Reason != ReasonInvalid || got.Topic != tc.topic || got.Key != tc.wantKey || got.At != "2026-03-01T11:00:00.000000005Z" {
				t.Errorf("notice %s decodes to %+v", b, got)
			}
		})
	}
}
