package client_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeq/edgeq/client"
	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/transport/httpapi"
)

// countingTransport counts the requests whose path ends in suffix.
type countingTransport struct {
	suffix string
	n      atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, c.suffix) {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestWorkerAcksWithTheNextLease (issue 16 target 5): a worker acks the
// job it finished in its next lease request, so that each job costs one
// request and one commit: no single ack is sent while it keeps leasing.
func TestWorkerAcksWithTheNextLease(t *testing.T) {
	eng, addr := serve(t, engine.Config{})
	acks := &countingTransport{suffix: "/ack"}
	c := httpapi.NewClient("http://"+addr, "", &http.Client{Transport: acks})
	t.Cleanup(c.CloseIdleConnections)

	enqueueN(t, c, "mail", 20)
	var ran atomic.Int64
	stop := run(t, &client.Worker{Client: c, Queue: "mail", Concurrency: 2, Wait: time.Second}, func(ctx context.Context, j *client.Job) error {
		ran.Add(1)
		return nil
	})
	until(t, "20 jobs acked", func() bool { return stats(t, eng, "mail").CompletedTotal == 20 })
	single := acks.n.Load()
	if err := stop(); err != nil {
		t.Fatalf("Run after a stop: %v", err)
	}
	if single != 0 {
		t.Errorf("%d single acks sent while leasing, want none (each rides on the next lease)", single)
	}
	if s := stats(t, eng, "mail"); ran.Load() != 20 || s.Leased != 0 || s.RetriedTotal != 0 {
		t.Errorf("ran %d, stats %+v; want 20 ran once each, none left leased", ran.Load(), s)
	}
}
