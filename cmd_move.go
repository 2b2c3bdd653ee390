package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/httpapi"
)

// maxMoveCall is the most jobs one request moves (engine.MaxMove); a larger
// --limit takes several requests.
const maxMoveCall = 100000

func moveCommand(e env) *cli.Command {
	return &cli.Command{
		Name:      "move",
		Usage:     "move a queue's backlog (ready or dead jobs) to another queue, paced",
		ArgsUsage: "QUEUE",
		Description: "Moves up to --limit jobs, oldest first, at --rate jobs a second. Each step is\n" +
			"committed as it goes: an interrupted move keeps what it moved, and running it\n" +
			"again goes on with the rest. --dry-run only counts.",
		Flags: clientCommandFlags(
			&cli.StringFlag{Name: "to", Usage: "the `QUEUE` to move jobs to (required)"},
			&cli.StringFlag{Name: "state", Value: "ready", Usage: "the jobs to move: ready or dead"},
			&cli.IntFlag{Name: "limit", Value: 1000, Usage: "jobs to move at most"},
			&cli.Float64Flag{Name: "rate", Usage: "jobs per second", DefaultText: "unpaced"},
			&cli.BoolFlag{Name: "dry-run", Usage: "count the jobs that would move, move none"},
		),
		Action: func(c *cli.Context) error { return move(c, e) },
	}
}

func move(c *cli.Context, e env) error {
	from, err := queueArg(c)
	if err != nil {
		return err
	}
	to := c.String("to")
	switch {
	case to == "":
		return usageErrorf("--to: required")
	case job.CheckQueueName(to) != nil:
		return usageErrorf("--to: %v", job.CheckQueueName(to))
	case to == from:
		return usageErrorf("--to: must differ from %s", from)
	}
	state := c.String("state")
	if state != "ready" && state != "dead" {
		return usageErrorf("--state: want ready or dead, got %q", state)
	}
	limit, rate := c.Int("limit"), c.Float64("rate")
	if limit < 1 {
		return usageErrorf("--limit: must be at least 1")
	}
	if rate < 0 {
		return usageErrorf("--rate: must not be negative")
	}
	cl := newClient(c, e)
	defer cl.CloseIdleConnections()
	// A paced move lasts as long as it lasts: no request timeout, but the
	// command's context (SIGINT) stops it, keeping what moved.
	ctx, stop := signalContext(c.Context)
	defer stop()
	var total httpapi.MoveResult
	for {
		n := min(limit-total.Moved, maxMoveCall)
		res, err := cl.Move(ctx, from, to, httpapi.MoveOptions{State: state, Limit: n, Rate: rate, DryRun: c.Bool("dry-run")})
		if err != nil {
			if total.Moved > 0 {
				fmt.Fprintf(c.App.ErrWriter, "edgeq: moved %d jobs before the error\n", total.Moved)
			}
			return clientError(fmt.Sprintf("move %s to %s", from, to), err)
		}
		total.Moved += res.Moved
		total.Remaining = res.Remaining
		if c.Bool("dry-run") || res.Moved < n || total.Moved >= limit || res.Remaining == 0 {
			break
		}
		fmt.Fprintf(c.App.ErrWriter, "moved %d, %d left\n", total.Moved, total.Remaining)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, total)
	}
	verb := "moved"
	if c.Bool("dry-run") {
		verb = "would move"
	}
	_, err = fmt.Fprintf(c.App.Writer, "%s %d %s jobs from %s to %s; %d left in %s\n", verb, total.Moved, state, from, to, total.Remaining, from)
	return err
}
