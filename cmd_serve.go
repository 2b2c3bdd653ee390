package main

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/edgeq/edgeq/internal/daemon"
	"github.com/edgeq/edgeq/storage"
	"github.com/edgeq/edgeq/transport/httpapi"
)

// override is a serve flag, and its EDGEQ_* variable, that overrides one
// key of the configuration file.
type override struct {
	flag  string
	env   string
	key   string // configuration key
	usage string
	bool  bool
	set   func(c *Config, v string) error
}

// overrides lists serve's flags in the order of --help. Each also comes
// from its variable; a flag wins over its variable, a variable over the
// file, the file over the defaults.
var overrides = []override{
	{flag: "data-dir", env: "EDGEQ_DATA_DIR", key: "data_dir",
		usage: "data directory (default: $STATE_DIRECTORY or ./" + defaultDataDir + ")",
		set:   func(c *Config, v string) error { c.DataDir = v; return nil }},
	{flag: "http-addr", env: "EDGEQ_HTTP_ADDR", key: "http.addr",
		usage: "HTTP API listen address (default: " + defaultHTTPAddr + ")",
		set:   func(c *Config, v string) error { c.HTTP.Addr = v; return nil }},
	{flag: "token-file", env: "EDGEQ_TOKEN_FILE", key: "http.token_file",
		usage: "file holding the bearer token the HTTP API requires",
		set:   func(c *Config, v string) error { c.HTTP.TokenFile = v; return nil }},
	{flag: "mqtt-broker", env: "EDGEQ_MQTT_BROKER", key: "mqtt.broker",
		usage: "MQTT broker URL, such as tcp://127.0.0.1:1883 (default: MQTT off)",
		set:   func(c *Config, v string) error { c.MQTT.Broker = v; return nil }},
	{flag: "sync", env: "EDGEQ_SYNC", key: "storage.sync",
		usage: "when enqueues are fsynced: always or interval (default: always)",
		set:   func(c *Config, v string) error { c.Storage.Sync = v; return nil }},
	{flag: "memory", env: "EDGEQ_MEMORY", key: "storage.memory",
		usage: "store memory profile: small or default (default: small)",
		set:   func(c *Config, v string) error { c.Storage.Memory = v; return nil }},
	{flag: "max-payload", env: "EDGEQ_MAX_PAYLOAD", key: "max_payload",
		usage: "largest job payload, such as 512KiB (default: 1MiB)",
		set: func(c *Config, v string) (err error) {
			c.MaxPayload, err = parseSize(v)
			return err
		}},
	{flag: "strict-queues", env: "EDGEQ_STRICT_QUEUES", key: "strict_queues", bool: true,
		usage: "refuse jobs for queues that the configuration does not list",
		set: func(c *Config, v string) (err error) {
			c.StrictQueues, err = strconv.ParseBool(v)
			return err
		}},
	{flag: "max-queues", env: "EDGEQ_MAX_QUEUES", key: "max_queues",
		usage: "most queues that jobs may create (default: 1000)",
		set: func(c *Config, v string) (err error) {
			c.MaxQueues, err = strconv.Atoi(v)
			return err
		}},
	{flag: "shutdown-timeout", env: "EDGEQ_SHUTDOWN_TIMEOUT", key: "shutdown_timeout",
		usage: "how long a clean stop may take (default: 30s)",
		set: func(c *Config, v string) (err error) {
			c.ShutdownTimeout, err = parseDuration(v)
			return err
		}},
	{flag: "log-format", env: "EDGEQ_LOG_FORMAT", key: "log.format",
		usage: "log format: text or json (default: text)",
		set:   func(c *Config, v string) error { c.Log.Format = v; return nil }},
	{flag: "log-level", env: "EDGEQ_LOG_LEVEL", key: "log.level",
		usage: "log level: debug, info, warn or error (default: info)",
		set:   func(c *Config, v string) error { c.Log.Level = v; return nil }},
}

// Flags of serve that are not configuration keys.
const (
	configFlag, configEnv     = "config", "EDGEQ_CONFIG"
	insecureFlag, insecureEnv = "insecure-no-auth", "EDGEQ_INSECURE_NO_AUTH"
)

func serveCommand(e env) *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: configFlag, Usage: "configuration file (default: none, built-in defaults) [$" + configEnv + "]"},
	}
	for _, o := range overrides {
		usage := o.usage + " [$" + o.env + "]"
		if o.bool {
			flags = append(flags, &cli.BoolFlag{Name: o.flag, Usage: usage})
		} else {
			flags = append(flags, &cli.StringFlag{Name: o.flag, Usage: usage})
		}
	}
	flags = append(flags, &cli.BoolFlag{Name: insecureFlag,
		Usage: "serve HTTP on a non-loopback address without a token [$" + insecureEnv + "]"})
	return &cli.Command{
		Name:  "serve",
		Usage: "run the daemon",
		Description: "Runs the queue daemon until SIGINT or SIGTERM. Settings come from flags, then\n" +
			"EDGEQ_* variables, then the --config file, then built-in defaults.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageErrorf("serve takes no arguments, got %q", c.Args().First())
			}
			s, err := settleServe(c, e)
			if err != nil {
				return err
			}
			if e.daemon != nil {
				return e.daemon(c.Context, s, e)
			}
			return runDaemon(c.Context, s, e)
		},
	}
}

