package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/httpapi"
	"github.com/edgeq/edgeq/transport/wire"
)

func jobCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "job",
		Usage: "show, cancel or retry one job",
		Subcommands: []*cli.Command{
			{
				Name:      "show",
				Usage:     "show a job with its payload",
				ArgsUsage: "ID",
				Flags:     clientCommandFlags(),
				Action: func(c *cli.Context) error {
					id, err := jobArg(c)
					if err != nil {
						return err
					}
					var j httpapi.Job
					// The answer names the job.
					err = request(c, e, "show job", func(ctx context.Context, cl *httpapi.Client) (err error) {
						j, err = cl.Job(ctx, id)
						return err
					})
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, j)
					}
					return printJob(c.App.Writer, j)
				},
			},
			jobChange(e, "cancel", "delete a job that is not leased", "cancel job", "cancelled %s\n",
				(*httpapi.Client).Cancel),
			jobChange(e, "retry", "move a dead job back to ready, its attempts reset", "retry job",
				"retried %s: ready again, attempts reset\n", (*httpapi.Client).RetryDead),
		},
	}
}

// jobChange is a job subcommand that changes one job by id (call) and
// says so (done, with the id), or prints {"ok":true} with --json.
func jobChange(e env, name, usage, what, done string, call func(*httpapi.Client, context.Context, string) error) *cli.Command {
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "ID",
		Flags:     clientCommandFlags(),
		Action: func(c *cli.Context) error {
			id, err := jobArg(c)
			if err != nil {
				return err
			}
			err = request(c, e, what, func(ctx context.Context, cl *httpapi.Client) error {
				return call(cl, ctx, id) // the answer names the job
			})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, httpapi.OKResult{OK: true})
			}
			_, err = fmt.Fprintf(c.App.Writer, done, id)
			return err
		},
	}
}

func jobArg(c *cli.Context) (string, error) {
	args, err := wantArgs(c, "ID")
	if err != nil {
		return "", err
	}
	if _, err := job.ParseID(args[0]); err != nil {
		return "", usageErrorf("job id: want 16 hex digits, got %q", args[0])
	}
	return args[0], nil
}

// printJob writes a job as "field: value" lines, then its payload as text
// when it is UTF-8, else its size.
func printJob(w io.Writer, j httpapi.Job) error {
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("id", j.ID)
	row("queue", j.Queue)
	row("state", j.State)
	row("attempts", fmt.Sprintf("%d/%d", j.Attempt, j.MaxAttempts))
	row("created", j.CreatedAt.UTC().Format(time.RFC3339))
	row("run at", j.RunAt.UTC().Format(time.RFC3339))
	if !j.ExpiresAt.IsZero() {
		row("expires", j.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if j.Key != "" {
		row("key", j.Key)
	}
	if j.Group != "" {
		row("group", j.Group)
	}
	if j.Lease != nil {
		row("lease", j.Lease.ID+" until "+j.Lease.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if f := j.OnSuccess; f != nil {
		row("on success", f.Queue+" (payload: "+followUpPayload(f)+")")
	}
	for _, k := range slices.Sorted(mapKeys(j.Headers)) {
		row("header "+k, j.Headers[k])
	}
	row("content type", j.ContentType)
	if j.LastError != "" {
		row("last error", oneLine(j.LastError, 200))
	}
	body := j.Body()
	switch {
	case len(body) == 0:
		row("payload", "(empty)")
	case utf8.Valid(body) && len(body) <= 4096:
		row("payload", strings.TrimRight(string(body), "\n"))
	default:
		row("payload", fmt.Sprintf("(%d bytes; see --json)", len(body)))
	}
	return tw.Flush()
}

// followUpPayload describes a follow-up's payload in one line.
func followUpPayload(f *wire.OnSuccessJSON) string {
	switch {
	case f.Payload != nil:
		return oneLine(string(f.Payload), 200)
	case f.PayloadB64 == nil:
		return "the result"
	case utf8.Valid(f.PayloadB64) && len(f.PayloadB64) <= 200:
		return oneLine(string(f.PayloadB64), 200)
	}
	return fmt.Sprintf("%d bytes", len(f.PayloadB64))
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
