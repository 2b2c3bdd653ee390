package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/httpapi"
)

const (
	defaultClient = "http://127.0.0.1:7070"
	// clientTimeout bounds one request of a client command to the daemon.
	clientTimeout = 30 * time.Second
)

// clientFlags are the flags of commands that talk to a running daemon. They
// are given both to the app, so that `edgeq --addr A enqueue` works, and to
// each client command, so that `edgeq enqueue --addr A` does.
func clientFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "addr", Usage: "daemon URL (default: " + defaultClient + ") [$EDGEQ_ADDR]"},
		&cli.StringFlag{Name: "token", Usage: "bearer token of the daemon's HTTP API [$EDGEQ_TOKEN]"},
	}
}

// clientSetting resolves a client flag: the innermost command that sets it,
// else its variable, else def.
func clientSetting(c *cli.Context, e env, flag, envName, def string) string {
	for _, x := range c.Lineage() {
		if x.IsSet(flag) {
			return x.String(flag)
		}
	}
	if v, ok := e.getenv(envName); ok {
		return v
	}
	return def
}

// clientAddr is the daemon URL of the client flags.
func clientAddr(c *cli.Context, e env) string {
	addr := clientSetting(c, e, "addr", "EDGEQ_ADDR", defaultClient)
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return addr
}

func newClient(c *cli.Context, e env) *httpapi.Client {
	return httpapi.NewClient(clientAddr(c, e), clientSetting(c, e, "token", "EDGEQ_TOKEN", ""), nil)
}

func enqueueCommand(e env) *cli.Command {
	return &cli.Command{
		Name:      "enqueue",
		Usage:     "add a job to a queue of a running daemon and print its id",
		ArgsUsage: "QUEUE [PAYLOAD | -]",
		Description: "The payload is the second argument, or standard input when it is \"-\";\n" +
			"without one the job has an empty payload. A payload that is valid JSON is sent\n" +
			"as application/json (a worker gets it as \"payload\") unless --content-type says\n" +
			"otherwise. Exit status 75 means the daemon refused the job for now (queue full,\n" +
			"rate limited, shed, shutting down): retry later.",
		Flags: clientCommandFlags(
			&cli.StringFlag{Name: "key", Usage: "idempotency key: a repeat within the dedupe window is not stored again"},
			&cli.StringFlag{Name: "group", Usage: "ordered group: the queue runs a group's jobs in order, group_concurrency at a time"},
			&cli.DurationFlag{Name: "delay", Usage: "run after this long, such as 30s", DefaultText: "at once"},
			&cli.IntFlag{Name: "max-attempts", Usage: "attempts before the job goes dead", DefaultText: "the queue's"},
			&cli.StringSliceFlag{Name: "header", Usage: "job header `NAME=VALUE` (repeatable)"},
			&cli.DurationFlag{Name: "ttr", Usage: "time to run once leased", DefaultText: "the queue's"},
			&cli.DurationFlag{Name: "expires-in", Usage: "dead-letter the job if it has not run within this long", DefaultText: "never"},
			&cli.StringFlag{Name: "content-type", Usage: "the payload's media type", DefaultText: "application/json if valid JSON, else application/octet-stream"},
			&cli.StringFlag{Name: "on-success", Usage: "follow-up: when the job succeeds, enqueue a job into `QUEUE` (in the same commit as its ack)"},
			&cli.StringFlag{Name: "on-success-payload", Usage: "the follow-up's payload", DefaultText: "the job's result"},
		),
		Action: func(c *cli.Context) error { return enqueue(c, e) },
	}
}

func enqueue(c *cli.Context, e env) error {
	args := c.Args().Slice()
	if len(args) < 1 || len(args) > 2 {
		return usageErrorf("enqueue: want QUEUE [PAYLOAD | -], got %d arguments", len(args))
	}
	queue := args[0]
	if err := job.CheckQueueName(queue); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	o := httpapi.EnqueueOptions{
		Key:         c.String("key"),
		Group:       c.String("group"),
		Delay:       c.Duration("delay"),
		MaxAttempts: c.Int("max-attempts"),
		TTR:         c.Duration("ttr"),
		ExpiresIn:   c.Duration("expires-in"),
		ContentType: c.String("content-type"),
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"delay", o.Delay}, {"ttr", o.TTR}, {"expires-in", o.ExpiresIn}} {
		if f.d < 0 {
			return usageErrorf("--%s: must not be negative", f.name)
		}
	}
	if o.MaxAttempts < 0 {
		return usageErrorf("--max-attempts: must not be negative")
	}
	if q := c.String("on-success"); q != "" {
		o.OnSuccess = &job.FollowUp{Queue: q}
		if p := c.String("on-success-payload"); p != "" {
			o.OnSuccess.Payload, o.OnSuccess.HasPayload = []byte(p), true
		}
	} else if c.IsSet("on-success-payload") {
		return usageErrorf("--on-success-payload: needs --on-success (the follow-up's queue)")
	}
	for _, h := range c.StringSlice("header") {
		name, value, ok := strings.Cut(h, "=")
		if !ok || name == "" {
			return usageErrorf("--header %q: want NAME=VALUE", h)
		}
		if o.Headers == nil {
			o.Headers = map[string]string{}
		}
		o.Headers[name] = value
	}

	var payload []byte
	if len(args) == 2 {
		payload = []byte(args[1])
		if args[1] == "-" {
			var err error
			if payload, err = readPayload(e.stdin); err != nil {
				return err
			}
		}
	}

	if o.ContentType == "" && json.Valid(payload) {
		// As MQTT ingest does: a worker then gets it as "payload", not
		// "payload_b64".
		o.ContentType = "application/json"
	}

	ctx, cancel := context.WithTimeout(c.Context, clientTimeout)
	defer cancel()
	res, err := newClient(c, e).Enqueue(ctx, queue, payload, o)
	if err != nil {
		return clientError("enqueue to "+queue, err)
	}
	if res.Duplicate {
		fmt.Fprintf(c.App.ErrWriter, "edgeq: duplicate key %q: %s is the job enqueued first\n", o.Key, res.ID)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, res)
	}
	_, err = fmt.Fprintln(c.App.Writer, res.ID)
	return err
}

// readPayload reads a payload from standard input, up to the largest
// max_payload a daemon may allow; the daemon enforces its own.
func readPayload(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxPayloadLimit+1))
	if err != nil {
		return nil, fmt.Errorf("read payload from standard input: %w", err)
	}
	if len(b) > maxPayloadLimit {
		return nil, fmt.Errorf("payload on standard input is larger than %s", Size(maxPayloadLimit))
	}
	return b, nil
}
