package httpapi

import (
	"bytes"
	"testing"

	"github.com/edgeq/edgeq/engine/job"
)

// TestClientOnSuccess: the Go client sends a follow-up by the enqueue
// query (any payload bytes) and in a batch line, and the server hands it
// to the engine unchanged.
func TestClientOnSuccess(t *testing.T) {
	ts := mustStartServer(t, Config{})
	c := ts.client(t, "")
	ctx := t.Context()
	follow := []*job.FollowUp{
		{Queue: "upload"},
		{Queue: "upload", Payload: []byte{0, 0xff, '&', '='}, HasPayload: true},
	}
	for _, f := range follow {
		if _, err := c.Enqueue(ctx, "convert", []byte("raw"), EnqueueOptions{OnSuccess: f}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.EnqueueBatch(ctx, "convert", []BatchLine{{Payload: []byte("b"), EnqueueOptions: EnqueueOptions{OnSuccess: follow[1]}}}); err != nil {
		t.Fatal(err)
	}
	news, _ := ts.eng.received()
	want := []*job.FollowUp{follow[0], follow[1], follow[1]}
	if len(news) != len(want) {
		t.Fatalf("engine got %d jobs, want %d", len(news), len(want))
	}
	for i, w := range want {
		g := news[i].OnSuccess
		if g == nil || g.Queue != w.Queue || g.HasPayload != w.HasPayload || !bytes.Equal(g.Payload, w.Payload) {
			t.Errorf("job %d: engine got on_success %+v, want %+v", i, g, w)
		}
	}
}
