package native

import (
	"errors"
	"strings"
	"testing"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/httpapi"
)

// TestClientRefusesOnSuccess: the native protocol does not carry a
// follow-up, so the client refuses a job with one, naming the field,
// rather than sending it without.
func TestClientRefusesOnSuccess(t *testing.T) {
	c, err := NewClient("native://127.0.0.1:1", ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	o := httpapi.EnqueueOptions{OnSuccess: &job.FollowUp{Queue: "upload"}}
	_, err = c.Enqueue(t.Context(), "q", nil, o)
	if !errors.Is(err, job.ErrInvalidArgument) || !strings.Contains(err.Error(), "on_success") {
		t.Errorf("Enqueue with on_success = %v, want invalid_argument naming on_success", err)
	}
	_, err = c.EnqueueBatch(t.Context(), "q", []httpapi.BatchLine{{}, {EnqueueOptions: o}})
	if !errors.Is(err, job.ErrInvalidArgument) || !strings.Contains(err.Error(), "on_success") {
		t.Errorf("EnqueueBatch with on_success = %v, want invalid_argument naming on_success", err)
	}
}
