package main

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgeq/edgeq/engine"
	httphandler "github.com/edgeq/edgeq/engine/handler/http"
	"github.com/edgeq/edgeq/engine/job"
)

// Config is edgeq's configuration file (SPEC 9). serve lays EDGEQ_*
// variables and then flags over it. A file starts from defaultConfig, so a
// key that is absent keeps its default; in a queue, zero means "the value
// under defaults".
type Config struct {
	DataDir         string                  `yaml:"data_dir"`
	MaxPayload      Size                    `yaml:"max_payload"`
	HTTP            HTTPConfig              `yaml:"http"`
	Storage         StorageConfig           `yaml:"storage"`
	MQTT            MQTTConfig              `yaml:"mqtt"`
	Governor        GovernorConfig          `yaml:"governor"`
	Defaults        DefaultsConfig          `yaml:"defaults"`
	StrictQueues    bool                    `yaml:"strict_queues"`
	MaxQueues       int                     `yaml:"max_queues"`
	ShutdownTimeout Duration                `yaml:"shutdown_timeout"`
	Log             LogConfig               `yaml:"log"`
	Uplinks         map[string]UplinkConfig `yaml:"uplinks"`
	Queues          map[string]QueueConfig  `yaml:"queues"`
}

// HTTPConfig is the HTTP API listener.
type HTTPConfig struct {
	Addr      string         `yaml:"addr"`
	TokenFile string         `yaml:"token_file"`
	TLS       ServerTLSFiles `yaml:"tls"`
	Hosts     []string       `yaml:"hosts"` // names clients may use in Host, besides IPs, localhost and addr's host
	// BodiesInFlight bounds the bytes of request bodies being read at once.
	BodiesInFlight Size `yaml:"bodies_in_flight"`
	// BodyIdleTimeout cuts off a request body that stops moving.
	BodyIdleTimeout Duration `yaml:"body_idle_timeout"`
}

// ServerTLSFiles names a server certificate and its key.
type ServerTLSFiles struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// StorageConfig is how the store writes.
type StorageConfig struct {
	Sync         string   `yaml:"sync"`
	SyncInterval Duration `yaml:"sync_interval"`
	Memory       string   `yaml:"memory"`
}

// MQTTConfig is the MQTT client; it is off while Broker is empty.
type MQTTConfig struct {
	Broker       string         `yaml:"broker"`
	ClientID     string         `yaml:"client_id"`
	Username     string         `yaml:"username"`
	PasswordFile string         `yaml:"password_file"`
	Prefix       string         `yaml:"prefix"`
	Events       bool           `yaml:"events"`
	Routes       []RouteConfig  `yaml:"routes"`
	TLS          ClientTLSFiles `yaml:"tls"`
}

// clientIDPlaceholder in mqtt.prefix stands for the client id, so that boxes
// sharing a broker and a configuration get topics of their own.
const clientIDPlaceholder = "{client_id}"

// topicPrefix is the prefix of edgeq's topics for the client id in use.
func (m MQTTConfig) topicPrefix(clientID string) string {
	return strings.ReplaceAll(m.Prefix, clientIDPlaceholder, clientID)
}

// RouteConfig maps an MQTT topic filter to a queue.
type RouteConfig struct {
	Filter   string `yaml:"filter"`
	Queue    string `yaml:"queue"`
	KeyField string `yaml:"key_field"`
}

// ClientTLSFiles names the CA that signs the broker and an optional client
// certificate.
type ClientTLSFiles struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// GovernorConfig is the resource governor (SPEC 8).
type GovernorConfig struct {
	Interval    Duration         `yaml:"interval"`
	Dwell       Duration         `yaml:"dwell"`
	CPU         Thresholds       `yaml:"cpu"`
	Memory      Thresholds       `yaml:"memory"`
	DiskMinFree Size             `yaml:"disk_min_free"`
	Concurrency ConcurrencyRange `yaml:"concurrency"`
}

// Thresholds are the percentages at which a pressure level is entered and
// left again; Enter is above Exit so that the level does not flap.
type Thresholds struct {
	Enter float64 `yaml:"enter"`
	Exit  float64 `yaml:"exit"`
}

// ConcurrencyRange bounds the total number of workers; Max 0 is 2 × CPU cores.
type ConcurrencyRange struct {
	Min int `yaml:"min"`
	Max int `yaml:"max"`
}

