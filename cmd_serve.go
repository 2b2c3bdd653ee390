package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/resource"
	"github.com/edgeq/edgeq/storage"
	"github.com/edgeq/edgeq/transport/httpapi"
	"github.com/edgeq/edgeq/transport/mqttapi"
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
	cfg   *Config // validated; DataDir resolved
	token string  // "" when the HTTP API is open
	path  string  // the configuration file, "" when none: SIGHUP re-reads it
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
	token, hostErr := checkHost(cfg, hostCheck{allowOpen: allowOpen})
	if err := annotate(joinProblems(decodeErr, cfg.Validate(), hostErr), file, lines, sources); err != nil {
		return serveSettings{}, err
	}
	return serveSettings{cfg: cfg, token: token, path: file, overlay: overlay}, nil
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

// runDaemon runs the daemon until ctx ends or SIGINT or SIGTERM arrives,
// then stops it in order: the engine (refusing new work, flushing and
// syncing what it accepted), the HTTP server, the store.
func runDaemon(ctx context.Context, s serveSettings, e env) error {
	cfg := s.cfg
	log := newLogger(e.stderr, cfg.Log)
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	// SIGHUP reloads (below); taken from the start so that an early one does
	// not kill the process with the default action.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	ec := cfg.engineConfig(log)
	// The MQTT client starts after the engine; until then, and when MQTT is
	// off, job events and backlog alerts go nowhere.
	var mqttc atomic.Pointer[mqttapi.Client]
	ec.OnEvent = func(ev engine.Event) {
		if c := mqttc.Load(); c != nil {
			c.OnEvent(ev)
		}
	}
	ec.OnAlert = func(a engine.Alert) {
		if c := mqttc.Load(); c != nil {
			c.OnAlert(a)
		}
	}
	releaseHandlers, err := buildHandlers(cfg, &ec)
	defer func() { releaseHandlers() }() // the current ones: SIGHUP replaces them
	if err != nil {
		return &exitError{code: exitConfig, err: err}
	}
	// A directory held by another process fails here with a message that
	// says so (storage.ErrLocked).
	store, err := storage.Open(storage.Config{Dir: cfg.DataDir, Memory: cfg.Storage.Memory, Logger: log})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	eng, err := engine.New(ec, store)
	if err != nil {
		return errors.Join(fmt.Errorf("create engine: %w", err), closeStore(store))
	}
	// Start recovers the store's state before it returns; a signal during
	// recovery ends it early, which is a clean stop, not a failure.
	if err := eng.Start(ctx); err != nil {
		if ctx.Err() != nil {
			log.Info("stopped during recovery")
			return closeStore(store)
		}
		return errors.Join(fmt.Errorf("start engine: %w", err), closeStore(store))
	}
	gov, err := newGovernor(cfg, eng, func() uint64 {
		if c := mqttc.Load(); c != nil {
			return uint64(c.InHandBytes())
		}
		return 0
	}, log)
	if err != nil {
		return errors.Join(fmt.Errorf("create governor: %w", err), shutdown(log, cfg, eng, nil, store))
	}
	govCtx, stopGov := context.WithCancel(context.Background())
	govDone := make(chan error, 1)
	go func() { govDone <- gov.run(govCtx) }()
	trimDone := make(chan struct{})
	go func() {
		defer close(trimDone)
		runTrimmer(govCtx, log, func() uint64 { return eng.Histograms()["commit_batch_size"].Count })
	}()
	defer func() {
		stopGov()
		<-govDone
		<-trimDone
	}()
	srv, err := httpapi.New(httpapi.Config{
		Addr:       cfg.HTTP.Addr,
		Token:      s.token,
		TLSCert:    cfg.HTTP.TLS.Cert,
		TLSKey:     cfg.HTTP.TLS.Key,
		Hosts:      cfg.HTTP.Hosts,
		MaxBodies:  int64(cfg.HTTP.BodiesInFlight),
		BodyIdle:   time.Duration(cfg.HTTP.BodyIdleTimeout),
		MaxPayload: int(cfg.MaxPayload),
		Logger:     log,
		Governor:   gov,
		MQTT:       mqttMetrics(&mqttc),
	}, eng)
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		return errors.Join(fmt.Errorf("start http api: %w", err), shutdown(log, cfg, eng, nil, store))
	}
	// ---- MQTT (SPEC 6): after the engine, stopped before it. ----
	stopMQTT := func() {}
	if m := cfg.MQTT; m.Broker != "" {
		mc, err := newMQTT(cfg, eng, log)
		if err != nil {
			return errors.Join(&exitError{code: exitConfig, err: err}, shutdown(log, cfg, eng, srv, store))
		}
		for _, q := range ec.Queues {
			if h, ok := q.Handler.(*mqttapi.Handler); ok {
				h.Bind(mc)
			}
		}
		mqttc.Store(mc)
		stopLevels := gov.gov.Subscribe(func(ev resource.Event) { mc.OnLevel(ev.From, ev.To, ev.Reason, ev.At) })
		defer stopLevels()
		// A broker that is down at boot is retried in the background.
		startCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = mc.Start(startCtx)
		cancel()
		if err != nil {
			return errors.Join(fmt.Errorf("start mqtt: %w", err), shutdown(log, cfg, eng, srv, store))
		}
		stopMQTT = func() {
			// Ingest stops first: what is in hand is committed and acked,
			// the rest stays with the broker for the next session.
			ctx, cancel := context.WithTimeout(context.Background(), min(10*time.Second, time.Duration(cfg.ShutdownTimeout)))
			defer cancel()
			if err := mc.Stop(ctx); err != nil {
				log.Warn("mqtt stop", "err", err)
			}
		}
	}
	// ---- end MQTT ----
	log.Info("listening", "addr", srv.Addr().String(), "data_dir", cfg.DataDir,
		"sync", cfg.Storage.Sync, "auth", s.token != "", "version", version)

	// systemd: READY=1 only now (store open, leases requeued, listeners
	// bound); WATCHDOG=1 while the committer's heartbeat is recent, kept up
	// through the shutdown so a slow drain is not killed as hung.
	notifyReady(log)
	wdCtx, stopWatchdog := context.WithCancel(context.Background())
	var wdWG sync.WaitGroup
	wdWG.Go(func() { watchdog(wdCtx, log, eng.Heartbeat) })
	defer func() { stopWatchdog(); wdWG.Wait() }()

	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-hup:
			notifyReloading(log)
			release, restart, err := reloadConfig(s, eng, gov, log, mqttc.Load())
			notifyReady(log)
			if err != nil {
				log.Error("reload refused; the running configuration stays", "file", s.path, "err", err)
				continue
			}
			releaseHandlers()
			releaseHandlers = release
			log.Info("configuration reloaded", "file", s.path)
			for _, key := range restart {
				log.Warn("configuration change not applied: it needs a restart", "key", key, "file", s.path)
			}
		}
	}
	notifyStopping(log)
	stopSignals() // a second signal kills at once
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	stopMQTT() // MQTT ingest stops before the HTTP server and the engine
	if err := shutdown(log, cfg, eng, srv, store); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// mqttMetrics reads the MQTT client's counters for /metrics; nothing while
