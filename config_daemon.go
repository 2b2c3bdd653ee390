package main

import (
	"cmp"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/internal/daemon"
	"github.com/edgeq/edgeq/resource"
	"github.com/edgeq/edgeq/transport/httpapi"
	"github.com/edgeq/edgeq/transport/mqttapi"
	"github.com/edgeq/edgeq/transport/native"
	"github.com/edgeq/edgeq/transport/uplink"
)

// daemonConfig maps serve's settings to the daemon's configuration; an MQTT
// client id it cannot make exits 78.
func (s serveSettings) daemonConfig(log *slog.Logger) (daemon.Config, error) {
	dc := s.cfg.daemonConfig(s.token, s.tokens, log)
	dc.EncryptionKey = s.storeKey
	if s.cfg.MQTT.Broker != "" {
		mc, err := s.cfg.mqttConfig(s.mqttPassword)
		if err != nil {
			return daemon.Config{}, &exitError{code: exitConfig, err: err}
		}
		dc.MQTT = mc
	}
	return dc, nil
}

// daemonConfig maps a validated configuration, but for MQTT (mqttConfig),
// to the daemon's; token (http.token_file's) and tokens (http.tokens') are
// the HTTP API's bearer tokens, none when it is open.
func (c *Config) daemonConfig(token string, tokens []httpapi.Token, log *slog.Logger) daemon.Config {
	return daemon.Config{
		DataDir:  c.DataDir,
		Memory:   c.Storage.Memory,
		Engine:   c.engineConfig(log),
		Handlers: c.handlers(),
		Uplinks:  c.uplinks(),
		Governor: c.resourceConfig(log),
		HTTP: httpapi.Config{
			Addr:       c.HTTP.Addr,
			Token:      token,
			Tokens:     tokens,
			TLSCert:    c.HTTP.TLS.Cert,
			TLSKey:     c.HTTP.TLS.Key,
			Hosts:      c.HTTP.Hosts,
			MaxBodies:  int64(c.HTTP.BodiesInFlight),
			BodyIdle:   time.Duration(c.HTTP.BodyIdleTimeout),
			MaxPayload: int(c.MaxPayload),
		},
		Native:          c.nativeConfig(token),
		Schedules:       c.schedules(),
		ShutdownTimeout: time.Duration(c.ShutdownTimeout),
		Logger:          log,
		Version:         version,
	}
}

// nativeConfig maps the native block: off (nil) without a listener; the
// TCP listener takes the HTTP API's token.
func (c *Config) nativeConfig(token string) *native.Config {
	n := c.Native
	if n.Listen == "" && n.Socket == "" {
		return nil
	}
	mode, _ := parseSocketMode(n.SocketMode)
	return &native.Config{
		Listen:      n.Listen,
		Socket:      n.Socket,
		SocketMode:  mode,
		Token:       token,
		MaxPayload:  int(c.MaxPayload),
		MaxFrame:    int(n.MaxFrame),
		MaxInFlight: n.MaxInFlight,
		MaxConns:    n.MaxConns,
		IdleTimeout: time.Duration(n.IdleTimeout),
	}
}

// handlers maps the queues' in-process handlers.
func (c *Config) handlers() map[string]daemon.Handler {
	hs := make(map[string]daemon.Handler)
	for name, q := range c.Queues {
		if h := q.Handler; h != nil {
			hs[name] = daemon.Handler{Type: h.Type, Command: h.Command, URL: h.URL, Headers: h.Headers,
				Topic: h.Topic, Uplink: h.Uplink, Timeout: time.Duration(h.Timeout)}
		}
	}
	return hs
}

// resourceConfig maps the governor block of the config file.
func (c *Config) resourceConfig(log *slog.Logger) resource.Config {
	g := c.Governor
	return resource.Config{
		Interval:       time.Duration(g.Interval),
		Dwell:          time.Duration(g.Dwell),
		CPU:            resource.Thresholds{Enter: g.CPU.Enter, Exit: g.CPU.Exit},
		Memory:         resource.Thresholds{Enter: g.Memory.Enter, Exit: g.Memory.Exit},
		DiskMinFree:    uint64(g.DiskMinFree),
		MinConcurrency: g.Concurrency.Min,
		MaxConcurrency: g.Concurrency.Max,
		Logger:         log,
	}
}