// DefaultsConfig holds what a queue gets unless it says otherwise.
type DefaultsConfig struct {
	MaxAttempts  int           `yaml:"max_attempts"`
	TTR          Duration      `yaml:"ttr"`
	Backoff      BackoffConfig `yaml:"backoff"`
	DedupeWindow Duration      `yaml:"dedupe_window"`
}

// BackoffConfig is the retry delay law: exponential from Initial to Max.
type BackoffConfig struct {
	Initial Duration `yaml:"initial"`
	Max     Duration `yaml:"max"`
}

// LogConfig is the daemon's log.
type LogConfig struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
}

// QueueConfig configures one queue. Zero values mean "the default".
type QueueConfig struct {
	Class       string         `yaml:"class"`
	Concurrency int            `yaml:"concurrency"`
	Reserve     int            `yaml:"reserve"`
	MaxAttempts int            `yaml:"max_attempts"`
	TTR         Duration       `yaml:"ttr"`
	Backoff     BackoffConfig  `yaml:"backoff"`
	Rate        Rate           `yaml:"rate"`
	MaxDepth    int64          `yaml:"max_depth"`
	Sync        string         `yaml:"sync"`
	AlertAge    Duration       `yaml:"alert_age"`
	AlertDepth  int64          `yaml:"alert_depth"`
	ShedAt      string         `yaml:"shed_at"`
	Handler     *HandlerConfig `yaml:"handler"`
	Breaker     BreakerConfig  `yaml:"breaker"`
}

// HandlerConfig runs a queue's jobs inside edgeq (SPEC 7); a queue without
// one is served to pull workers.
type HandlerConfig struct {
	Type    string            `yaml:"type"`
	Command []string          `yaml:"command"`
	Timeout Duration          `yaml:"timeout"`
	URL     string            `yaml:"url"`
	Topic   string            `yaml:"topic"`
	Headers map[string]string `yaml:"headers"`
	Uplink  string            `yaml:"uplink"`
}

// BreakerConfig opens a handler's circuit after Failures consecutive
// failures, for CoolDown.
type BreakerConfig struct {
	Failures int      `yaml:"failures"`
	CoolDown Duration `yaml:"cool_down"`
}

// Default settings, also written out in configs/edgeq.yaml.
const (
	defaultHTTPAddr   = "127.0.0.1:7070"
	defaultDataDir    = "edgeq-data"
	maxPayloadLimit   = 64 * MiB
	defaultMaxPayload = 1 * MiB
)

func defaultConfig() *Config {
	return &Config{
		MaxPayload: defaultMaxPayload,
		HTTP:       HTTPConfig{Addr: defaultHTTPAddr, BodiesInFlight: 16 * MiB, BodyIdleTimeout: Duration(10 * time.Second)},
		Storage:    StorageConfig{Sync: "always", SyncInterval: Duration(time.Second), Memory: "small"},
		MQTT:       MQTTConfig{Prefix: "edgeq"},
		Governor: GovernorConfig{
			Interval:    Duration(time.Second),
			Dwell:       Duration(15 * time.Second),
			CPU:         Thresholds{Enter: 90, Exit: 75},
			Memory:      Thresholds{Enter: 85, Exit: 75},
			DiskMinFree: 256 * MiB,
			Concurrency: ConcurrencyRange{Min: 1, Max: 0},
		},
		Defaults: DefaultsConfig{
			MaxAttempts:  5,
			TTR:          Duration(60 * time.Second),
			Backoff:      BackoffConfig{Initial: Duration(time.Second), Max: Duration(10 * time.Minute)},
			DedupeWindow: Duration(24 * time.Hour),
		},
		MaxQueues:       engine.DefaultMaxQueues,
		ShutdownTimeout: Duration(30 * time.Second),
		Log:             LogConfig{Format: "text", Level: "info"},
	}
}

