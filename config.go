package main

import (
	"strings"
	"time"

	"github.com/edgeq/edgeq/engine"
)

// Config is edgeq's configuration file (SPEC 9). serve lays EDGEQ_*
// variables and then flags over it. A file starts from defaultConfig, so a
// key that is absent keeps its default; in a queue, zero means "the value
// under defaults".
type Config struct {
	DataDir         string                    `yaml:"data_dir"`
	MaxPayload      Size                      `yaml:"max_payload"`
	HTTP            HTTPConfig                `yaml:"http"`
	Native          NativeConfig              `yaml:"native"`
	Storage         StorageConfig             `yaml:"storage"`
	MQTT            MQTTConfig                `yaml:"mqtt"`
	Governor        GovernorConfig            `yaml:"governor"`
	Defaults        DefaultsConfig            `yaml:"defaults"`
	StrictQueues    bool                      `yaml:"strict_queues"`
	MaxQueues       int                       `yaml:"max_queues"`
	ShutdownTimeout Duration                  `yaml:"shutdown_timeout"`
	Log             LogConfig                 `yaml:"log"`
	Uplinks         map[string]UplinkConfig   `yaml:"uplinks"`
	Queues          map[string]QueueConfig    `yaml:"queues"`
	Schedules       map[string]ScheduleConfig `yaml:"schedules"`
}

// HTTPConfig is the HTTP API listener.
type HTTPConfig struct {
	Addr      string `yaml:"addr"`
	TokenFile string `yaml:"token_file"`
	// Tokens are scoped tokens (issue 21), beside or instead of TokenFile.
	Tokens []TokenConfig  `yaml:"tokens"`
	TLS    ServerTLSFiles `yaml:"tls"`
	Hosts  []string       `yaml:"hosts"` // names clients may use in Host, besides IPs, localhost and addr's host
	// BodiesInFlight bounds the bytes of request bodies being read at once.
	BodiesInFlight Size `yaml:"bodies_in_flight"`
	// BodyIdleTimeout cuts off a request body that stops moving.
	BodyIdleTimeout Duration `yaml:"body_idle_timeout"`
}

// NativeConfig is the native protocol's listeners (docs/protocol.md); it
// is off while Listen and Socket are both empty.
type NativeConfig struct {
	Listen      string   `yaml:"listen"`        // TCP HOST:PORT
	Socket      string   `yaml:"socket"`        // unix socket path
	SocketMode  string   `yaml:"socket_mode"`   // octal file mode of the socket
	MaxFrame    Size     `yaml:"max_frame"`     // 0: 8 x max_payload, at least 1MiB
	MaxInFlight int      `yaml:"max_in_flight"` // requests of one connection not yet answered
	MaxConns    int      `yaml:"max_conns"`
	IdleTimeout Duration `yaml:"idle_timeout"`
}

// TokenConfig is one scoped token of the HTTP API: its name (logged,
// never its value), the file holding it, its roles and the queue globs it
// may touch (none: every queue).
type TokenConfig struct {
	Name   string   `yaml:"name"`
	File   string   `yaml:"file"`
	Roles  []string `yaml:"roles"`
	Queues []string `yaml:"queues"`
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
	// EncryptionKeyFile holds the key that encrypts the store at rest
	// (32 bytes, raw or hex); "" leaves the store unencrypted.
	EncryptionKeyFile string `yaml:"encryption_key_file"`
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
	StrictQueues bool           `yaml:"strict_queues"` // jobs/ and submit/ take only the routes' queues
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
	// GroupField names a top-level field of a JSON payload whose value
	// becomes the job's ordered group.
	GroupField string `yaml:"group_field"`
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
	MaxBytes    Size           `yaml:"max_bytes"`
	MaxAge      Duration       `yaml:"max_age"`
	OnFull      string         `yaml:"on_full"`
	Sync        string         `yaml:"sync"`
	AlertAge    Duration       `yaml:"alert_age"`
	AlertDepth  int64          `yaml:"alert_depth"`
	ShedAt      string         `yaml:"shed_at"`
	KeyMode     string         `yaml:"key_mode"`
	RetainDone  Duration       `yaml:"retain_done"`
	MaxResult   Size           `yaml:"max_result"`
	Handler     *HandlerConfig `yaml:"handler"`
	Breaker     BreakerConfig  `yaml:"breaker"`
	// GroupConcurrency caps the running jobs of one ordered group; 0: 1.
	GroupConcurrency int `yaml:"group_concurrency"`
	// Ordered keeps a retry at its place in the queue, holding the later
	// jobs (engine.QueueConfig.Ordered); nil: true for a queue an uplink
	// drains, false for any other.
	Ordered *bool `yaml:"ordered"`
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
	maxResultLimit    = 1 * MiB // a retained job's result, kept in its record
	defaultMaxPayload = 1 * MiB
)

func defaultConfig() *Config {
	return &Config{
		MaxPayload: defaultMaxPayload,
		HTTP:       HTTPConfig{Addr: defaultHTTPAddr, BodiesInFlight: 16 * MiB, BodyIdleTimeout: Duration(10 * time.Second)},
		Native:     NativeConfig{SocketMode: "0660", MaxInFlight: 128, MaxConns: 1024, IdleTimeout: Duration(5 * time.Minute)},
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
