package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/httpapi"
)

// testConfig is a daemon on a temporary directory, its API on a free
// loopback port, logging into logs.
func testConfig(t *testing.T, logs *syncBuffer) Config {
	t.Helper()
	return Config{
		DataDir:         t.TempDir(),
		Engine:          engine.Config{Queues: map[string]engine.QueueConfig{"mail": {Class: job.ClassNormal}}},
		HTTP:            httpapi.Config{Addr: "127.0.0.1:0"},
		ShutdownTimeout: 10 * time.Second,
		Logger:          logTo(logs),
	}
}

// TestRunReloadStop: Reload waits for Run to serve, refuses a configuration
// that cannot be applied and keeps the running one, applies a good one, and
// answers ErrStopped once Run has stopped cleanly.
func TestRunReloadStop(t *testing.T) {
	var logs syncBuffer
	cfg := testConfig(t, &logs)
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	bad := cfg
	bad.Handlers = map[string]Handler{"mail": {Type: "carrier-pigeon"}}
	err = d.Reload(ctx, func() (Config, error) { return bad, nil })
	if err == nil || !strings.Contains(err.Error(), "queues.mail.handler.type") {
		t.Errorf("reload with an unknown handler type: %v, want an error naming queues.mail.handler.type", err)
	}
	loadErr := errors.New("file gone")
	if err := d.Reload(ctx, func() (Config, error) { return Config{}, loadErr }); !errors.Is(err, loadErr) {
		t.Errorf("reload whose load fails: %v, want %v", err, loadErr)
	}
	good := cfg
	good.Engine.Queues = map[string]engine.QueueConfig{"mail": {Class: job.ClassCritical}}
	if err := d.Reload(ctx, func() (Config, error) { return good, nil }); err != nil {
		t.Errorf("reload with a good configuration: %v", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of its context ending")
	}
	for _, msg := range []string{"msg=listening", `msg="shutting down"`, "msg=stopped"} {
		if !strings.Contains(logs.String(), msg) {
			t.Errorf("log lacks %s:\n%s", msg, logs.String())
		}
	}
	if err := d.Reload(t.Context(), func() (Config, error) { return good, nil }); !errors.Is(err, ErrStopped) {
		t.Errorf("reload after Run returned: %v, want ErrStopped", err)
	}
	if err := d.Run(t.Context()); err == nil {
		t.Error("a second Run succeeded, want an error")
	}
}

// TestRunRefusesHandler: a handler that cannot be built is a ConfigError,
// answered before the store is opened.
func TestRunRefusesHandler(t *testing.T) {
	var logs syncBuffer
	cfg := testConfig(t, &logs)
	cfg.Handlers = map[string]Handler{"mail": {Type: "exec"}}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Run(t.Context())
	if ce := (*ConfigError)(nil); !errors.As(err, &ce) || !strings.Contains(err.Error(), "queues.mail.handler.") {
		t.Errorf("Run with an exec handler without a command: %v, want a ConfigError naming queues.mail.handler", err)
	}
}
