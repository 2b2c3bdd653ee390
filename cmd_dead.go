package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/httpapi"
)

func deadCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "dead",
		Usage: "list, retry or purge a queue's dead-letter set",
		Subcommands: []*cli.Command{
			{
				Name:      "list",
				Usage:     "list dead jobs, oldest first, a page at a time",
				ArgsUsage: "QUEUE",
				Description: "When more jobs follow, the command to list the next page is printed on\n" +
					"standard error (and the id is \"next\" in --json).",
				Flags: clientCommandFlags(
					&cli.IntFlag{Name: "limit", Value: 100, Usage: "jobs in the page (1..1000)"},
					&cli.StringFlag{Name: "after", Usage: "list the jobs after this `ID` (from the previous page)"},
				),
				Action: func(c *cli.Context) error { return deadList(c, e) },
			},
			{
				Name:      "retry",
				Usage:     "move dead jobs back to ready, attempts reset",
				ArgsUsage: "QUEUE",
				Flags: clientCommandFlags(
					&cli.IntFlag{Name: "limit", Value: 100, Usage: "jobs to move (1..1000); run again for more"},
				),
				Action: func(c *cli.Context) error {
					q, err := queueArg(c)
					if err != nil {
						return err
					}
					limit := c.Int("limit")
					if limit < 1 || limit > 1000 {
						return usageErrorf("--limit: want 1 to 1000, got %d", limit)
					}
					var n int
					err = request(c, e, "retry dead jobs of "+q, func(ctx context.Context, cl *httpapi.Client) (err error) {
						n, err = cl.DeadRetry(ctx, q, limit)
						return err
					})
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, httpapi.MovedResult{Moved: n})
					}
					_, err = fmt.Fprintf(c.App.Writer, "moved %d dead jobs of %s back to ready\n", n, q)
					return err
				},
			},
			purgeCommand(e, "delete a queue's dead jobs", "purge dead jobs of", "dead jobs",
				func(c *httpapi.Client) func(context.Context, string) (int, error) { return c.DeadPurge }),
		},
	}
}

func deadList(c *cli.Context, e env) error {
	q, err := queueArg(c)
	if err != nil {
		return err
	}
	limit, after := c.Int("limit"), c.String("after")
	if limit < 1 || limit > 1000 {
		return usageErrorf("--limit: want 1 to 1000, got %d", limit)
	}
	if after != "" {
		if _, err := job.ParseID(after); err != nil {
			return usageErrorf("--after: want a job id (16 hex digits), got %q", after)
		}
	}
	var jobs []httpapi.Job
	var next string
	err = request(c, e, "list dead jobs of "+q, func(ctx context.Context, cl *httpapi.Client) (err error) {
		jobs, next, err = cl.DeadList(ctx, q, after, limit)
		return err
	})
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, httpapi.JobList{Jobs: jobs, Next: next})
	}
	if len(jobs) == 0 {
		_, err := fmt.Fprintf(c.App.Writer, "no dead jobs in %s\n", q)
		return err
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "ID\tATTEMPTS\tCREATED\tLAST ERROR")
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%s\n", j.ID, j.Attempt, j.MaxAttempts,
			j.CreatedAt.UTC().Format(time.RFC3339), oneLine(j.LastError, 80))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(c.App.ErrWriter, "more: edgeq dead list %s --limit %d --after %s\n", q, limit, next)
	}
	return nil
}

// oneLine flattens s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