// serveSettings is everything the daemon needs once flags, variables, the
// file and defaults are settled.
type serveSettings struct {
	cfg    *Config         // validated; DataDir resolved
	token  string          // http.token_file's token, "" when none
	tokens []httpapi.Token // http.tokens; with no token either, the HTTP API is open
	// mqttPassword is the MQTT password file's first line, read by checkHost.
	mqttPassword string
	storeKey     []byte // the store's encryption key, read by checkHost; nil: none
	path         string // the configuration file, "" when none: SIGHUP re-reads it
	// overlay lays the flags and variables over a configuration read from
	// path, as at the start, and resolves DataDir; it answers which keys
	// they set. SIGHUP uses it so that the reloaded file is seen as serve
	// would see it.
	overlay func(*Config) (sources map[string]string, err error)
}

// settleServe builds serve's configuration: defaults, then the file, then
// EDGEQ_* variables, then flags; it validates the result and checks the host
// (checkHost), which refuses an unauthenticated non-loopback listener.
func settleServe(c *cli.Context, e env) (serveSettings, error) {
	value := func(flag, envName string, isBool bool) (v, src string, ok bool) {
		switch {
		case c.IsSet(flag) && isBool:
			return strconv.FormatBool(c.Bool(flag)), "--" + flag, true
		case c.IsSet(flag):
			return c.String(flag), "--" + flag, true
		}
		v, ok = e.getenv(envName)
		return v, envName, ok
	}

	cfg, file, lines := defaultConfig(), "", map[string]int(nil)
	var decodeErr error
	if path, _, ok := value(configFlag, configEnv, false); ok {
		if cfg, lines, decodeErr = readConfig(path); cfg == nil {
			return serveSettings{}, decodeErr
		}
		file = path
	}
	overlay := func(cfg *Config) (map[string]string, error) {
		sources := map[string]string{}
		for _, o := range overrides {
			v, src, ok := value(o.flag, o.env, o.bool)
			if !ok {
				continue
			}
			if err := o.set(cfg, v); err != nil {
				return nil, configErrorf("%s: %v", src, err)
			}
			sources[o.key] = src
		}
		if cfg.DataDir == "" {
			cfg.DataDir = defaultDataDir
			if d, ok := e.getenv("STATE_DIRECTORY"); ok {
				// systemd lists one path per StateDirectory=, colon-separated.
				cfg.DataDir, _, _ = strings.Cut(d, ":")
			}
		}
		return sources, nil
	}
	sources, err := overlay(cfg)
	if err != nil {
		return serveSettings{}, err
	}
	insecure, src, _ := value(insecureFlag, insecureEnv, true)
	allowOpen, err := strconv.ParseBool(cmp.Or(insecure, "false"))
	if err != nil {
		return serveSettings{}, configErrorf("%s: want true or false, got %q", src, insecure)
	}
	// Everything that can refuse the configuration runs here, before the
	// store opens or a port is bound: a refusal exits 78 and changes nothing.
	sec, hostErr := checkHost(cfg, hostCheck{allowOpen: allowOpen})
	if err := annotate(joinProblems(decodeErr, cfg.Validate(), hostErr), file, lines, sources); err != nil {
		return serveSettings{}, err
	}
	return serveSettings{cfg: cfg, token: sec.token, tokens: sec.tokens, mqttPassword: sec.mqttPassword, storeKey: sec.storeKey, path: file, overlay: overlay}, nil
}

// isLoopback reports whether a listen address reaches only this host. An
// empty host listens on every interface; names other than localhost are
// not trusted to resolve to loopback.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// runDaemon runs the daemon until ctx ends or SIGINT or SIGTERM arrives;
// SIGHUP reloads the configuration file (reloadOnHUP). A second SIGINT or
// SIGTERM kills at once.
func runDaemon(ctx context.Context, s serveSettings, e env) error {
	log := newLogger(e.stderr, s.cfg.Log)
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	context.AfterFunc(ctx, stopSignals)
	// SIGHUP is taken from the start so that an early one does not kill the
	// process with the default action; it is applied once the daemon serves.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1)) // as it was, once the daemon is done
	derived := setMemoryLimit(log, e, s.cfg.Storage.Memory)

	dc, err := s.daemonConfig(log)
	if err != nil {
		return err
	}
	dc.GoMemoryDerived = derived
	d, err := daemon.New(dc)
	if err != nil {
		return err
	}
	hupCtx, stopHUP := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { reloadOnHUP(hupCtx, d, s, hup, log) })
	err = d.Run(ctx)
	stopHUP()
	wg.Wait()
	// A key that does not open the store is the configuration's fault:
	// restarting cannot help (exit 78 stops systemd's restarts).
	if ce := (*daemon.ConfigError)(nil); errors.As(err, &ce) || errors.Is(err, storage.ErrKeyMismatch) {
		return &exitError{code: exitConfig, err: err}
	}
	return err
}

// newLogger builds the daemon's log handler from a validated LogConfig.
func newLogger(w io.Writer, lc LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(lc.Level))
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
