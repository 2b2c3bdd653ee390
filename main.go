// Command edgeq is a single-binary durable job queue for edge appliances.
// See README.md and the SPEC for the contract; this package holds the CLI:
// flags, the configuration file, logging, signals and exit codes; serve
// maps the file to internal/daemon, which wires and runs the daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/urfave/cli/v2"
)

// Stamped by the Makefile: -ldflags "-X main.version=... -X main.commit=... -X main.date=...".
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// Exit codes (SPEC 4, README "Exit codes"). The Go runtime exits 2 on a
// panic or a fatal error, the same as a usage error; the unit restarts on
// both and only an invalid configuration, which a restart cannot mend, has
// a code of its own.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2  // the command line: unknown flag, missing or extra argument
	exitTempFail = 75 // EX_TEMPFAIL: the daemon refused for now; retry later
	exitConfig   = 78 // EX_CONFIG: invalid configuration, from the file, a variable or a flag
)

func main() {
	e := env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, lookupEnv: os.LookupEnv}
	os.Exit(exitCode(run(context.Background(), os.Args, e), e.stderr))
}

// env is what run sees of its process, so that tests run commands
// in-process, in parallel, with their own environment.
type env struct {
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	lookupEnv func(string) (string, bool)
	// daemon runs serve once its settings are settled; nil means runDaemon.
	// Tests replace it to observe the settings.
	daemon func(ctx context.Context, s serveSettings, e env) error
}

// getenv returns a variable's value, treating an empty one as unset.
func (e env) getenv(name string) (string, bool) {
	v, ok := e.lookupEnv(name)
	return v, ok && v != ""
}

// run runs the command line args (args[0] is the program name).
func run(ctx context.Context, args []string, e env) error {
	app := newApp(e)
	return app.RunContext(ctx, intersperse(app, args))
}

func newApp(e env) *cli.App {
	app := &cli.App{
		Name:  "edgeq",
		Usage: "durable job queue for edge appliances",
		Flags: append(clientFlags(),
			&cli.BoolFlag{Name: "version", Aliases: []string{"v"}, Usage: "print the version"}),
		Commands: []*cli.Command{
			serveCommand(e),
			enqueueCommand(e),
			statsCommand(e),
			queueCommand(e),
			scheduleCommand(e),
			deadCommand(e),
			jobCommand(e),
			workCommand(e),
			moveCommand(e),
			governorCommand(e),
			benchCommand(e),
			configCommand(e),
			storageCommand(e),
			versionCommand(),
			helpCommand(),
		},
		Reader:                    e.stdin,
		Writer:                    e.stdout,
		ErrWriter:                 e.stderr,
		DisableSliceFlagSeparator: true, // --header a=b,c is one header
		// Errors go back to main, which prints them and picks the exit code;
		// the default handler would call os.Exit from inside the library.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		Action: func(c *cli.Context) error {
			if c.Bool("version") {
				fmt.Fprintln(c.App.Writer, versionString())
				return nil
			}
			return groupAction(c)
		},
		// cli's own --help and --version flags are package-level values
		// that it writes to on every run, a data race when commands run
		// concurrently (as the tests do); each app gets flags of its own.
		HideHelp:    true,
		HideVersion: true,
	}
	app.Flags = append(app.Flags, newHelpFlag())
	prepareCommands(app.Commands)
	return app
}

func newHelpFlag() cli.Flag {
	return &cli.BoolFlag{Name: "help", Aliases: []string{"h"}, Usage: "show help"}
}

// groupAction runs when a command that only holds subcommands is given
// none, or an unknown one.
func groupAction(c *cli.Context) error {
	if c.Args().Present() {
		return usageErrorf("unknown command %q (see --help)", c.Args().First())
	}
	_ = cli.ShowSubcommandHelp(c)
	return usageErrorf("a command is required")
}

// prepareCommands gives every command its own help flag and the usage
// error handler, and groups their default action.
func prepareCommands(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = onUsageError
		c.HideHelp = true
		c.Flags = append(c.Flags, newHelpFlag())
		if len(c.Subcommands) > 0 && c.Action == nil {
			c.Action = groupAction
		}
		prepareCommands(c.Subcommands)
	}
}

