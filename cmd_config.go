package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/edgeq/edgeq/configs"
)

func configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "check or print configuration files",
		Subcommands: []*cli.Command{
			{
				Name:      "validate",
				Usage:     "check a configuration file; exit 2 naming each invalid key",
				ArgsUsage: "FILE",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usageErrorf("config validate: want one FILE, got %d arguments", c.NArg())
					}
					if _, err := loadConfig(c.Args().First()); err != nil {
						return err
					}
					fmt.Fprintln(c.App.Writer, "ok")
					return nil
				},
			},
			{
				Name:  "example",
				Usage: "print the annotated reference configuration, every key with its default",
				Action: func(c *cli.Context) error {
					if c.Args().Present() {
						return usageErrorf("config example takes no arguments")
					}
					b, err := configs.FS.ReadFile("edgeq.yaml")
					if err != nil {
						return err
					}
					_, err = c.App.Writer.Write(b)
					return err
				},
			},
		},
	}
}
