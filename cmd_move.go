package main

import (
	"fmt"
	"io"
	"math"
	"time"

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
			"again goes on with the rest. --dry-run only counts (--json: would_move).\n" +
			"Progress (moved, left, rate, ETA) goes to standard error about twice a second,\n" +
			"redrawn in place on a terminal, a line each otherwise.",
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
	if rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return usageErrorf("--rate: want jobs per second, 0 (unpaced) or more, got %v", rate)
	}
	cl := newClient(c, e)
	defer cl.CloseIdleConnections()
	// A paced move lasts as long as it lasts: no request timeout, but the
	// command's context (SIGINT) stops it, keeping what moved.
	ctx, stop := signalContext(c.Context)
	defer stop()
	what := fmt.Sprintf("move %s to %s", from, to)
	if c.Bool("dry-run") {
		res, err := cl.Move(ctx, from, to, httpapi.MoveOptions{State: state, Limit: min(limit, maxMoveCall), DryRun: true})
		if err != nil {
			return clientError(what, err)
		}
		would := min(limit, res.Remaining)
		if c.Bool("json") {
			return printJSON(c.App.Writer, dryMoveResult{WouldMove: would, Remaining: res.Remaining})
		}
		_, err = fmt.Fprintf(c.App.Writer, "would move %d %s jobs from %s to %s; %d left in %s\n", would, state, from, to, res.Remaining, from)
		return err
	}

	p := moveProgress{w: c.App.ErrWriter, inPlace: isTerminal(c.App.ErrWriter), from: from, limit: limit, start: time.Now()}
	var total httpapi.MoveResult
	step := firstMoveStep(rate)
	for {
		n := min(limit-total.Moved, step)
		t0 := time.Now()
		res, err := cl.Move(ctx, from, to, httpapi.MoveOptions{State: state, Limit: n, Rate: rate})
		if err != nil {
			p.end()
			if total.Moved > 0 {
				fmt.Fprintf(c.App.ErrWriter, "edgeq: moved %d jobs before the error\n", total.Moved)
			}
			return clientError(what, err)
		}
		total.Moved += res.Moved
		total.Remaining = res.Remaining
		if res.Moved < n || total.Moved >= limit || res.Remaining == 0 || ctx.Err() != nil {
			break
		}
		p.update(total)
		if rate == 0 {
			step = nextMoveStep(step, res.Moved, time.Since(t0))
		}
	}
	p.end()
	if c.Bool("json") {
		return printJSON(c.App.Writer, total)
	}
	_, err = fmt.Fprintf(c.App.Writer, "moved %d %s jobs from %s to %s; %d left in %s\n", total.Moved, state, from, to, total.Remaining, from)
	return err
}

// dryMoveResult is what `edgeq move --dry-run --json` prints.
type dryMoveResult struct {
	WouldMove int `json:"would_move"`
	Remaining int `json:"remaining"`
}

// moveStepTime is how long one request of a move should last, so that
// its progress shows at least once a second.
const moveStepTime = 500 * time.Millisecond

// firstMoveStep is the jobs of the first request: half a second's worth
// at rate (the daemon paces each request), 1000 when unpaced.
func firstMoveStep(rate float64) int {
	if rate == 0 {
		return 1000
	}
	return int(min(maxMoveCall, max(1, math.Round(rate*moveStepTime.Seconds()))))
}

// nextMoveStep sizes the next unpaced request from how long the last one
// took to move moved jobs, growing at most eightfold.
func nextMoveStep(step, moved int, took time.Duration) int {
	if moved == 0 || took <= 0 {
		return step
	}
	want := float64(moved) * moveStepTime.Seconds() / took.Seconds()
	return int(min(maxMoveCall, float64(step)*8, max(100, want)))
}

// moveProgress writes the progress of a move between its requests: in
// place on a terminal, else a line each.
type moveProgress struct {
	w       io.Writer
	inPlace bool
	from    string
	limit   int
	start   time.Time
	drawn   bool // a line is on the terminal
}

func (p *moveProgress) update(total httpapi.MoveResult) {
	planned := total.Moved + min(p.limit-total.Moved, total.Remaining)
	rate := float64(total.Moved) / time.Since(p.start).Seconds()
	eta := "-"
	if rate > 0 {
		eta = fmtSeconds(float64(planned-total.Moved) / rate)
	}
	line := fmt.Sprintf("moved %d of %d; %d left in %s; %s jobs/s; ETA %s", total.Moved, planned, total.Remaining, p.from, fmtRate(rate), eta)
	if p.inPlace {
		fmt.Fprintf(p.w, "\r%s%s", line, ansiClearLine)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, line)
}

// end clears the line drawn on a terminal, before the summary or an error.
func (p *moveProgress) end() {
	if p.drawn {
		fmt.Fprint(p.w, "\r"+ansiClearLine)
		p.drawn = false
	}
}
