package main

import (
	"context"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/edgeq/edgeq/transport/httpapi"
	"github.com/edgeq/edgeq/transport/native"
)

// jobClient is what `edgeq work` and `edgeq bench` need of a daemon: the
// job operations, which both httpapi.Client and native.Client speak.
type jobClient interface {
	Enqueue(ctx context.Context, queue string, payload []byte, o httpapi.EnqueueOptions) (httpapi.EnqueueResult, error)
	EnqueueBatch(ctx context.Context, queue string, lines []httpapi.BatchLine) ([]httpapi.BatchResult, error)
	Lease(ctx context.Context, queue string, max int, wait, ttr time.Duration) ([]httpapi.Job, error)
	Ack(ctx context.Context, id, lease string) error
	AckLease(ctx context.Context, queue string, max int, wait, ttr time.Duration, acks []httpapi.AckItem) ([]httpapi.Job, []error, error)
	Nack(ctx context.Context, id, lease string, delay time.Duration, reason string) (string, error)
	Fail(ctx context.Context, id, lease, reason string) error
	Extend(ctx context.Context, id, lease string, ttr time.Duration) (time.Time, error)
	Close()
}

var (
	_ jobClient = (*httpapi.Client)(nil)
	_ jobClient = (*native.Client)(nil)
)

// nativeFlag is --native of work and bench: the job operations go over the
// native protocol (docs/protocol.md) instead of HTTP.
func nativeFlag() cli.Flag {
	return &cli.StringFlag{Name: "native", Usage: "speak the native protocol at `ADDR` (unix:///path or native://host:port) for the job operations [$EDGEQ_NATIVE]"}
}

// nativeClient is the native client of --native (or EDGEQ_NATIVE), nil
// when neither is set; conns is how many connections pipelined calls
// share; coalesce groups concurrent enqueues into batch frames. It sends
// the token of the client flags.
func nativeClient(c *cli.Context, e env, conns int, coalesce bool) (*native.Client, error) {
	addr := clientSetting(c, e, "native", "EDGEQ_NATIVE", "")
	if addr == "" {
		return nil, nil
	}
	cl, err := native.NewClient(addr, native.ClientConfig{Token: clientSetting(c, e, "token", "EDGEQ_TOKEN", ""), Conns: conns, Coalesce: coalesce})
	if err != nil {
		return nil, usageErrorf("--native: %v", err)
	}
	return cl, nil
}