// MQTT is off or not started yet.
func mqttMetrics(mqttc *atomic.Pointer[mqttapi.Client]) func() (httpapi.MQTTStats, bool) {
	return func() (httpapi.MQTTStats, bool) {
		c := mqttc.Load()
		if c == nil {
			return httpapi.MQTTStats{}, false
		}
		s := c.Stats()
		return httpapi.MQTTStats{
			Connected:  s.Connected,
			Received:   s.Received,
			Acked:      s.Acked,
			Rejected:   s.Rejected,
			Dropped:    s.Dropped,
			Reconnects: s.Reconnects,
			InHand:     s.InHand,
		}, true
	}
}

// newMQTT builds the MQTT client of cfg.MQTT (SPEC 6); it reads the
// password file. The client id defaults to edgeq-<hostname>.
func newMQTT(cfg *Config, eng *engine.Engine, log *slog.Logger) (*mqttapi.Client, error) {
	m := cfg.MQTT
	var password string
	if m.PasswordFile != "" {
		b, err := os.ReadFile(m.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("read mqtt.password_file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	id := m.ClientID
	if id == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("mqtt.client_id: unset and no hostname: %w", err)
		}
		id = "edgeq-" + host
	}
	routes := make([]mqttapi.Route, len(m.Routes))
	for i, r := range m.Routes {
		routes[i] = mqttapi.Route{Filter: r.Filter, Queue: r.Queue, KeyField: r.KeyField}
	}
	return mqttapi.New(mqttapi.Config{
		Broker:     m.Broker,
		ClientID:   id,
		Username:   m.Username,
		Password:   password,
		TLS:        mqttapi.TLSFiles{CA: m.TLS.CA, Cert: m.TLS.Cert, Key: m.TLS.Key},
		Prefix:     m.topicPrefix(id),
		Events:     m.Events,
		Routes:     routes,
		MaxPayload: int(cfg.MaxPayload),
		Logger:     log,
	}, eng)
}

// shutdown stops in the order of STYLE.md: ingest first (the HTTP server
// answers 503 shutting_down to new requests and lets those in flight
// finish), then the engine (dispatch stops, running jobs get the rest of
// shutdown_timeout, the ring is flushed and synced), then the store. The
// store stays open when the engine did not stop: its goroutines may still
// write, and the store recovers at the next start anyway.
func shutdown(log *slog.Logger, cfg *Config, eng *engine.Engine, srv *httpapi.Server, store *storage.Badger) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout))
	defer cancel()
	var errs []error
	if srv != nil {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop http api: %w", err))
		}
	}
	engErr := eng.Stop(ctx)
	if engErr != nil {
		errs = append(errs, fmt.Errorf("stop engine: %w", engErr))
	}
	if engErr == nil {
		errs = append(errs, closeStoreWithin(ctx, log, cfg, store))
	} else {
		log.Warn("store left open because the engine did not stop", "err", engErr)
	}
	return errors.Join(errs...)
}

func closeStore(store *storage.Badger) error {
	if err := store.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// closeStoreWithin closes the store within what is left of shutdown_timeout.
// Badger retries a failing memtable flush (a vanished directory, EIO, a
// full disk) once a second for as long as it fails, so a close that has not
// returned by then is abandoned: its goroutine is left behind as the
// process exits non-zero, and the next start replays the memtable's WAL,
// which the engine's last sync made durable.
func closeStoreWithin(ctx context.Context, log *slog.Logger, cfg *Config, store *storage.Badger) error {
	done := make(chan error, 1)
	go func() { done <- closeStore(store) }() // abandoned, with the process, if it hangs
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		log.Error("store close abandoned at shutdown_timeout: Badger's memtable flush is still failing; the next start recovers the jobs from its WAL",
			"dir", cfg.DataDir, "timeout", cfg.ShutdownTimeout)
		return fmt.Errorf("close store %s: abandoned after shutdown_timeout %s", cfg.DataDir, time.Duration(cfg.ShutdownTimeout))
	}
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
