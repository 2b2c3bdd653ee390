package main

import (
	"slices"
	"testing"
)

// TestRestartKeys: the keys a reload cannot apply are reported when they
// change, named as in the file; the reloadable ones are not.
func TestRestartKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(c *Config)
		want []string
	}{
		{"nothing", func(c *Config) {}, nil},
		{"strict_queues", func(c *Config) { c.StrictQueues = true }, []string{"strict_queues"}},
		{"queues", func(c *Config) { c.Queues = map[string]QueueConfig{"a": {Class: "bulk"}} }, nil},
		{"schedules", func(c *Config) { c.Schedules = map[string]ScheduleConfig{"a": {Cron: "@daily", Queue: "q"}} }, nil},
		{"governor thresholds", func(c *Config) {
			c.Governor.CPU.Enter, c.Governor.Dwell, c.Governor.Concurrency.Max, c.Governor.DiskMinFree = 95, Duration(1), 3, 1
		}, nil},
		{"governor interval", func(c *Config) { c.Governor.Interval = Duration(5e9) }, []string{"governor.interval"}},
		{"nested keys", func(c *Config) {
			c.HTTP.TLS.Cert, c.MQTT.Prefix, c.Storage.Sync = "c.pem", "box-1", "interval"
		}, []string{"http.tls.cert", "storage.sync", "mqtt.prefix"}},
		{"routes", func(c *Config) { c.MQTT.Routes = []RouteConfig{{Filter: "a/#", Queue: "a"}} }, []string{"mqtt.routes"}},
		{"empty routes are none", func(c *Config) { c.MQTT.Routes = []RouteConfig{} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			next := defaultConfig()
			tt.edit(next)
			if got := restartKeys(defaultConfig(), next); !slices.Equal(got, tt.want) {
				t.Errorf("restartKeys = %q, want %q", got, tt.want)
			}
		})
	}
}
