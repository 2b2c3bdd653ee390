package daemon

import (
	"log/slog"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/schedule"
	"github.com/edgeq/edgeq/resource"
	"github.com/edgeq/edgeq/transport/httpapi"
	"github.com/edgeq/edgeq/transport/mqttapi"
	"github.com/edgeq/edgeq/transport/native"
	"github.com/edgeq/edgeq/transport/uplink"
)

// Config is everything the daemon runs with, settled and validated by its
// caller (package main maps the configuration file to it). The daemon reads
// no flags, variables or configuration files of its own.
type Config struct {
	DataDir string // the store's directory
	Memory  string // the store's memory profile (storage.Config.Memory)
	// EncryptionKey encrypts the store at rest (storage.Config.EncryptionKey);
	// nil: not encrypted.
	EncryptionKey []byte
	// GoMemoryDerived says the Go soft memory limit is serve's own, derived
	// from the cgroup's limit or the profile, not GOMEMLIMIT: it steers the
	// GC only, and the governor does not shed on Go memory against it.
	GoMemoryDerived bool
	// Engine configures the engine; the daemon sets its Logger, OnEvent,
	// OnAlert and the Handler of every queue listed in Handlers.
	Engine engine.Config
	// Handlers are the in-process handlers, by queue (SPEC 7).
	Handlers map[string]Handler
	// Uplinks are the upstream connections handlers of type "uplink" name
	// (issue 19); the daemon sets their Logger. A reload keeps the running
	// ones.
	Uplinks []uplink.Config
	// Governor configures the resource governor; the daemon sets its Logger.
	Governor resource.Config
	// HTTP configures the HTTP API; the daemon sets its Logger, Governor and
	// MQTT.
	HTTP httpapi.Config
	// Native configures the native protocol (docs/protocol.md); nil means
	// it is off. The daemon sets its Logger.
	Native *native.Config
	// MQTT configures the MQTT client; nil means MQTT is off. The daemon
	// sets its Logger.
	MQTT *mqttapi.Config
	// Schedules are the configuration file's schedules, by name; the daemon
	// runs them and those made through the API (engine/schedule).
	Schedules map[string]schedule.Spec
	// ShutdownTimeout bounds a clean stop (shutdown_timeout).
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	Version         string // logged when the daemon is up
}

// Handler is a queue's in-process handler: Type "exec" runs Command,
// "http" posts to URL with Headers, "mqtt" publishes to Topic, "uplink"
// sends through the uplink named Uplink. Timeout
// bounds one run; 0 means the handler's default.
type Handler struct {
	Type    string
	Command []string
	URL     string
	Headers map[string]string
	Topic   string
	Uplink  string
	Timeout time.Duration
}