// Validate checks the whole configuration. It returns a *ConfigError that
// lists every problem, each naming its key, or nil.
func (c *Config) Validate() error {
	var v validator
	switch {
	case c.MaxPayload <= 0:
		v.add("max_payload", "must be positive")
	case c.MaxPayload > maxPayloadLimit:
		v.add("max_payload", "%s is above the limit of %s", c.MaxPayload, Size(maxPayloadLimit))
	}

	switch {
	case c.MaxQueues <= 0:
		v.add("max_queues", "must be positive")
	case c.MaxQueues < len(c.Queues):
		v.add("max_queues", "%d is below the %d queues configured", c.MaxQueues, len(c.Queues))
	}

	if c.HTTP.Addr == "" {
		v.add("http.addr", "required")
	} else if err := checkHostPort(c.HTTP.Addr); err != nil {
		v.add("http.addr", "%v", err)
	}
	v.bothOrNeither("http.tls", c.HTTP.TLS.Cert, c.HTTP.TLS.Key)
	if c.HTTP.BodiesInFlight <= 0 {
		v.add("http.bodies_in_flight", "must be positive")
	}
	v.positive("http.body_idle_timeout", c.HTTP.BodyIdleTimeout)
	for i, h := range c.HTTP.Hosts {
		if h == "" || strings.ContainsAny(h, ":/ ") {
			v.add(fmt.Sprintf("http.hosts[%d]", i), "want a host name without port or scheme, got %q", h)
		}
	}

	if _, err := engine.ParseSyncMode(c.Storage.Sync); err != nil {
		v.add("storage.sync", "%v", err)
	}
	v.positive("storage.sync_interval", c.Storage.SyncInterval)
	if c.Storage.Memory != "small" && c.Storage.Memory != "default" {
		v.add("storage.memory", "unknown memory profile %q (want small or default)", c.Storage.Memory)
	}

	c.validateMQTT(&v)
	c.validateGovernor(&v)
	c.validateUplinks(&v)

	d := c.Defaults
	if d.MaxAttempts < 1 {
		v.add("defaults.max_attempts", "must be at least 1")
	}
	v.positive("defaults.ttr", d.TTR)
	v.positive("defaults.backoff.initial", d.Backoff.Initial)
	v.positive("defaults.backoff.max", d.Backoff.Max)
	if d.Backoff.Initial > d.Backoff.Max {
		v.add("defaults.backoff", "initial %s is above max %s", d.Backoff.Initial, d.Backoff.Max)
	}
	v.positive("defaults.dedupe_window", d.DedupeWindow)

	v.positive("shutdown_timeout", c.ShutdownTimeout)
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		v.add("log.format", "unknown format %q (want text or json)", c.Log.Format)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		v.add("log.level", "unknown level %q (want debug, info, warn or error)", c.Log.Level)
	}

	for _, name := range slices.Sorted(maps.Keys(c.Queues)) {
		c.validateQueue(&v, name, c.Queues[name])
	}
	return v.err()
}

func (c *Config) validateMQTT(v *validator) {
	m := c.MQTT
	if m.Broker != "" {
		u, err := url.Parse(m.Broker)
		switch {
		case err != nil || u.Host == "":
			v.add("mqtt.broker", "invalid URL %q (want tcp://HOST:PORT, ssl://, ws:// or wss://)", m.Broker)
		case !slices.Contains([]string{"tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss"}, u.Scheme):
			v.add("mqtt.broker", "unsupported scheme %q (want tcp, ssl, tls, mqtt, mqtts, ws or wss)", u.Scheme)
		}
	}
	if strings.ContainsAny(m.ClientID, "+#") {
		v.add("mqtt.client_id", "%q must not contain the topic wildcards + or #: it is part of the status topic", m.ClientID)
	}
	switch bare := strings.ReplaceAll(m.Prefix, clientIDPlaceholder, "x"); {
	case m.Prefix == "":
		v.add("mqtt.prefix", "required")
	case strings.ContainsAny(bare, "{}"):
		v.add("mqtt.prefix", "%q: the only placeholder is %s", m.Prefix, clientIDPlaceholder)
	case strings.ContainsAny(bare, "+#") || strings.HasPrefix(bare, "/") || strings.HasSuffix(bare, "/"):
		v.add("mqtt.prefix", "%q must be a topic without wildcards or a leading or trailing /", m.Prefix)
	}
	for i, r := range m.Routes {
		key := fmt.Sprintf("mqtt.routes[%d]", i)
		_, known := c.Queues[r.Queue]
		if r.Filter == "" {
			v.add(key+".filter", "required")
		} else if err := checkTopicFilter(r.Filter); err != nil {
			v.add(key+".filter", "%v", err)
		}
		switch {
		case r.Queue == "":
			v.add(key+".queue", "required")
		case !job.ValidQueueName(r.Queue):
			v.add(key+".queue", "invalid queue name %q (want ^[a-z0-9][a-z0-9_.-]{0,63}$)", r.Queue)
		case c.StrictQueues && !known:
			v.add(key+".queue", "unknown queue %q (strict_queues is on)", r.Queue)
		}
	}
	v.bothOrNeither("mqtt.tls", m.TLS.Cert, m.TLS.Key)
}