// mqttConfig maps cfg.MQTT (SPEC 6) with the password checkHost read from
// its password file. The client id defaults to edgeq-<hostname>.
func (c *Config) mqttConfig(password string) (*mqttapi.Config, error) {
	m := c.MQTT
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
		routes[i] = mqttapi.Route{Filter: r.Filter, Queue: r.Queue, KeyField: r.KeyField, GroupField: r.GroupField}
	}
	return &mqttapi.Config{
		Broker:       m.Broker,
		ClientID:     id,
		Username:     m.Username,
		Password:     password,
		TLS:          mqttapi.TLSFiles{CA: m.TLS.CA, Cert: m.TLS.Cert, Key: m.TLS.Key},
		Prefix:       m.topicPrefix(id),
		Events:       m.Events,
		Routes:       routes,
		StrictQueues: m.StrictQueues,
		MaxPayload:   int(c.MaxPayload),
	}, nil
}

// engineConfig converts a validated configuration for engine.New.
func (c *Config) engineConfig(log *slog.Logger) engine.Config {
	sync, _ := engine.ParseSyncMode(c.Storage.Sync)
	ec := engine.Config{
		Logger:       log,
		Sync:         sync,
		SyncInterval: time.Duration(c.Storage.SyncInterval),
		MaxPayload:   int(c.MaxPayload),
		MaxAttempts:  c.Defaults.MaxAttempts,
		TTR:          time.Duration(c.Defaults.TTR),
		Backoff:      c.Defaults.Backoff.engine(),
		DedupeWindow: time.Duration(c.Defaults.DedupeWindow),
		StrictQueues: c.StrictQueues,
		MaxQueues:    c.MaxQueues,
		Workers:      c.Governor.Concurrency.Max, // 0: 2 × cores, for both
		Queues:       make(map[string]engine.QueueConfig, len(c.Queues)),
	}
	for name, q := range c.Queues {
		class, _ := job.ParseClass(q.Class)
		qsync, _ := engine.ParseSyncMode(q.Sync)
		keyMode, _ := job.ParseKeyMode(q.KeyMode)
		ec.Queues[name] = engine.QueueConfig{
			Class:       class,
			Concurrency: c.concurrency(q),
			Reserve:     q.Reserve,
			MaxAttempts: q.MaxAttempts,
			TTR:         time.Duration(q.TTR),
			Backoff:     q.Backoff.engine(),
			Rate:        float64(q.Rate),
			MaxDepth:    q.MaxDepth,
			MaxBytes:    int64(q.MaxBytes),
			MaxAge:      time.Duration(q.MaxAge),
			OnFull:      q.OnFull,
			Sync:        qsync,
			AlertAge:    time.Duration(q.AlertAge),
			AlertDepth:  q.AlertDepth,
			ShedAt:      q.ShedAt,
			KeyMode:     keyMode,
			RetainDone:  time.Duration(q.RetainDone),
			MaxResult:   int(q.MaxResult),
			Breaker:     q.breaker().engine(),

			GroupConcurrency: q.GroupConcurrency,
			Ordered:          q.ordered(),
		}
	}
	return ec
}

// concurrency is q's concurrency: its own, else, for an uplink handler,
// two of its uplink's batches (one sent, the next one ready), so that a
// backlog holds two worker slots and not all of them.
func (c *Config) concurrency(q QueueConfig) int {
	if q.Concurrency != 0 || q.Handler == nil || q.Handler.Type != "uplink" {
		return q.Concurrency
	}
	return 2 * cmp.Or(c.Uplinks[q.Handler.Uplink].Batch.MaxJobs, uplink.DefaultMaxJobs)
}

// ordered answers q's ordered key: its own, else true for a queue an
// uplink drains (issue 19: order within a queue is kept unless it opts
// out) and false for any other (a retry goes to the back, SPEC 6).
func (q QueueConfig) ordered() bool {
	if q.Ordered != nil {
		return *q.Ordered
	}
	return q.Handler != nil && q.Handler.Type == "uplink"
}

// breaker is q's breaker: its own, else an uplink handler's default.
func (q QueueConfig) breaker() BreakerConfig {
	if q.Breaker == (BreakerConfig{}) && q.Handler != nil && q.Handler.Type == "uplink" {
		return defaultUplinkBreaker
	}
	return q.Breaker
}

// defaultCoolDown is a breaker's cool-down when only failures is set (SPEC 8).
const defaultCoolDown = 30 * time.Second

func (b BreakerConfig) engine() engine.Breaker {
	eb := engine.Breaker{Failures: b.Failures, CoolDown: time.Duration(b.CoolDown)}
	if eb.Failures > 0 && eb.CoolDown == 0 {
		eb.CoolDown = defaultCoolDown
	}
	return eb
}

func (b BackoffConfig) engine() engine.Backoff {
	return engine.Backoff{Initial: time.Duration(b.Initial), Max: time.Duration(b.Max)}
}