// helpCommand stands in for cli's, which HideHelp removes with its flag.
func helpCommand() *cli.Command {
	return &cli.Command{
		Name:      "help",
		Usage:     "show the commands, or the help of one",
		ArgsUsage: "[COMMAND]",
		Action: func(c *cli.Context) error {
			switch c.NArg() {
			case 0:
				return cli.ShowAppHelp(c)
			case 1:
				if c.App.Command(c.Args().First()) == nil {
					return usageErrorf("unknown command %q", c.Args().First())
				}
				return cli.ShowCommandHelp(c, c.Args().First())
			}
			return usageErrorf("help takes at most one command")
		},
	}
}

func onUsageError(_ *cli.Context, err error, _ bool) error {
	return &exitError{code: exitUsage, err: err}
}

// exitError carries the process exit code of an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode makes exitError a cli.ExitCoder.
func (e *exitError) ExitCode() int { return e.code }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func configErrorf(format string, args ...any) error {
	return &exitError{code: exitConfig, err: fmt.Errorf(format, args...)}
}

// exitCode prints err, if any, on stderr and returns the process exit code:
// that of an exitError or cli.ExitCoder in its chain, 78 for a
// configuration error, else 1.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ec cli.ExitCoder
	var ce *ConfigError
	msg := err.Error()
	if !errors.As(err, &ce) {
		// One line, whatever a daemon or proxy answered; only a
		// configuration error lists its problems one a line.
		msg = strings.ReplaceAll(msg, "\n", "; ")
	}
	fmt.Fprintf(stderr, "edgeq: %s\n", msg)
	switch {
	case errors.As(err, &ec):
		return ec.ExitCode()
	case errors.As(err, &ce):
		return exitConfig
	}
	return exitFailure
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version",
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageErrorf("version takes no arguments")
			}
			fmt.Fprintln(c.App.Writer, versionString())
			return nil
		},
	}
}

func versionString() string {
	var b strings.Builder
	fmt.Fprintf(&b, "edgeq %s", version)
	if commit != "" {
		fmt.Fprintf(&b, " commit %s", commit)
	}
	if date != "" {
		fmt.Fprintf(&b, " built %s", date)
	}
	fmt.Fprintf(&b, " (%s %s/%s)", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return b.String()
}

// intersperse lets flags follow arguments, as in `edgeq enqueue jobs - --key
// k`: urfave/cli v2 stops parsing flags at the first argument. It walks the
// command path and, in the final command, moves the flags (with their
// values) ahead of the arguments and puts "--" between them. An argument
// that starts with "-" goes after a "--" of the user's.
func intersperse(app *cli.App, args []string) []string {
	if len(args) == 0 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	flags, cmds := app.Flags, app.Commands
	for {
		var flagArgs, positional []string
		for i := 0; i < len(rest); i++ {
			a := rest[i]
			if a == "--" {
				positional = append(positional, rest[i+1:]...)
				break
			}
			if len(a) < 2 || a[0] != '-' {
				if len(cmds) > 0 {
					// A command's flags end at its first argument, the
					// subcommand's name, as cli expects.
					positional = append(positional, rest[i:]...)
					break
				}
				positional = append(positional, a)
				continue
			}
			flagArgs = append(flagArgs, a)
			if name := strings.TrimLeft(a, "-"); !strings.Contains(name, "=") && takesValue(flags, name) && i+1 < len(rest) {
				i++
				flagArgs = append(flagArgs, rest[i])
			}
		}
		out = append(out, flagArgs...)
		if len(cmds) == 0 {
			return append(append(out, "--"), positional...)
		}
		if len(positional) == 0 {
			return out
		}
		var next *cli.Command
		for _, c := range cmds {
			if c.HasName(positional[0]) {
				next = c
			}
		}
		if next == nil {
			return append(out, positional...)
		}
		out = append(out, positional[0])
		rest, flags, cmds = positional[1:], next.Flags, next.Subcommands
	}
}

func takesValue(flags []cli.Flag, name string) bool {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}
