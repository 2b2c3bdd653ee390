package uplink

import (
	"context"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/memstore"
)

// The shared harness of the http, mqtt and nats tests: an uplink of each
// type with the defaults its tests share, and an engine on a memory store
// whose queues send through one.

// uplinkDefaults are what each type's tests leave unset.
var uplinkDefaults = map[string]func(*Config){
	"http": func(*Config) {},
	"mqtt": func(c *Config) {
		c.ClientID = cmpStr(c.ClientID, "site-0042")
		c.Topic = cmpStr(c.Topic, "sites/site-0042/{queue}/{id}")
	},
	"nats": func(c *Config) {
		c.Stream = cmpStr(c.Stream, "EDGE")
		c.Subject = cmpStr(c.Subject, "edge.{queue}")
	},
}

// startUplinkOf starts an uplink "cloud" of type typ on cfg and its type's
// defaults, stopped when the test ends.
func startUplinkOf(t *testing.T, typ string, cfg Config) *Uplink {
	t.Helper()
	cfg.Name, cfg.Type = "cloud", typ
	uplinkDefaults[typ](&cfg)
	u, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Stop)
	return u
}

func startHTTPUplink(t *testing.T, cfg Config) *Uplink {
	t.Helper()
	return startUplinkOf(t, "http", cfg)
}

func startMQTTUplink(t *testing.T, cfg Config) *Uplink {
	t.Helper()
	return startUplinkOf(t, "mqtt", cfg)
}

func startUplink(t *testing.T, cfg Config) *Uplink {
	t.Helper()
	return startUplinkOf(t, "nats", cfg)
}

// runEngine starts an engine of cfg on a memory store, stopped (within 5s)
// when the test ends.
func runEngine(t *testing.T, cfg engine.Config) *engine.Engine {
	t.Helper()
	e, err := engine.New(cfg, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Stop(ctx)
	})
	return e
}
