package main

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgeq/edgeq/engine"
	httphandler "github.com/edgeq/edgeq/engine/handler/http"
	"github.com/edgeq/edgeq/engine/job"
)

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
	c.validateTokens(&v)
	for i, h := range c.HTTP.Hosts {
		if h == "" || strings.ContainsAny(h, ":/ ") {
			v.add(fmt.Sprintf("http.hosts[%d]", i), "want a host name without port or scheme, got %q", h)
		}
	}

	c.validateNative(&v)

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
	c.validateSchedules(&v)
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
	if m.StrictQueues && len(m.Routes) == 0 {
		v.add("mqtt.strict_queues", "no mqtt.routes name a queue: every message would be refused")
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
	v.notNegativeInt(key+".group_concurrency", q.GroupConcurrency)
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
	v.notNegative(key+".max_age", q.MaxAge)
	switch q.OnFull {
	case "", engine.OnFullReject:
	case engine.OnFullEvictOldest:
		if q.MaxDepth <= 0 && q.MaxBytes <= 0 {
			v.add(key+".on_full", "%s needs max_depth or max_bytes", engine.OnFullEvictOldest)
		}
	default:
		v.add(key+".on_full", "unknown policy %q (want %s or %s)", q.OnFull, engine.OnFullReject, engine.OnFullEvictOldest)
	}
	if _, err := engine.ParseSyncMode(q.Sync); err != nil {
		v.add(key+".sync", "%v", err)
	}
	v.notNegative(key+".alert_age", q.AlertAge)
	if q.AlertDepth < 0 {
		v.add(key+".alert_depth", "must not be negative")
	}
	if _, err := job.ParseKeyMode(q.KeyMode); err != nil {
		v.add(key+".key_mode", "unknown mode %q (want window, active or replace)", q.KeyMode)
	}
	v.notNegative(key+".retain_done", q.RetainDone)
	if q.MaxResult < 0 || q.MaxResult > maxResultLimit {
		v.add(key+".max_result", "%s is outside 0..%s", q.MaxResult, Size(maxResultLimit))
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

// validateNative checks the native protocol's block.
func (c *Config) validateNative(v *validator) {
	n := c.Native
	if n.Listen != "" {
		if err := checkHostPort(n.Listen); err != nil {
			v.add("native.listen", "%v", err)
		}
	}
	if n.Socket != "" && len(n.Socket) > maxSocketPath {
		v.add("native.socket", "%d bytes, the longest socket path is %d", len(n.Socket), maxSocketPath)
	}
	if _, err := parseSocketMode(n.SocketMode); err != nil {
		v.add("native.socket_mode", "%v", err)
	}
	switch minFrame := c.MaxPayload + 1*KiB; {
	case n.MaxFrame < 0:
		v.add("native.max_frame", "must not be negative")
	case n.MaxFrame > 0 && n.MaxFrame < minFrame:
		v.add("native.max_frame", "%s is below max_payload plus 1KiB (%s): the largest job would be refused", n.MaxFrame, minFrame)
	case n.MaxFrame > 1<<31-1:
		v.add("native.max_frame", "%s is above the limit of 2GiB-1", n.MaxFrame)
	}
	if n.MaxInFlight < 1 || n.MaxInFlight > 65536 {
		v.add("native.max_in_flight", "want 1 to 65536, got %d", n.MaxInFlight)
	}
	if n.MaxConns < 1 {
		v.add("native.max_conns", "must be positive")
	}
	v.positive("native.idle_timeout", n.IdleTimeout)
}

// maxSocketPath is the longest unix socket path Linux takes (sun_path
// holds 108 bytes with the terminating NUL).
const maxSocketPath = 107

// parseSocketMode parses an octal file mode of at most 0777.
func parseSocketMode(s string) (os.FileMode, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("want an octal file mode such as 0660, got %q", s)
	}
	return os.FileMode(m), nil
}
