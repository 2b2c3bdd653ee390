package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/edgeq/edgeq/engine/schedule"
	"github.com/edgeq/edgeq/transport/httpapi"
)

// `edgeq schedule list | set NAME ... | delete NAME`: the schedules of a
// running daemon (GET/PUT/DELETE /v1/schedules).

func scheduleCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "schedule",
		Usage: "list, set or delete the cron schedules of a running daemon",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list the schedules with their last and next run times",
				Flags: clientCommandFlags(),
				Action: func(c *cli.Context) error {
					if _, err := wantArgs(c); err != nil {
						return err
					}
					var ss []httpapi.ScheduleDoc
					err := request(c, e, "list schedules", func(ctx context.Context, cl *httpapi.Client) (err error) {
						ss, err = cl.Schedules(ctx)
						return err
					})
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, httpapi.ScheduleList{Schedules: ss})
					}
					return printScheduleList(c.App.Writer, ss)
				},
			},
			scheduleSetCommand(e),
			{
				Name:      "delete",
				Usage:     "delete a schedule made through the API (one of the configuration file is edited there)",
				ArgsUsage: "NAME",
				Flags:     clientCommandFlags(),
				Action: func(c *cli.Context) error {
					args, err := wantArgs(c, "NAME")
					if err != nil {
						return err
					}
					err = request(c, e, "delete schedule "+args[0], func(ctx context.Context, cl *httpapi.Client) error {
						return cl.DeleteSchedule(ctx, args[0])
					})
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, httpapi.OKResult{OK: true})
					}
					_, err = fmt.Fprintf(c.App.Writer, "deleted schedule %s\n", args[0])
					return err
				},
			},
		},
	}
}

func scheduleSetCommand(e env) *cli.Command {
	return &cli.Command{
		Name:      "set",
		Usage:     "create or replace a schedule (stored by the daemon; its runs count from now)",
		ArgsUsage: "NAME",
		Flags: clientCommandFlags(
			&cli.StringFlag{Name: "cron", Usage: "`EXPR`: five fields (\"*/5 * * * *\"), @daily..., or \"@every 30s\"", Required: true},
			&cli.StringFlag{Name: "queue", Usage: "`QUEUE` to enqueue each run into", Required: true},
			&cli.StringFlag{Name: "timezone", Usage: "IANA time zone of the cron fields (default UTC)"},
			&cli.StringFlag{Name: "payload", Usage: "each run's payload, a `JSON` value"},
			&cli.StringFlag{Name: "payload-b64", Usage: "each run's payload as `BASE64` bytes"},
			&cli.StringFlag{Name: "content-type", Usage: "the payload's content type"},
			&cli.StringSliceFlag{Name: "header", Usage: "job header `NAME=VALUE` (repeatable)"},
			&cli.IntFlag{Name: "max-attempts", Usage: "attempts per run; 0: the queue's"},
			&cli.DurationFlag{Name: "ttr", Usage: "lease time of a run; 0: the queue's"},
			&cli.DurationFlag{Name: "expires-in", Usage: "a run still waiting this long goes dead; 0: never"},
			&cli.StringFlag{Name: "catch-up", Usage: "runs missed while off: skip, once (default) or all"},
			&cli.StringFlag{Name: "overlap", Usage: "allow (default), or skip a run while the last one waits or runs"},
		),
		Action: func(c *cli.Context) error {
			args, err := wantArgs(c, "NAME")
			if err != nil {
				return err
			}
			spec, err := scheduleSpec(c)
			if err != nil {
				return err
			}
			var doc httpapi.ScheduleDoc
			err = request(c, e, "set schedule "+args[0], func(ctx context.Context, cl *httpapi.Client) (err error) {
				doc, err = cl.PutSchedule(ctx, args[0], spec)
				return err
			})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, doc)
			}
			_, err = fmt.Fprintf(c.App.Writer, "set schedule %s: next run %s\n", doc.Name, fmtRunTime(doc.NextFireAt))
			return err
		},
	}
}

// scheduleSpec is the body of `schedule set`, from its flags.
func scheduleSpec(c *cli.Context) (schedule.Spec, error) {
	s := schedule.Spec{
		Cron: c.String("cron"), Queue: c.String("queue"), Timezone: c.String("timezone"),
		PayloadB64: c.String("payload-b64"), ContentType: c.String("content-type"),
		MaxAttempts: c.Int("max-attempts"), CatchUp: c.String("catch-up"), Overlap: c.String("overlap"),
	}
	if p := c.String("payload"); p != "" {
		if !json.Valid([]byte(p)) {
			return s, usageErrorf("--payload: not a JSON value (quote a string: '\"text\"')")
		}
		s.Payload = json.RawMessage(p)
	}
	for _, f := range []struct {
		name string
		to   *string
	}{{"ttr", &s.TTR}, {"expires-in", &s.ExpiresIn}} {
		if d := c.Duration(f.name); d != 0 {
			*f.to = d.String()
		}
	}
	for _, h := range c.StringSlice("header") {
		name, value, ok := strings.Cut(h, "=")
		if !ok || name == "" {
			return s, usageErrorf("--header %q: want NAME=VALUE", h)
		}
		if s.Headers == nil {
			s.Headers = map[string]string{}
		}
		s.Headers[name] = value
	}
	return s, nil
}

func fmtRunTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func printScheduleList(w io.Writer, ss []httpapi.ScheduleDoc) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "SCHEDULE\tSOURCE\tCRON\tTIMEZONE\tQUEUE\tLAST\tNEXT")
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Source, s.Cron, s.Timezone, s.Queue,
			fmtRunTime(s.LastFireAt), fmtRunTime(s.NextFireAt))
	}
	return tw.Flush()
}
