package main

import (
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/edgeq/edgeq/configs"
)

func configCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "check or print configuration files",
		Subcommands: []*cli.Command{
			{
				Name: "validate",
				Usage: "check a configuration file as serve does before it starts; " +
					"print ok, or exit 78 naming each problem as FILE:LINE: KEY: message",
				Description: "Checks the file and what serve needs from this host before it opens the store:\n" +
					"the token, TLS and MQTT password files, the exec handlers' programs, and a token\n" +
					"for a listener beyond loopback. --offline skips the files and programs, for a\n" +
					"file checked away from the box it is meant for.",
				ArgsUsage: "FILE",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "offline", Usage: "check the file only, not the files and programs it names"},
					&cli.BoolFlag{Name: insecureFlag, Usage: "as serve's: allow a non-loopback listener without a token [$" + insecureEnv + "]"},
				},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usageErrorf("config validate: want one FILE, got %d arguments", c.NArg())
					}
					allowOpen := c.Bool(insecureFlag)
					if v, ok := e.getenv(insecureEnv); ok && !c.IsSet(insecureFlag) {
						b, err := strconv.ParseBool(v)
						if err != nil {
							return configErrorf("%s: want true or false, got %q", insecureEnv, v)
						}
						allowOpen = b
					}
					path := c.Args().First()
					cfg, lines, err := readConfig(path)
					if cfg == nil {
						return err
					}
					_, hostErr := checkHost(cfg, hostCheck{offline: c.Bool("offline"), allowOpen: allowOpen})
					if err := annotate(joinProblems(err, cfg.Validate(), hostErr), path, lines, nil); err != nil {
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