func (c *Config) validateGovernor(v *validator) {
	g := c.Governor
	v.positive("governor.interval", g.Interval)
	v.notNegative("governor.dwell", g.Dwell)
	for _, t := range []struct {
		key string
		t   Thresholds
	}{{"governor.cpu", g.CPU}, {"governor.memory", g.Memory}} {
		bad := false
		for _, p := range []struct {
			name string
			pct  float64
		}{{"enter", t.t.Enter}, {"exit", t.t.Exit}} {
			if !(p.pct > 0 && p.pct <= 100) {
				v.add(t.key+"."+p.name, "%g is not a percentage in (0, 100]", p.pct)
				bad = true
			}
		}
		switch {
		case bad:
		case t.t.Enter < t.t.Exit:
			v.add(t.key, "enter %g is below exit %g", t.t.Enter, t.t.Exit)
		case t.t.Enter == t.t.Exit:
			v.add(t.key, "enter %g must be above exit %g", t.t.Enter, t.t.Exit)
		}
	}
	if g.DiskMinFree < 0 {
		v.add("governor.disk_min_free", "must not be negative")
	}
	if g.Concurrency.Min < 1 {
		v.add("governor.concurrency.min", "must be at least 1")
	}
	if g.Concurrency.Max < 0 {
		v.add("governor.concurrency.max", "must not be negative (0 means 2 × CPU cores)")
	} else if g.Concurrency.Max > 0 && g.Concurrency.Min > g.Concurrency.Max {
		v.add("governor.concurrency", "min %d is above max %d", g.Concurrency.Min, g.Concurrency.Max)
	}
}

// Shedding levels a queue may name in shed_at.
var shedLevels = []string{"normal", "elevated", "high", "critical", "never"}

func (c *Config) validateQueue(v *validator, name string, q QueueConfig) {
	key := "queues." + name
	if !job.ValidQueueName(name) {
		v.add(key, "invalid queue name (want ^[a-z0-9][a-z0-9_.-]{0,63}$)")
	}
	if _, err := job.ParseClass(q.Class); err != nil {
		v.add(key+".class", "%v", err)
	}
	v.notNegativeInt(key+".concurrency", q.Concurrency)
	v.notNegativeInt(key+".reserve", q.Reserve)
	if q.Concurrency > 0 && q.Reserve > q.Concurrency {
		v.add(key+".reserve", "%d is above concurrency %d", q.Reserve, q.Concurrency)
	}
	v.notNegativeInt(key+".max_attempts", q.MaxAttempts)
	v.notNegative(key+".ttr", q.TTR)
	v.notNegative(key+".backoff.initial", q.Backoff.Initial)
	v.notNegative(key+".backoff.max", q.Backoff.Max)
	// A queue may set one bound and inherit the other: compare what it gets.
	initial := cmp.Or(q.Backoff.Initial, c.Defaults.Backoff.Initial)
	maxBackoff := cmp.Or(q.Backoff.Max, c.Defaults.Backoff.Max)
	if q.Backoff != (BackoffConfig{}) && initial > 0 && maxBackoff > 0 && initial > maxBackoff {
		v.add(key+".backoff", "initial %s is above max %s", initial, maxBackoff)
	}
	if q.MaxDepth < 0 {
		v.add(key+".max_depth", "must not be negative")
	}
	if _, err := engine.ParseSyncMode(q.Sync); err != nil {
		v.add(key+".sync", "%v", err)
	}
	v.notNegative(key+".alert_age", q.AlertAge)
	if q.AlertDepth < 0 {
		v.add(key+".alert_depth", "must not be negative")
	}
	if q.ShedAt != "" && !slices.Contains(shedLevels, q.ShedAt) {
		v.add(key+".shed_at", "unknown level %q (want normal, elevated, high, critical or never)", q.ShedAt)
	}
	if q.Handler != nil {
		c.validateHandler(v, key+".handler", q.Handler)
	} else if q.Breaker != (BreakerConfig{}) {
		v.add(key+".breaker", "needs a handler: a queue without one is served to pull workers")
	}
	v.notNegativeInt(key+".breaker.failures", q.Breaker.Failures)
	v.notNegative(key+".breaker.cool_down", q.Breaker.CoolDown)
}

