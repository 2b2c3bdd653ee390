package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/httpapi"
)

// This file holds `edgeq queue` and the helpers that every client command
// shares: the --json flag, argument checks and the exit code of an answer.

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print the daemon's answer as JSON"}
}

// clientCommandFlags are the client flags plus --json and extra.
func clientCommandFlags(extra ...cli.Flag) []cli.Flag {
	return append(append(clientFlags(), jsonFlag()), extra...)
}

// tokenHint is what a CLI user is told when the daemon answers 401; the
// daemon's own message speaks to raw HTTP clients.
const tokenHint = "the daemon wants its token: pass --token or set EDGEQ_TOKEN"

// clientError wraps an error of a call to the daemon: a refusal for now
// (429, 503) exits 75 so that scripts retry, anything else 1. A 401 says
// how to give the token.
func clientError(what string, err error) error {
	var ae *httpapi.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		hinted := *ae
		hinted.Message = tokenHint
		return fmt.Errorf("%s: %w", what, &hinted)
	}
	if errors.As(err, &ae) && ae.Temporary() {
		msg := fmt.Sprintf("%s refused for now: %v", what, err)
		if ae.RetryAfter > 0 {
			msg += fmt.Sprintf(" (retry after %s)", ae.RetryAfter)
		}
		return &exitError{code: exitTempFail, err: errors.New(msg)}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// wantArgs checks that the command got exactly the arguments named, and
// names them as its usage does when it did not.
func wantArgs(c *cli.Context, names ...string) ([]string, error) {
	args := c.Args().Slice()
	if len(args) == len(names) {
		return args, nil
	}
	if len(names) == 0 {
		return nil, usageErrorf("%s: takes no arguments, got %d", commandPath(c), len(args))
	}
	got := "no arguments"
	switch {
	case len(args) == 1:
		got = "1 argument"
	case len(args) > 1:
		got = fmt.Sprintf("%d arguments", len(args))
	}
	return nil, usageErrorf("%s: want %s, got %s", commandPath(c), strings.Join(names, " "), got)
}

// commandPath is the command as typed after the program's name: "queue pause".
func commandPath(c *cli.Context) string {
	var names []string
	for _, x := range c.Lineage() {
		if x.Command != nil && x.Command.Name != "" && x.Command.Name != c.App.Name {
			names = append(names, x.Command.Name)
		}
	}
	slices.Reverse(names)
	return strings.Join(names, " ")
}

// queueArg is the single QUEUE argument of a command, checked.
func queueArg(c *cli.Context) (string, error) {
	args, err := wantArgs(c, "QUEUE")
	if err != nil {
		return "", err
	}
	if err := job.CheckQueueName(args[0]); err != nil {
		return "", &exitError{code: exitUsage, err: err}
	}
	return args[0], nil
}

// request runs one request of a client command: call gets a client of the
// daemon and the command's deadline (clientTimeout); a failure is reported
// by clientError, naming what.
func request(c *cli.Context, e env, what string, call func(context.Context, *httpapi.Client) error) error {
	ctx, cancel := context.WithTimeout(c.Context, clientTimeout)
	defer cancel()
	if err := call(ctx, newClient(c, e)); err != nil {
		return clientError(what, err)
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// newTable writes aligned columns; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

func queueCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "queue",
		Usage: "list, pause, resume or purge the queues of a running daemon",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list the queues with their counts",
				Flags: clientCommandFlags(),
				Action: func(c *cli.Context) error {
					if _, err := wantArgs(c); err != nil {
						return err
					}
					var qs []httpapi.QueueStats
					err := request(c, e, "list queues", func(ctx context.Context, cl *httpapi.Client) (err error) {
						qs, err = cl.Queues(ctx)
						return err
					})
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, httpapi.QueueList{Queues: qs})
					}
					return printQueueList(c.App.Writer, qs)
				},
			},
			queuePauseCommand(e, "pause", "stop dispatching a queue's jobs (ingest continues)"),
			queuePauseCommand(e, "resume", "restart dispatching a queue's jobs"),
			purgeCommand(e, "delete a queue's ready and delayed jobs", "purge", "jobs",
				func(c *httpapi.Client) func(context.Context, string) (int, error) { return c.Purge }),
		},
	}
}

func queuePauseCommand(e env, name, usage string) *cli.Command {
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "QUEUE",
		Flags:     clientCommandFlags(),
		Action: func(c *cli.Context) error {
			q, err := queueArg(c)
			if err != nil {
				return err
			}
			err = request(c, e, name+" "+q, func(ctx context.Context, cl *httpapi.Client) error {
				if name == "pause" {
					return cl.Pause(ctx, q)
				}
				return cl.Resume(ctx, q)
			})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, httpapi.PauseResult{Queue: q, Paused: name == "pause"})
			}
			_, err = fmt.Fprintf(c.App.Writer, "%sd %s\n", name, q)
			return err
		},
	}
}

func printQueueList(w io.Writer, qs []httpapi.QueueStats) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "QUEUE\tCLASS\tREADY\tDELAYED\tLEASED\tDEAD\tOLDEST\tPAUSED")
	for _, q := range qs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", q.Name, q.Class, q.Ready, q.Delayed, q.Leased, q.Dead,
			fmtSeconds(q.OldestReadyAgeS), strconv.FormatBool(q.Paused))
	}
	return tw.Flush()
}

// purgeCommand is `queue purge` and `dead purge`: delete and say how many.
func purgeCommand(e env, usage, verb, what string, call func(*httpapi.Client) func(context.Context, string) (int, error)) *cli.Command {
	return &cli.Command{
		Name:      "purge",
		Usage:     usage,
		ArgsUsage: "QUEUE",
		Flags:     clientCommandFlags(),
		Action: func(c *cli.Context) error {
			q, err := queueArg(c)
			if err != nil {
				return err
			}
			var n int
			err = request(c, e, verb+" "+q, func(ctx context.Context, cl *httpapi.Client) (err error) {
				n, err = call(cl)(ctx, q)
				return err
			})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, httpapi.DeletedResult{Deleted: n})
			}
			_, err = fmt.Fprintf(c.App.Writer, "purged %d %s from %s\n", n, what, q)
			return err
		},
	}
}
