package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/edgeq/edgeq/engine/job"
)

// The hand-written answers must be what encoding/json would write.
func TestAppendResultMatchesEncodingJSON(t *testing.T) {
	for _, r := range []job.Result{
		{ID: 1, Queue: "orders", State: job.StateReady, Durable: true},
		{ID: 0xfedcba9876543210, Queue: "a.b_c-d", State: job.StateDelayed, Duplicate: true},
		{ID: 42, Queue: "q\"\\\n\x01", State: job.StateDead},
	} {
		want, err := json.Marshal(EnqueueResult{ID: r.ID.String(), Queue: r.Queue, State: r.State.String(), Durable: r.Durable, Duplicate: r.Duplicate})
		if err != nil {
			t.Fatal(err)
		}
		if got := appendResult(nil, r); string(got) != string(want)+"\n" {
			t.Errorf("appendResult(%+v)\n got %s\nwant %s", r, got, want)
		}
	}
}

func TestAppendErrorBody(t *testing.T) {
	for _, a := range []answer{
		{status: 429, code: "queue_full", message: "queue \"q\" at max_depth\t10", retryAfter: 3},
		{status: 400, code: "invalid_argument", message: "delay: \xff bad"},
	} {
		var er ErrorResponse
		b := appendErrorBody(nil, a)
		if err := json.Unmarshal(b, &er); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		var want string
		_ = json.Unmarshal(mustMarshal(t, a.message), &want)
		if er.Error.Code != a.code || er.Error.Message != want || er.Error.RetryAfterS != a.retryAfter {
			t.Errorf("%s decodes as %+v", b, er)
		}
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