func (c *Config) validateHandler(v *validator, key string, h *HandlerConfig) {
	// Each field belongs to one handler type; one set for another type is
	// a mistake worth reporting rather than ignoring.
	used := map[string]bool{
		"command": len(h.Command) > 0,
		"url":     h.URL != "",
		"topic":   h.Topic != "",
		"headers": len(h.Headers) > 0,
		"uplink":  h.Uplink != "",
		"timeout": h.Timeout != 0,
	}
	var own []string
	switch h.Type {
	case "exec":
		own = []string{"command"}
		switch {
		case len(h.Command) == 0:
			v.add(key+".command", "required for exec handlers")
		case h.Command[0] == "":
			v.add(key+".command[0]", "the program must not be empty")
		}
	case "http":
		own = []string{"url", "headers"}
		if h.URL == "" {
			v.add(key+".url", "required for http handlers")
		} else if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(key+".url", "invalid URL %q (want http:// or https://)", h.URL)
		} else if _, err := httphandler.New(httphandler.Config{URL: h.URL, Headers: h.Headers, Timeout: time.Duration(h.Timeout)}); err != nil {
			// What serve's handler refuses: header names, reserved headers.
			v.add(key, "%v", err)
		}
	case "mqtt":
		own = []string{"topic"}
		switch {
		case h.Topic == "":
			v.add(key+".topic", "required for mqtt handlers")
		case strings.ContainsAny(h.Topic, "+#"):
			v.add(key+".topic", "%q must not contain wildcards", h.Topic)
		}
		if c.MQTT.Broker == "" {
			v.add(key+".type", "mqtt handlers need mqtt.broker")
		}
	case "uplink":
		// The uplink's own timeout bounds a batch's acknowledgements.
		own = []string{"uplink"}
		if _, ok := c.Uplinks[h.Uplink]; !ok && h.Uplink != "" {
			v.add(key+".uplink", "unknown uplink %q (not under uplinks:)", h.Uplink)
		} else if h.Uplink == "" {
			v.add(key+".uplink", "required for uplink handlers")
		}
	case "":
		v.add(key+".type", "required (exec, http, mqtt or uplink)")
		return
	default:
		v.add(key+".type", "unknown handler type %q (want exec, http, mqtt or uplink)", h.Type)
		return
	}
	if h.Type != "uplink" {
		own = append(own, "timeout")
	}
	for _, f := range []string{"command", "url", "topic", "headers", "uplink", "timeout"} {
		if used[f] && !slices.Contains(own, f) {
			v.add(key+"."+f, "not used by %s handlers", h.Type)
		}
	}
	v.notNegative(key+".timeout", h.Timeout)
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
		ec.Queues[name] = engine.QueueConfig{
			Class:       class,
			Concurrency: q.Concurrency,
			Reserve:     q.Reserve,
			MaxAttempts: q.MaxAttempts,
			TTR:         time.Duration(q.TTR),
			Backoff:     q.Backoff.engine(),
			Rate:        float64(q.Rate),
			MaxDepth:    q.MaxDepth,
			Sync:        qsync,
			AlertAge:    time.Duration(q.AlertAge),
			AlertDepth:  q.AlertDepth,
			ShedAt:      q.ShedAt,
			Breaker:     q.breaker().engine(),
		}
	}
	return ec
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

// checkHostPort accepts HOST:PORT with a numeric port; an empty host
// means every interface.
func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid address %q (want HOST:PORT)", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("invalid port %q in %q", port, addr)
	}
	return nil
}

// checkTopicFilter checks an MQTT 3.1.1 topic filter: '+' takes a whole
// level, '#' a whole last level.
func checkTopicFilter(f string) error {
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return fmt.Errorf("%q: '#' must be the last level", f)
		case l != "+" && l != "#" && strings.ContainsAny(l, "+#"):
			return fmt.Errorf("%q: wildcards must take a whole level", f)
		}
	}
	return nil
}

