package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/httpapi"
)

func governorCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "governor",
		Usage: "show the resource governor, or force a level for a while (a drill)",
		Subcommands: []*cli.Command{
			{
				Name:  "status",
				Usage: "show the level, the worker limit, the host figures and any drill",
				Flags: clientCommandFlags(),
				Action: func(c *cli.Context) error {
					if _, err := wantArgs(c); err != nil {
						return err
					}
					var g *httpapi.GovernorStats
					err := request(c, e, "governor status", func(ctx context.Context, cl *httpapi.Client) (err error) {
						g, err = cl.Governor(ctx)
						return err
					})
					if err != nil {
						return err
					}
					return printGovernor(c, g)
				},
			},
			{
				Name:      "drill",
				Usage:     "force a level (normal, elevated, high, critical) to rehearse shedding",
				ArgsUsage: "LEVEL",
				Flags: clientCommandFlags(
					&cli.DurationFlag{Name: "for", Usage: "how long the drill lasts, such as 60s (required)"},
				),
				Action: func(c *cli.Context) error {
					args, err := wantArgs(c, "LEVEL")
					if err != nil {
						return err
					}
					if _, err := job.ParseLevel(args[0]); err != nil {
						return usageErrorf("level: %v", err)
					}
					d := c.Duration("for")
					if d <= 0 {
						return usageErrorf("--for: required, a positive duration such as 60s")
					}
					var g httpapi.GovernorStats
					err = request(c, e, "governor drill", func(ctx context.Context, cl *httpapi.Client) (err error) {
						g, err = cl.Drill(ctx, args[0], d)
						return err
					})
					if err != nil {
						return err
					}
					return printGovernor(c, &g)
				},
			},
			{
				Name:  "clear",
				Usage: "end a drill",
				Flags: clientCommandFlags(),
				Action: func(c *cli.Context) error {
					if _, err := wantArgs(c); err != nil {
						return err
					}
					var g httpapi.GovernorStats
					err := request(c, e, "governor clear", func(ctx context.Context, cl *httpapi.Client) (err error) {
						g, err = cl.ClearDrill(ctx)
						return err
					})
					if err != nil {
						return err
					}
					return printGovernor(c, &g)
				},
			},
		},
	}
}

func printGovernor(c *cli.Context, g *httpapi.GovernorStats) error {
	if c.Bool("json") {
		return printJSON(c.App.Writer, g)
	}
	_, err := fmt.Fprintln(c.App.Writer, governorLine(g))
	return err
}
