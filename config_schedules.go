package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/edgeq/edgeq/engine/schedule"
)

// ScheduleConfig is one schedule of the file (README "Schedules"): the
// body of PUT /v1/schedules/{name} in YAML. Payload is any YAML value,
// sent as its JSON.
type ScheduleConfig struct {
	Cron        string            `yaml:"cron"`
	Timezone    string            `yaml:"timezone"`
	Queue       string            `yaml:"queue"`
	Payload     JSONValue         `yaml:"payload"`
	PayloadB64  string            `yaml:"payload_b64"`
	ContentType string            `yaml:"content_type"`
	Headers     map[string]string `yaml:"headers"`
	MaxAttempts int               `yaml:"max_attempts"`
	TTR         Duration          `yaml:"ttr"`
	ExpiresIn   Duration          `yaml:"expires_in"`
	CatchUp     string            `yaml:"catch_up"`
	Overlap     string            `yaml:"overlap"`
}

// spec maps the entry to the scheduler's Spec, which checks it.
func (s ScheduleConfig) spec() schedule.Spec {
	sp := schedule.Spec{
		Cron: s.Cron, Timezone: s.Timezone, Queue: s.Queue, PayloadB64: s.PayloadB64,
		ContentType: s.ContentType, Headers: s.Headers, MaxAttempts: s.MaxAttempts,
		CatchUp: s.CatchUp, Overlap: s.Overlap,
	}
	if s.TTR != 0 {
		sp.TTR = time.Duration(s.TTR).String()
	}
	if s.ExpiresIn != 0 {
		sp.ExpiresIn = time.Duration(s.ExpiresIn).String()
	}
	sp.Payload = json.RawMessage(s.Payload)
	return sp
}

// JSONValue is any YAML value held as its JSON.
type JSONValue []byte

func (*JSONValue) takesAnyNode() {}

// UnmarshalYAML converts the value to JSON; one JSON cannot hold (a map
// with keys that are not strings) is refused.
func (j *JSONValue) UnmarshalYAML(n *yaml.Node) error {
	var v any
	if err := n.Decode(&v); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("not a JSON value: %w", err)
	}
	*j = b
	return nil
}

// schedules maps the file's schedules; Validate has checked them.
func (c *Config) schedules() map[string]schedule.Spec {
	out := make(map[string]schedule.Spec, len(c.Schedules))
	for name, s := range c.Schedules {
		out[name] = s.spec()
	}
	return out
}

// validateSchedules checks each schedule as the scheduler will, and its
// queue against strict_queues.
func (c *Config) validateSchedules(v *validator) {
	for _, name := range slices.Sorted(maps.Keys(c.Schedules)) {
		s := c.Schedules[name]
		key := "schedules." + name
		if err := (schedule.Config{Schedules: map[string]schedule.Spec{name: s.spec()}}).Validate(); err != nil {
			// "schedules.NAME.FIELD: message"
			k, msg, _ := strings.Cut(err.Error(), ": ")
			v.add(k, "%s", msg)
			continue
		}
		if _, ok := c.Queues[s.Queue]; c.StrictQueues && !ok {
			v.add(key+".queue", "queue %q is not configured (strict_queues)", s.Queue)
		}
	}
}