// validator collects configuration problems.
type validator struct {
	problems []Problem
}

func (v *validator) add(key, format string, args ...any) {
	v.problems = append(v.problems, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) positive(key string, d Duration) {
	if d <= 0 {
		v.add(key, "must be positive")
	}
}

func (v *validator) notNegative(key string, d Duration) {
	if d < 0 {
		v.add(key, "must not be negative")
	}
}

func (v *validator) notNegativeInt(key string, n int) {
	if n < 0 {
		v.add(key, "must not be negative")
	}
}

func (v *validator) bothOrNeither(key, cert, keyFile string) {
	switch {
	case cert != "" && keyFile == "":
		v.add(key+".key", "required when %s.cert is set", key)
	case cert == "" && keyFile != "":
		v.add(key+".cert", "required when %s.key is set", key)
	}
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return &ConfigError{Problems: v.problems}
}

// Problem is one invalid setting.
type Problem struct {
	Key  string // such as queues.sync.class; "" for the file as a whole
	Line int    // line in the file, 0 when unknown
	Msg  string
}

// String formats the problem as "key: message".
func (p Problem) String() string {
	if p.Key == "" {
		return p.Msg
	}
	return p.Key + ": " + p.Msg
}

// ConfigError reports an invalid configuration; each problem names its key.
type ConfigError struct {
	File     string // "" when not from a file
	Problems []Problem
}

// Error lists the problems one a line, as file:line: key: message.
func (e *ConfigError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		if e.File != "" {
			b.WriteString(e.File)
			if p.Line > 0 {
				fmt.Fprintf(&b, ":%d", p.Line)
			}
			b.WriteString(": ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Sizes in bytes.
const (
	KiB = 1 << 10
	MiB = 1 << 20
	GiB = 1 << 30
)

// Size is a number of bytes, written as 512KiB, 1MiB, 1GB or plain bytes.
type Size int64

var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
	"kib": KiB, "mib": MiB, "gib": GiB, "tib": 1 << 40,
}

// parseSize parses a size: a number, optionally with a fraction, then an
// optional unit (B, KB, MB, GB, TB in powers of 1000; KiB, MiB, GiB, TiB in
// powers of 1024; case does not matter).
func parseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("invalid size %q (want bytes or a number with KiB, MiB, GiB, KB, MB or GB)", s)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err == nil && n <= math.MaxInt64/int64(mult) {
			return Size(n * int64(mult)), nil
		}
	} else if f, err := strconv.ParseFloat(num, 64); err == nil && f*mult < math.MaxInt64 {
		return Size(math.Round(f * mult)), nil
	}
	return 0, fmt.Errorf("invalid size %q (too large or malformed)", s)
}

// String formats the size in the largest binary unit that divides it.
func (s Size) String() string {
	for _, u := range []struct {
		n    Size
		name string
	}{{GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if s != 0 && s%u.n == 0 {
			return strconv.FormatInt(int64(s/u.n), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// Duration is a time.Duration written in Go syntax (500ms, 30s, 1h30m). A
// plain number other than 0 is refused: "30" would be 30 nanoseconds.
type Duration time.Duration

func parseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want Go syntax such as 500ms, 30s, 5m or 1h)", s)
	}
	return Duration(d), nil
}

// String formats d in Go syntax.
func (d Duration) String() string { return time.Duration(d).String() }

// Rate is a number of jobs per second, written 200/s, 10/m, 5/h or as a
// plain number per second; 0 means unlimited.
type Rate float64

func parseRate(s string) (Rate, error) {
	t := strings.TrimSpace(s)
	num, per, hasUnit := strings.Cut(t, "/")
	div := 1.0
	if hasUnit {
		switch strings.TrimSpace(per) {
		case "s":
		case "m":
			div = 60
		case "h":
			div = 3600
		default:
			num = "" // refuse below
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("invalid rate %q (want N/s, N/m, N/h or a number per second)", s)
	}
	return Rate(f / div), nil
}

// String formats r as jobs per second, such as 200/s.
func (r Rate) String() string { return strconv.FormatFloat(float64(r), 'g', -1, 64) + "/s" }
